/**
 * A restricted join over federation between two real Axon servers over
 * HTTPS on the loopback (room v10): room R on A admits members of space S;
 * bob on B, joined to S, joins R (A names one of its users in
 * `join_authorised_via_users_server` and co-signs the join); carol on B,
 * not in S, is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEvent } from '../../src/storage/events.js';
import { currentState } from '../../src/storage/state.js';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
  carol = await createUser(b.test, 'carol');
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe('restricted joins over federation', () => {
  it('a member of the allowed space joins through A, which authorises and co-signs; a non-member is refused 403', async () => {
    const space = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { preset: 'public_chat', room_version: '10', creation_content: { type: 'm.space' } },
    });
    const spaceId = space.body.room_id as string;
    const room = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: {
        room_version: '10',
        preset: 'private_chat',
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: spaceId }] } }],
      },
    });
    expect(room.status).toBe(200);
    const roomId = room.body.room_id as string;

    const intoSpace = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(spaceId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(intoSpace.status, JSON.stringify(intoSpace.body)).toBe(200);
    const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(join.status, JSON.stringify(join.body)).toBe(200);

    const member = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, { token: alice.accessToken });
    expect(member.body).toMatchObject({ membership: 'join', join_authorised_via_users_server: alice.userId });
    // B stored the join as A gave it back: signed by both servers.
    const [row] = await currentState(b.test.server.ctx.database.db, roomId, [['m.room.member', bob.userId]]);
    expect(row?.membership).toBe('join');
    const stored = await getEvent(b.test.server.ctx.database.db, row!.event_id);
    expect(Object.keys(stored!.json['signatures'] as Record<string, unknown>).sort()).toEqual([a.serverName, b.serverName].sort());

    const refused = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: carol.accessToken, body: {} });
    expect(refused.status).toBe(403);
    const joined = await api(b.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: carol.accessToken });
    expect(joined.body.joined_rooms).not.toContain(roomId);
  });
});

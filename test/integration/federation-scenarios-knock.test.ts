/**
 * Knocking over federation between two real Axon servers over HTTPS on the
 * loopback: bob on B knocks on alice's knock room on A (make_knock,
 * send_knock); the knock shows in bob's /sync `knock` section with the
 * resident's stripped state and in A's room state; alice then invites him
 * and he joins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { until } from '../helpers/until.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

async function membershipOnA(roomId: string): Promise<string | undefined> {
  const res = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, { token: alice.accessToken });
  return res.status === 200 ? (res.body.membership as string) : undefined;
}

describe('knocking over federation', () => {
  it('bob knocks on a knock room on A: his sync shows it with the stripped state, A holds the knock; alice invites, bob joins', async () => {
    const created = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', {
      token: alice.accessToken,
      body: { room_version: '10', name: 'Knock here', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] },
    });
    expect(created.status).toBe(200);
    const roomId = created.body.room_id as string;
    const knock = await api(b.test, 'POST', `/_matrix/client/v3/knock/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: { reason: 'let me in' } });
    expect(knock.status, JSON.stringify(knock.body)).toBe(200);
    expect(knock.body.room_id).toBe(roomId);

    const sync = await api(b.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: bob.accessToken });
    const knocked = (sync.body.rooms as { knock: Record<string, { knock_state: { events: { type: string; content: Record<string, unknown> }[] } }> }).knock[roomId];
    expect(knocked).toBeDefined();
    expect(knocked!.knock_state.events.find((e) => e.type === 'm.room.name')?.content.name).toBe('Knock here');
    expect(knocked!.knock_state.events.find((e) => e.type === 'm.room.member')?.content.membership).toBe('knock');
    expect(await membershipOnA(roomId)).toBe('knock');

    const invite = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } });
    expect(invite.status, JSON.stringify(invite.body)).toBe(200);
    const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(join.status, JSON.stringify(join.body)).toBe(200);
    await until(async () => (await membershipOnA(roomId)) === 'join');
  });

  it('a knock on a room that does not allow it is the resident’s 403, and nothing is stored', async () => {
    const created = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { room_version: '10', preset: 'private_chat' } });
    const roomId = created.body.room_id as string;
    const knock = await api(b.test, 'POST', `/_matrix/client/v3/knock/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(knock.status).toBe(403);
    expect(knock.body.errcode).toBe('M_FORBIDDEN');
    const sync = await api(b.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: bob.accessToken });
    expect(JSON.stringify(sync.body)).not.toContain(roomId);
    const unknown = await api(b.test, 'POST', `/_matrix/client/v3/knock/${enc('!nope:localhost:1')}`, { token: bob.accessToken, body: {} });
    expect(unknown.status).toBe(502);
  });
});

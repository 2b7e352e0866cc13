/**
 * Joining across two real Axon servers over HTTPS on the loopback:
 * make_join and send_join v2 both ways (room version negotiation, the
 * state and auth chain verified and stored by the joiner), then PDUs sent
 * with /send, checked on receipt (signatures, hashes, auth) before they
 * touch the room.
 */
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import {
  signedFederationRequest,
  startFederationPair,
  type FederationPair,
  type FederationServer,
  createRoomOn as createRoom,
  membersOn as members,
} from '../helpers/federation.js';
import { api, type TestUser } from '../helpers/users.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let agent: Agent;
const enc = encodeURIComponent;

let pair: FederationPair;
beforeAll(async () => {
  pair = await startFederationPair();
  ({ a, b, alice, bob, agent } = pair);
  await api(b.test, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { token: bob.accessToken, body: { displayname: 'Bob of B' } });
}, 60_000);

afterAll(() => pair?.close());

/** A federation request from `from` to `to`, signed with `from`'s key. */
const fed = (from: FederationServer, to: FederationServer, method: 'GET' | 'PUT' | 'POST', uri: string, body?: unknown) =>
  signedFederationRequest(agent, from, to, method, uri, body);

async function state(t: FederationServer, user: TestUser, roomId: string, type: string, key = '') {
  return api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/${type}/${enc(key)}`, { token: user.accessToken });
}

describe('joining a room on another server', () => {
  for (const version of ['1', '3', '6', '10', '11', '12']) {
    it(`room version ${version}: bob on B joins alice's public room on A, and both servers hold the same state`, async () => {
      const roomId = await createRoom(a, alice, { preset: 'public_chat', name: `v${version} room`, room_version: version });
      const path = `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`;
      const res = await api(b.test, 'POST', path, { token: bob.accessToken, body: { reason: 'hi' } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.room_id).toBe(roomId);

      // B holds the room's state from the join: the name alice set, and bob's join with his profile.
      const name = await state(b, bob, roomId, 'm.room.name');
      expect(name.status).toBe(200);
      expect(name.body.name).toBe(`v${version} room`);
      const bobMember = await state(b, bob, roomId, 'm.room.member', bob.userId);
      expect(bobMember.body).toMatchObject({ membership: 'join', displayname: 'Bob of B', reason: 'hi' });
      expect(await members(b, bob, roomId)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'join' });
      // A stored the join send_join gave it.
      expect(await members(a, alice, roomId)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'join' });
      // B's joined rooms and sync show it.
      const joined = await api(b.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken });
      expect(joined.body.joined_rooms).toContain(roomId);
      const sync = await api(b.test, 'GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
      const room = (sync.body.rooms as { join: Record<string, { state: { events: { type: string }[] }; timeline: { events: { type: string; state_key?: string }[] } }> }).join[
        roomId
      ];
      expect(room).toBeDefined();
      const types = [...room!.state.events, ...room!.timeline.events].map((e) => e.type);
      expect(types).toContain('m.room.create');
      expect(types).toContain('m.room.name');
    });
  }

  it('refuses an invite-only room with the resident’s 403, and an unknown room with 404', async () => {
    const roomId = await createRoom(a, alice, { preset: 'private_chat' });
    const res = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    const unknown = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(`!nope:${a.serverName}`)}`, { token: bob.accessToken, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    expect(await api(b.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken }).then((r) => r.body.joined_rooms)).not.toContain(roomId);
  });

  it('joins through a remote alias', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', room_alias_name: 'fedjoin' });
    const res = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(`#fedjoin:${a.serverName}`)}`, { token: bob.accessToken, body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.room_id).toBe(roomId);
  });
});

describe('make_join and send_join as the resident', () => {
  it('make_join negotiates the room version and answers a template for the origin’s own users only', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
    const carol = `@carol:${b.serverName}`;
    const ok = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(carol)}?ver=9&ver=10`);
    expect(ok.status).toBe(200);
    expect(ok.body.room_version).toBe('10');
    const template = ok.body.event as Record<string, unknown>;
    expect(template).toMatchObject({ type: 'm.room.member', state_key: carol, sender: carol, room_id: roomId, content: { membership: 'join' } });
    expect(template.signatures).toBeUndefined();
    expect(Array.isArray(template.prev_events) && Array.isArray(template.auth_events)).toBe(true);

    const old = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(carol)}?ver=1&ver=2`);
    expect(old.status).toBe(400);
    expect(old.body).toMatchObject({ errcode: 'M_INCOMPATIBLE_ROOM_VERSION', room_version: '10' });
    const none = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(carol)}`);
    expect(none.body.errcode).toBe('M_INCOMPATIBLE_ROOM_VERSION');
    const notTheirs = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(alice.userId)}?ver=10`);
    expect(notTheirs.status).toBe(403);
    const unsigned = await request(`${a.url}/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(carol)}?ver=10`, { dispatcher: agent });
    expect(unsigned.statusCode).toBe(401);
    await unsigned.body.dump();
  });

  it('send_join refuses an event that is not the one in the path or not signed by its server, and stores nothing', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
    const carol = `@carol:${b.serverName}`;
    const made = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(carol)}?ver=10`);
    const event = { ...(made.body.event as Record<string, unknown>), origin_server_ts: Date.now() } as unknown as PDU;
    const signed = hashAndSignEvent(event, '10', b.serverName, b.test.server.ctx.keys.current);
    const id = computeEventId(signed, '10');

    const wrongPath = await fed(b, a, 'PUT', `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc('$other')}`, signed);
    expect(wrongPath.status).toBe(400);
    const forged = { ...signed, signatures: { [b.serverName]: { [b.test.server.ctx.keys.current.keyId]: 'AAAA' } } };
    const bad = await fed(b, a, 'PUT', `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(id)}`, forged);
    expect(bad.status).toBe(400);
    expect(await members(a, alice, roomId)).toEqual({ [alice.userId]: 'join' });

    const good = await fed(b, a, 'PUT', `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(id)}`, signed);
    expect(good.status).toBe(200);
    expect(good.body.origin).toBe(a.serverName);
    expect(good.body.members_omitted).toBe(false);
    expect([...(good.body.servers_in_room as string[])].sort()).toEqual([a.serverName, b.serverName].sort());
    const stateTypes = (good.body.state as { type: string }[]).map((e) => e.type).sort();
    expect(stateTypes).toEqual(expect.arrayContaining(['m.room.create', 'm.room.join_rules', 'm.room.member', 'm.room.power_levels']));
    expect(await members(a, alice, roomId)).toEqual({ [alice.userId]: 'join', [carol]: 'join' });
    const v1 = await fed(b, a, 'PUT', `/_matrix/federation/v1/send_join/${enc(roomId)}/${enc(id)}`, signed);
    expect(v1.status).toBe(200);
    expect(Array.isArray(v1.body)).toBe(true);
  });
});

describe('PDUs over /send', () => {
  let roomId: string;
  beforeAll(async () => {
    roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '11' });
    const res = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });
    expect(res.status).toBe(200);
  });

  /** A message from bob as B would send it: built on B's view of the room, signed by B. */
  async function bobsMessage(body: string, tweak: (e: PDU) => PDU = (e) => e): Promise<{ pdu: PDU; id: string }> {
    const svc = b.test.server.ctx.services;
    const room = await svc.rooms.pipeline.room(b.test.server.ctx.database.db, roomId);
    const built = await svc.rooms.pipeline.builder.build(
      b.test.server.ctx.database.db,
      room,
      (await import('../../src/core/room-versions.js')).requireRoomVersion('11'),
      bob.userId,
      { type: 'm.room.message', content: { msgtype: 'm.text', body } },
      Date.now(),
    );
    const pdu = tweak(built.pdu);
    return { pdu, id: computeEventId(pdu, '11') };
  }

  async function timelineBodies(): Promise<string[]> {
    const res = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
    return (res.body.chunk as { type: string; content: { body?: string } }[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body ?? '');
  }

  it('stores a good PDU, answers a result per PDU, and answers a replayed transaction the same', async () => {
    const { pdu, id } = await bobsMessage('hello from B');
    const txn = { origin: b.serverName, origin_server_ts: Date.now(), pdus: [pdu] };
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/t1`, txn);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ pdus: { [id]: {} } });
    expect(await timelineBodies()).toContain('hello from B');
    const again = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/t1`, txn);
    expect(again.body).toEqual(res.body);
    expect((await timelineBodies()).filter((x) => x === 'hello from B')).toHaveLength(1);
  });

  it('drops a PDU with a bad signature, redacts one with a bad content hash, and rejects one the auth rules refuse, each on its own', async () => {
    const forged = await bobsMessage('forged', (e) => ({ ...e, signatures: { [b.serverName]: { [b.test.server.ctx.keys.current.keyId]: 'AAAA' } } }));
    // Content changed after signing: the signature (over the redacted form) still holds, the hash does not.
    const tampered = await bobsMessage('original', (e) => ({ ...e, content: { msgtype: 'm.text', body: 'tampered' } }));
    // bob may not change the power levels (alice's room): stored rejected, never shown.
    const svc = b.test.server.ctx.services;
    const db = b.test.server.ctx.database.db;
    const room = await svc.rooms.pipeline.room(db, roomId);
    const rv = (await import('../../src/core/room-versions.js')).requireRoomVersion('11');
    const pl = await svc.rooms.pipeline.builder.build(
      db,
      room,
      rv,
      bob.userId,
      { type: 'm.room.power_levels', state_key: '', content: { users: { [bob.userId]: 100 } } },
      Date.now(),
    );
    const plId = computeEventId(pl.pdu, '11');
    const good = await bobsMessage('still delivered');
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/t2`, {
      origin: b.serverName,
      origin_server_ts: Date.now(),
      pdus: [forged.pdu, tampered.pdu, pl.pdu, good.pdu],
    });
    expect(res.status).toBe(200);
    const results = res.body.pdus as Record<string, { error?: string }>;
    expect(results[forged.id]?.error).toMatch(/signature/);
    expect(results[tampered.id]).toEqual({});
    expect(results[plId]).toEqual({});
    expect(results[good.id]).toEqual({});
    const bodies = await timelineBodies();
    expect(bodies).toContain('still delivered');
    expect(bodies).not.toContain('forged');
    expect(bodies).not.toContain('tampered');
    const levels = await state(a, alice, roomId, 'm.room.power_levels');
    expect((levels.body.users as Record<string, number>)[bob.userId]).toBeUndefined();
  });

  it('refuses a transaction of 51 PDUs with 400 and stores none of it', async () => {
    const pdus = [];
    for (let i = 0; i < 51; i++) pdus.push((await bobsMessage(`bulk ${i}`)).pdu);
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/t3`, { origin: b.serverName, origin_server_ts: Date.now(), pdus });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_BAD_JSON');
    expect((await timelineBodies()).some((x) => x.startsWith('bulk'))).toBe(false);
  });
});

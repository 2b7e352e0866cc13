/**
 * Hostile federation input against a real Axon over HTTPS on the loopback:
 * a request signed for another destination, an event soft-failed against
 * the current state, an event whose auth events do not allow it, and a
 * server name on a private address with the default ip_range_blacklist.
 * Each answers the spec's error (never a 500) and stores nothing it should not.
 */
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { eventPlacements } from '../../src/storage/events.js';
import { startFederationServer, startFederationServers, type FederationServer } from '../helpers/federation.js';
import { testCaAgent } from '../helpers/test-ca.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let agent: Agent;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  agent = testCaAgent();
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await Promise.all([a?.close(), b?.close()]);
});

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function fed(from: FederationServer, to: FederationServer, method: 'GET' | 'PUT', uri: string, body?: unknown, destination = to.serverName) {
  const auth = xMatrixAuthorization({ method, uri, origin: from.serverName, destination, content: body }, from.test.server.ctx.keys.current);
  const res = await request(`${to.url}${uri}`, {
    method,
    dispatcher: agent,
    headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function sharedRoom(): Promise<string> {
  const res = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat', room_version: '11' } });
  const roomId = res.body.room_id as string;
  const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
  expect(join.status, JSON.stringify(join.body)).toBe(200);
  return roomId;
}

/** An event from bob as B would build it on its view of the room, signed by B. */
async function bobsEvent(roomId: string, content: { type: string; state_key?: string; content: Record<string, unknown> }): Promise<{ pdu: PDU; id: string }> {
  const svc = b.test.server.ctx.services;
  const db = b.test.server.ctx.database.db;
  const room = await svc.rooms.pipeline.room(db, roomId);
  const built = await svc.rooms.pipeline.builder.build(db, room, requireRoomVersion('11'), bob.userId, content, Date.now());
  return { pdu: built.pdu, id: computeEventId(built.pdu, '11') };
}

async function timeline(roomId: string): Promise<string[]> {
  const res = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=50`, { token: alice.accessToken });
  return (res.body.chunk as { event_id: string }[]).map((e) => e.event_id);
}

describe('hostile federation requests', () => {
  it('a request signed for another destination is 401 M_UNAUTHORIZED, and its transaction is not handled', async () => {
    const roomId = await sharedRoom();
    const msg = await bobsEvent(roomId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'misdirected' } });
    const txn = { origin: b.serverName, origin_server_ts: Date.now(), pdus: [msg.pdu] };
    const res = await fed(b, a, 'PUT', '/_matrix/federation/v1/send/wrongdest', txn, 'elsewhere.example');
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');
    expect((await eventPlacements(a.test.server.ctx.database.db, [msg.id])).size).toBe(0);
    // The same transaction id, signed right, is then handled (the refused one was not remembered).
    const ok = await fed(b, a, 'PUT', '/_matrix/federation/v1/send/wrongdest', txn);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ pdus: { [msg.id]: {} } });
    expect(await timeline(roomId)).toContain(msg.id);
  });

  it('a message from a user banned in the current state but allowed at its prev events is stored soft-failed and never served', async () => {
    const roomId = await sharedRoom();
    // Built before the ban: at its prev events bob is joined.
    const early = await bobsEvent(roomId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'from before the ban' } });
    const ban = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/ban`, { token: alice.accessToken, body: { user_id: bob.userId } });
    expect(ban.status).toBe(200);
    const res = await fed(b, a, 'PUT', '/_matrix/federation/v1/send/softfail', { origin: b.serverName, origin_server_ts: Date.now(), pdus: [early.pdu] });
    expect(res.status).toBe(200);
    const placed = (await eventPlacements(a.test.server.ctx.database.db, [early.id])).get(early.id);
    expect(placed).toBeDefined();
    expect(placed!.soft_failed).toBe(true);
    expect(placed!.rejected_reason).toBeNull();
    expect(await timeline(roomId)).not.toContain(early.id);
    const direct = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(early.id)}`, { token: alice.accessToken });
    expect(direct.status).toBe(404);
    const sync = await api(a.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: alice.accessToken });
    expect(JSON.stringify(sync.body)).not.toContain(early.id);
  });

  it('a state event its auth events do not allow is rejected and never in state', async () => {
    const roomId = await sharedRoom();
    const name = await bobsEvent(roomId, { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'invite' } });
    // Bob (power 0) may not change the join rules; his server built it anyway.
    const res = await fed(b, a, 'PUT', '/_matrix/federation/v1/send/unauthorised', { origin: b.serverName, origin_server_ts: Date.now(), pdus: [name.pdu] });
    expect(res.status).toBe(200);
    const placed = (await eventPlacements(a.test.server.ctx.database.db, [name.id])).get(name.id);
    expect(placed === undefined || placed.rejected_reason !== null).toBe(true);
    const rules = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.join_rules/`, { token: alice.accessToken });
    expect(rules.body.join_rule).toBe('public');
    expect(await timeline(roomId)).not.toContain(name.id);
  });
});

describe('the default ip_range_blacklist', () => {
  it('a server without the loopback whitelist refuses to join through localhost:PORT and makes no request', async () => {
    const c = await startFederationServer({ yaml: { ip_range_whitelist: [] } });
    try {
      const carol = await createUser(c.test, 'carol');
      const res = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } });
      const roomId = res.body.room_id as string;
      const join = await api(c.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: carol.accessToken, body: {} });
      expect(join.status).toBeGreaterThanOrEqual(400);
      expect(join.status).not.toBe(500);
      expect(join.body.errcode).toBeDefined();
      // Nothing reached A: carol is not in the room's members there.
      const members = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/members`, { token: alice.accessToken });
      expect(JSON.stringify(members.body)).not.toContain(carol.userId);
      const joined = await api(c.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: carol.accessToken });
      expect(joined.body.joined_rooms).not.toContain(roomId);
    } finally {
      await c.close();
    }
  });
});

/**
 * Hostile federation input against a real Axon over HTTPS on the loopback:
 * a request signed for another destination, an event soft-failed against
 * the current state, an event whose auth events do not allow it, and a
 * server name on a private address with the default ip_range_blacklist.
 * Each answers the spec's error (never a 500) and stores nothing it should not.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import type { EventDraft } from '../../src/services/rooms/event-draft.js';
import { eventPlacements } from '../../src/storage/events.js';
import { startFederationServer, startFederationPair, type FederationPair, type FederationServer } from '../helpers/federation.js';
import { freePort } from '../helpers/ports.js';
import { issueLeaf } from '../helpers/test-ca.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { until } from '../helpers/until.js';

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
}, 60_000);

afterAll(() => pair?.close());

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
async function bobsEvent(roomId: string, content: EventDraft): Promise<{ pdu: PDU; id: string }> {
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

describe('a resident answering send_join with too much', () => {
  it('a 70 MB send_join answer (past the 64 MiB cap, streamed without a length) fails the join with 502 and stores nothing', async () => {
    const port = await freePort();
    const fake = `localhost:${port}`;
    const roomId = `!huge:${fake}`;
    const leaf = issueLeaf();
    const requests: string[] = [];
    const server: Server = createServer({ cert: readFileSync(leaf.chainPath), key: readFileSync(leaf.keyPath) }, (req, res) => {
      requests.push(`${req.method} ${req.url?.split('?')[0]}`);
      req.resume();
      if (req.url?.startsWith('/_matrix/federation/v1/make_join/')) {
        const userId = decodeURIComponent(req.url.split('/')[5]!.split('?')[0]!);
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            room_version: '10',
            event: {
              type: 'm.room.member',
              state_key: userId,
              sender: userId,
              room_id: roomId,
              content: { membership: 'join' },
              prev_events: ['$p'],
              auth_events: ['$c'],
              depth: 3,
              origin_server_ts: Date.now(),
            },
          }),
        );
        return;
      }
      if (req.url?.startsWith('/_matrix/federation/v2/send_join/')) {
        // 70 MB of "state", chunked: no content-length to refuse it early.
        res.setHeader('content-type', 'application/json');
        res.write('{"state":[');
        const filler = JSON.stringify({ type: 'x', content: { pad: 'y'.repeat(1_000_000) } });
        let i = 0;
        const more = () => {
          while (i < 70) {
            const ok = res.write((i === 0 ? '' : ',') + filler);
            i++;
            if (!ok) return void res.once('drain', more);
          }
          res.end('],"auth_chain":[]}');
        };
        res.on('error', () => undefined);
        more();
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ errcode: 'M_UNRECOGNIZED', error: 'no' }));
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(fake)}`, { token: bob.accessToken, body: {} });
      expect(join.status, JSON.stringify(join.body)).toBe(502);
      expect(join.body.errcode).toBe('M_UNKNOWN');
      expect(requests.some((r) => r.startsWith('PUT /_matrix/federation/v2/send_join/'))).toBe(true);
      const svc = b.test.server.ctx.services;
      expect(await svc.rooms.pipeline.room(b.test.server.ctx.database.db, roomId).catch(() => undefined)).toBeUndefined();
      const joined = await api(b.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken });
      expect(joined.body.joined_rooms).not.toContain(roomId);
      const sync = await api(b.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: bob.accessToken });
      expect(JSON.stringify(sync.body)).not.toContain(roomId);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 30_000);
});

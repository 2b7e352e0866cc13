/**
 * Inbound /send with many PDUs of one room (FederationEvents.placeAll): the
 * PDUs that need nothing fetched are persisted in one transaction, each
 * with its own result: one the auth rules reject is stored rejected and
 * the others land; one that needs fetching (an unknown prev event) is
 * placed alone and fails alone; one that throws inside the run leaves
 * nothing of itself and does not stop the others. The timeline keeps the
 * order the PDUs came in.
 */
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import type { PDU } from '../../src/core/pdu.js';
import type { PersistedEvent } from '../../src/services/rooms/event-persister.js';
import { getEvents } from '../../src/storage/events.js';
import { forwardExtremities } from '../../src/storage/rooms.js';
import { signedFederationRequest, startFederationPair, type FederationPair, type FederationServer, createRoomOn as createRoom } from '../helpers/federation.js';
import { remoteEvent } from '../helpers/remote-member.js';
import { api, type TestUser } from '../helpers/users.js';

const ROOM_VERSION = '11';
const enc = encodeURIComponent;

let pair: FederationPair;
let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let agent: Agent;

beforeAll(async () => {
  pair = await startFederationPair();
  ({ a, b, alice, bob, agent } = pair);
}, 60_000);

afterAll(() => pair?.close());

const fed = (uri: string, body: unknown) => signedFederationRequest(agent, b, a, 'PUT', uri, body);

/** A room on A that bob (of B) has joined, and a builder of B's PDUs chained from A's forward extremity. */
async function roomWithBob(): Promise<{
  roomId: string;
  build: (draft: { type: string; content: Record<string, unknown>; state_key?: string; prev?: string[] }) => PDU;
  firstPrev: () => string;
}> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: ROOM_VERSION });
  expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
  const first = await remoteEvent(a, b, roomId, bob.userId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'template' } });
  const { hashes: _h, signatures: _s, ...template } = first;
  let last = first.prev_events.map((p) => (typeof p === 'string' ? p : p[0]));
  let depth = first.depth;
  const build = (draft: { type: string; content: Record<string, unknown>; state_key?: string; prev?: string[] }): PDU => {
    const { prev, ...rest } = draft;
    const pdu = hashAndSignEvent(
      { ...template, ...rest, prev_events: prev ?? last, depth: depth++, origin_server_ts: Date.now() },
      ROOM_VERSION,
      b.serverName,
      b.test.server.ctx.keys.current,
    ) as PDU;
    last = [computeEventId(pdu, ROOM_VERSION)];
    return pdu;
  };
  return { roomId, build, firstPrev: () => last[0]! };
}

const idOf = (pdu: PDU) => computeEventId(pdu, ROOM_VERSION);
const message = (body: string) => ({ type: 'm.room.message', content: { msgtype: 'm.text', body } });

/** The bodies of the room's last `n` messages as alice sees them, oldest first. */
async function timeline(roomId: string, n: number): Promise<string[]> {
  const res = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=${n}&filter=${enc(JSON.stringify({ types: ['m.room.message'] }))}`, {
    token: alice.accessToken,
  });
  expect(res.status).toBe(200);
  return (res.body.chunk as { content: { body: string } }[]).map((e) => e.content.body).reverse();
}

describe('a /send of a chain of PDUs into one room', () => {
  it('one rejected in the middle is stored rejected, one with an unknown prev fails alone, the rest land in order, in few transactions', async () => {
    const { roomId, build } = await roomWithBob();
    const m1 = build(message('one'));
    const m2 = build(message('two'));
    // bob has power level 0: the auth rules reject this, but it is handled (stored rejected) and the chain goes on from it.
    const pl = build({ type: 'm.room.power_levels', state_key: '', content: { users: { [bob.userId]: 100 } } });
    const m3 = build(message('three'));
    // Cites an event nobody has: needs fetching, which B cannot answer.
    const lost = build({ ...message('lost'), prev: ['$unknownunknownunknownunknownunknownunknown00'] });
    const m4 = build({ ...message('four'), prev: [idOf(m3)] });

    const { persister } = a.test.server.ctx.services.rooms.pipeline;
    const transactions = vi.spyOn(persister, 'transaction');
    const commits: string[][] = [];
    persister.onCommitted((events: readonly PersistedEvent[]) => {
      if (events.some((e) => e.roomId === roomId)) commits.push(events.map((e) => e.eventId));
    });
    const res = await fed(`/_matrix/federation/v1/send/batch1`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [m1, m2, pl, m3, lost, m4] });
    const during = transactions.mock.calls.length;
    transactions.mockRestore();
    expect(res.status).toBe(200);
    const results = res.body.pdus as Record<string, { error?: string }>;
    for (const p of [m1, m2, pl, m3, m4]) expect(results[idOf(p)]).toEqual({});
    expect(results[idOf(lost)]?.error).toBeTruthy();

    const stored = await getEvents(a.test.server.ctx.database.db, [m1, m2, pl, m3, lost, m4].map(idOf));
    expect(stored.get(idOf(pl))?.rejected_reason).toBeTruthy();
    expect(stored.has(idOf(lost))).toBe(false);
    const orderings = [m1, m2, pl, m3, m4].map((p) => Number(stored.get(idOf(p))!.stream_ordering));
    expect([...orderings].sort((x, y) => x - y)).toEqual(orderings);
    expect(await timeline(roomId, 4)).toEqual(['one', 'two', 'three', 'four']);
    // The four before `lost` committed together, the hooks told of them once; `lost` alone (a failed attempt), m4 in its own.
    expect(commits[0]).toEqual([m1, m2, pl, m3].map(idOf));
    expect(commits.flat().filter((id) => id === idOf(m1))).toHaveLength(1);
    expect(during).toBeLessThanOrEqual(3);
    // Still a room both sides can go on in: bob's power did not change.
    const power = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.power_levels/`, { token: alice.accessToken });
    expect((power.body.users as Record<string, number> | undefined)?.[bob.userId]).toBeUndefined();
  });

  it('a PDU that throws while the run is persisted leaves nothing of itself; the others land once each, in order', async () => {
    const { roomId, build } = await roomWithBob();
    const first = build(message('a'));
    const failing = build(message('b'));
    // c forks from a, so it needs nothing of b.
    const c = build({ ...message('c'), prev: [idOf(first)] });
    const d = build(message('d'));
    const { persister } = a.test.server.ctx.services.rooms.pipeline;
    const original = persister.persist.bind(persister);
    const persist = vi.spyOn(persister, 'persist').mockImplementation(async (tx, room, pdu, opts) => {
      const out = await original(tx, room, pdu, opts);
      // After its rows are written: a failure that must roll them back.
      if (out.eventId === idOf(failing)) throw new Error('disk on fire');
      return out;
    });
    const commits: string[][] = [];
    persister.onCommitted((events: readonly PersistedEvent[]) => {
      if (events.some((e) => e.roomId === roomId)) commits.push(events.map((e) => e.eventId));
    });
    let res;
    try {
      res = await fed(`/_matrix/federation/v1/send/batch2`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [first, failing, c, d] });
    } finally {
      persist.mockRestore();
    }
    expect(res.status).toBe(200);
    const results = res.body.pdus as Record<string, { error?: string }>;
    expect(results[idOf(failing)]).toEqual({ error: 'disk on fire' });
    for (const p of [first, c, d]) expect(results[idOf(p)]).toEqual({});
    const db = a.test.server.ctx.database.db;
    const stored = await getEvents(db, [first, failing, c, d].map(idOf));
    expect([...stored.keys()].sort()).toEqual([first, c, d].map(idOf).sort());
    const edges = await db.selectFrom('event_edges').select('event_id').where('event_id', '=', idOf(failing)).execute();
    expect(edges).toEqual([]);
    expect((await forwardExtremities(db, roomId)).map((e) => e.event_id)).toEqual([idOf(d)]);
    expect(await timeline(roomId, 3)).toEqual(['a', 'c', 'd']);
    // Each stored event was told to the hooks once.
    const told = commits.flat();
    for (const p of [first, c, d]) expect(told.filter((id) => id === idOf(p))).toHaveLength(1);
    expect(told).not.toContain(idOf(failing));
  });
});

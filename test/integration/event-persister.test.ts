/**
 * The event persister against a real database, with forked DAGs built by the
 * state resolution fixtures (each event checked against the auth rules as it
 * is built): two branches that change the same state key, a branch with a
 * ban, a rejected event in the middle, a soft-failed event, an outlier and a
 * backfilled event, for room versions 1, 2, 10, 11 and 12. The room's
 * current state and each event's state before are compared with
 * `resolveState` over the same events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authEventSelection } from '../../src/core/auth/index.js';
import { eventId as referenceHash } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import type { EventPersister, PersistedEvent, PersistOptions } from '../../src/services/rooms/event-persister.js';
import { eventPlacements } from '../../src/storage/events.js';
import { forwardExtremities, getRoom, insertRoom } from '../../src/storage/rooms.js';
import { currentState, stateAtGroup } from '../../src/storage/state.js';
import { ALICE, BOB, Branch, CHARLIE, powerContent, standardRoom, type Entry, type Room } from '../core/fixtures/state-res.js';
import { roomHelpers, useServerWithUsers } from '../helpers/rooms.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { api } from '../helpers/users.js';

type Db = TestServer['server']['ctx']['database']['db'];

const sorted = (entries: readonly Entry[]) => [...entries].map((e) => e.join('|')).sort();

async function currentEntries(db: Db, roomId: string): Promise<string[]> {
  return sorted((await currentState(db, roomId)).map((r) => [r.type, r.state_key, r.event_id]));
}

async function groupEntries(db: Db, group: number | null): Promise<string[]> {
  if (group === null) return [];
  return sorted([...(await stateAtGroup(db, group))].map(([k, id]) => [...(k.split('\u0000') as [string, string]), id]));
}

describe.each(['1', '2', '10', '11', '12'])('room version %s: forked DAGs', (version) => {
  let t: TestServer;
  let db: Db;
  let persister: EventPersister;
  let room: Room;
  let main: Branch;

  const persist = async (name: string, opts: PersistOptions = {}): Promise<PersistedEvent> => {
    const row = await getRoom(db, room.roomId);
    if (!row) throw new Error('no room row');
    return persister.transaction((tx) => persister.persist(tx, row, structuredClone(room.event(name)), opts));
  };
  const extremities = async () => (await forwardExtremities(db, room.roomId)).map((e) => room.nameOf(e.event_id)).sort();

  beforeAll(async () => {
    t = await startTestServer();
    db = t.server.ctx.database.db;
    persister = t.server.ctx.services.rooms.pipeline.persister;
    ({ room, main } = standardRoom(version, { members: [BOB, CHARLIE], levels: { [BOB]: 50 }, idMode: 'hash' }));
    await insertRoom(db, { roomId: room.roomId, version, creator: ALICE, isPublic: false, now: Date.now() });
    for (const name of ['create', 'join-alice', 'pl0', 'jr0', 'join-bob', 'join-charlie']) {
      const p = await persist(name);
      expect(p.rejected, name).toBeUndefined();
    }
  });
  afterAll(async () => t?.close());

  it('a linear start: the current state is the branch state, one extremity', async () => {
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(main.entries()));
    expect(await extremities()).toEqual(['join-charlie']);
  });

  // Kept for the backfill test: a point before every fork below.
  let early: Branch;
  let a: Branch;
  let b: Branch;
  it('two branches change the same state key: both are extremities, the current state is their resolution', async () => {
    early = main.fork();
    a = main.fork();
    b = main.fork();
    a.topic('topic-a', ALICE, 'A');
    b.topic('topic-b', BOB, 'B');
    const expected = room.resolve([a, b]);
    const winner = room.named(expected)['m.room.topic|'];
    expect(['topic-a', 'topic-b']).toContain(winner);
    // The winner first: a store where the last event written wins would end on the other.
    const loser = winner === 'topic-a' ? 'topic-b' : 'topic-a';
    await persist(winner!);
    await persist(loser);
    expect(await extremities()).toEqual(['topic-a', 'topic-b']);
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(expected));
    const [topic] = await currentState(db, room.roomId, [['m.room.topic', '']]);
    expect(topic?.event_id).toBe(room.id(winner!));
  });

  let c: Branch;
  it('an event citing both branches has their resolution as its state before, and is the one extremity', async () => {
    c = room.merge([a, b]);
    c.send({ name: 'merge1', type: 'm.room.message', sender: ALICE, content: { body: 'merged' } });
    const p = await persist('merge1');
    expect(p.rejected).toBeUndefined();
    expect(await groupEntries(db, p.stateGroupBefore)).toEqual(sorted(room.resolve([a, b])));
    expect(p.stateGroupAfter).toBe(p.stateGroupBefore);
    expect(await extremities()).toEqual(['merge1']);
  });

  let banned: Branch;
  let naming: Branch;
  it('a branch with a ban against a branch where the banned user acts: the ban stands', async () => {
    banned = c.fork();
    naming = c.fork();
    banned.ban('ban-bob', ALICE, BOB);
    naming.roomName('name-bob', BOB, "Bob's room");
    // Bob's name first: once the ban is current, his event would be soft-failed (see below).
    expect((await persist('name-bob')).softFailed).toBe(false);
    expect((await persist('ban-bob')).softFailed).toBe(false);
    const expected = room.resolve([banned, naming]);
    expect(room.named(expected)[`m.room.member|${BOB}`]).toBe('ban-bob');
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(expected));
    const [bob] = await currentState(db, room.roomId, [['m.room.member', BOB]]);
    expect(bob?.membership).toBe('ban');
    expect(await extremities()).toEqual(['ban-bob', 'name-bob']);
  });

  let after: Branch;
  it('a rejected event in the middle: stored with its reason, no state, no extremity; the event after it builds on the state before it', async () => {
    const d = room.merge([banned, naming]);
    const bad = d.fork();
    // Charlie (level 0) makes himself an admin: his auth events do not allow it.
    bad.send({ name: 'pl-charlie', type: 'm.room.power_levels', stateKey: '', sender: CHARLIE, content: powerContent(room, ALICE, { [CHARLIE]: 100 }), unauthorised: true });
    const rejected = await persist('pl-charlie');
    expect(rejected.rejected).toMatch(/power|level/i);
    expect(rejected.stateGroupAfter).toBe(rejected.stateGroupBefore);
    const stored = (await eventPlacements(db, [room.id('pl-charlie')])).get(room.id('pl-charlie'));
    expect(stored?.rejected_reason).toBe(rejected.rejected);
    expect(await extremities()).toEqual(['ban-bob', 'name-bob']);
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(d.entries()));

    // The next event cites the rejected one; the state it sees is the state without it.
    after = new Branch(room, new Map(d.state), [room.id('pl-charlie')], bad.depth);
    after.topic('topic-after', ALICE, 'after the rejected event');
    const p = await persist('topic-after');
    expect(p.rejected).toBeUndefined();
    expect(await groupEntries(db, p.stateGroupBefore)).toEqual(sorted(d.entries()));
    // Its prev event was never an extremity; the branches it did not cite still are.
    expect(await extremities()).toEqual(['ban-bob', 'name-bob', 'topic-after']);
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(room.resolve([banned, naming, after])));
  });

  it('an event the state before it allows but the current state does not is soft-failed: stored, not served, no extremity', async () => {
    // Bob, banned now, sets the topic on top of the branch where he was not.
    const late = naming.fork();
    late.topic('topic-bob-late', BOB, 'from before the ban');
    const before = await currentEntries(db, room.roomId);
    const p = await persist('topic-bob-late');
    expect(p.rejected).toBeUndefined();
    expect(p.softFailed).toBe(true);
    expect((await eventPlacements(db, [room.id('topic-bob-late')])).get(room.id('topic-bob-late'))?.soft_failed).toBe(true);
    expect(await extremities()).toEqual(['ban-bob', 'name-bob', 'topic-after']);
    expect(await currentEntries(db, room.roomId)).toEqual(before);
  });

  it('an outlier is stored without state or a place among the extremities; persisted again in the DAG it takes its place', async () => {
    const tip = room.merge([banned, naming, after]);
    tip.topic('topic-tip', ALICE, 'the tip');
    const o = await persist('topic-tip', { outlier: true });
    expect(o.outlier).toBe(true);
    expect(o.stateGroupBefore).toBeNull();
    expect(await extremities()).toEqual(['ban-bob', 'name-bob', 'topic-after']);
    const again = await persist('topic-tip');
    expect(again.outlier).toBe(false);
    expect(await extremities()).toEqual(['topic-tip']);
    expect(await currentEntries(db, room.roomId)).toEqual(sorted(tip.entries()));
    // Persisting a stored event again writes nothing.
    expect((await persist('topic-tip')).known).toBe(true);
  });

  it('a backfilled event sorts before every live event and leaves the extremities and current state alone', async () => {
    early.send({ name: 'old-message', type: 'm.room.message', sender: CHARLIE, content: { body: 'from long ago' } });
    const before = await currentEntries(db, room.roomId);
    const p = await persist('old-message', { backfilled: true });
    expect(p.rejected).toBeUndefined();
    expect(p.streamOrdering).toBeLessThan(0);
    expect(await groupEntries(db, p.stateGroupBefore)).toEqual(sorted(main.entries()));
    expect(await extremities()).toEqual(['topic-tip']);
    expect(await currentEntries(db, room.roomId)).toEqual(before);
  });
});

describe('backfilled history through the client API', () => {
  const env = useServerWithUsers('alice');
  const r = roomHelpers(() => env.t);

  it('/sync never shows it as new; /messages pages through it in topological order', async () => {
    const { t, alice } = env;
    const roomId = await r.createRoom(alice, { room_version: '10' });
    const first = await api(t, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: alice.accessToken });
    const since = first.body['next_batch'] as string;

    // A message from alice right after her join, as another server would hand it over in /backfill.
    const db = t.server.ctx.database.db;
    const state = await currentState(db, roomId);
    const idOf = (type: string, key = '') => state.find((s) => s.type === type && s.state_key === key)!.event_id;
    const joinId = idOf('m.room.member', alice.userId);
    const join = (await eventPlacements(db, [joinId])).get(joinId)!;
    const pdu: PDU = {
      room_id: roomId,
      sender: alice.userId,
      origin_server_ts: Date.now() - 60_000,
      type: 'm.room.message',
      content: { msgtype: 'm.text', body: 'backfilled' },
      prev_events: [joinId],
      auth_events: [],
      depth: join.depth + 1,
      hashes: { sha256: 'unchecked' },
    };
    // Its auth events: the selection in the state after the join (create, the join itself).
    pdu.auth_events = authEventSelection(requireRoomVersion('10'), pdu)
      .filter(([type, key]) => type === 'm.room.create' || (type === 'm.room.member' && key === alice.userId))
      .map(([type, key]) => idOf(type, key));
    const id = referenceHash(pdu, '10');
    const persister = t.server.ctx.services.rooms.pipeline.persister;
    const row = (await getRoom(db, roomId))!;
    const p = await persister.transaction((tx) => persister.persist(tx, row, pdu, { backfilled: true }));
    expect(p.eventId).toBe(id);
    expect(p.rejected).toBeUndefined();
    expect(p.streamOrdering).toBeLessThan(0);

    await r.send(alice, roomId, { msgtype: 'm.text', body: 'live' });
    const next = await api(t, 'GET', `/_matrix/client/v3/sync?timeout=0&since=${encodeURIComponent(since)}`, { token: alice.accessToken });
    const timeline = (next.body['rooms'] as any).join[roomId].timeline.events as { event_id: string; content: { body?: string } }[];
    expect(timeline.map((e) => e.content.body)).toEqual(['live']);

    const page = await api(t, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`, { token: alice.accessToken });
    const ids = (page.body['chunk'] as { event_id: string }[]).map((e) => e.event_id).reverse();
    // Oldest first: create, join, then the backfilled message (depth 3, before the live events of depth 3 and up).
    expect(ids.indexOf(id)).toBe(ids.indexOf(joinId) + 1);
    expect(ids[ids.length - 1]).not.toBe(id);
  });
});

/**
 * Long-polling /sync: a waiting request is answered as soon as something
 * arrives for the user (a message, account data, typing, an invite), and
 * empty when its timeout passes; a client that goes away stops waiting;
 * events committed concurrently in many rooms all arrive, exactly once;
 * tokens stay valid across a server restart.
 */
import { describe, expect, it } from 'vitest';
import { restartTestServer } from '../helpers/restart.js';
import { testDatabaseKind } from '../helpers/database.js';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
// PGlite runs one transaction at a time, so writes cannot commit out of order there.
const embedded = (await testDatabaseKind()) === 'embedded';
const enc = encodeURIComponent;

const { t, alice, bob } = useServerWithUsers('alice', 'bob');

async function sync(u: TestUser, params: Record<string, string | number | boolean> = {}, signal?: AbortSignal): Promise<Json> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  const res = await fetch(`${t.url}/_matrix/client/v3/sync?${q}`, { headers: { authorization: `Bearer ${u.accessToken}` }, signal });
  const body = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`sync answered ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function createRoom(u: TestUser, body: object = {}): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: u.accessToken, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}

let txn = 0;
async function send(u: TestUser, roomId: string, body = 'hello'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/lp${++txn}`, { token: u.accessToken, body: { msgtype: 'm.text', body } });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

/** Resolves once `n` requests wait on the notifier (the long-poll is parked). */
async function waiters(n: number): Promise<void> {
  const notifier = t.server.ctx.services.notifier;
  for (let i = 0; i < 500 && notifier.waiters() < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(notifier.waiters()).toBeGreaterThanOrEqual(n);
}

describe('long-polling', () => {
  it('a new message wakes a waiting sync at once', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} });
    const s0 = await sync(bob);
    const pending = sync(bob, { since: s0.next_batch, timeout: 20_000 });
    await waiters(1);
    const eventId = await send(alice, roomId, 'wake up');
    const s1 = await pending;
    expect(s1.rooms.join[roomId].timeline.events.map((e: Json) => e.event_id)).toEqual([eventId]);
    expect(s1.next_batch).not.toBe(s0.next_batch);
  });

  it('with nothing new, answers empty when the timeout passes', async () => {
    const s0 = await sync(bob);
    const s1 = await sync(bob, { since: s0.next_batch, timeout: 300 });
    expect(s1.rooms.join).toEqual({});
    expect(s1.rooms.invite).toEqual({});
    expect(s1.account_data.events).toEqual([]);
    expect(s1.next_batch).toBe(s0.next_batch);
  });

  it('activity in rooms the user is not in does not answer their wait', async () => {
    const other = await createRoom(alice);
    const s0 = await sync(bob);
    const pending = sync(bob, { since: s0.next_batch, timeout: 500 });
    await waiters(1);
    await send(alice, other, 'not for bob');
    const s1 = await pending;
    expect(s1.rooms.join).toEqual({});
  });

  it('account data, typing and invites wake it too', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} });
    let s = await sync(bob);

    let pending = sync(bob, { since: s.next_batch, timeout: 20_000 });
    await waiters(1);
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(bob.userId)}/account_data/org.example.wake`, { token: bob.accessToken, body: { n: 1 } });
    s = await pending;
    expect(s.account_data.events).toEqual([{ type: 'org.example.wake', content: { n: 1 } }]);

    pending = sync(bob, { since: s.next_batch, timeout: 20_000 });
    await waiters(1);
    await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { token: alice.accessToken, body: { typing: true, timeout: 10_000 } });
    s = await pending;
    expect(s.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [alice.userId] } }]);

    const invitedTo = await createRoom(alice);
    s = await sync(bob, { since: s.next_batch });
    pending = sync(bob, { since: s.next_batch, timeout: 20_000 });
    await waiters(1);
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(invitedTo)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } });
    s = await pending;
    expect(s.rooms.invite[invitedTo]).toBeDefined();
  });

  it('a client that goes away stops waiting', async () => {
    const s0 = await sync(bob);
    const before = t.server.ctx.services.notifier.waiters();
    const ac = new AbortController();
    const pending = sync(bob, { since: s0.next_batch, timeout: 30_000 }, ac.signal).catch((err: Error) => err);
    await waiters(before + 1);
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    for (let i = 0; i < 200 && t.server.ctx.services.notifier.waiters() > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.server.ctx.services.notifier.waiters()).toBe(before);
  });

  it('events committed concurrently in many rooms all arrive, exactly once', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < 8; i++) rooms.push(await createRoom(alice));
    let token = (await sync(alice)).next_batch as string;
    const seen: string[] = [];
    let stop = false;
    const poller = (async () => {
      while (!stop) {
        const s = await sync(alice, { since: token, timeout: 1000 });
        for (const r of Object.values(s.rooms.join) as Json[]) for (const e of r.timeline.events) if (e.type === 'm.room.message') seen.push(e.event_id);
        token = s.next_batch;
      }
    })();
    const sent: string[] = [];
    for (let wave = 0; wave < 5; wave++) {
      const ids = await Promise.all(rooms.map((r, i) => send(alice, r, `wave ${wave} room ${i}`)));
      sent.push(...ids);
    }
    for (let i = 0; i < 300 && seen.length < sent.length; i++) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await poller;
    const final = await sync(alice, { since: token });
    for (const r of Object.values(final.rooms.join) as Json[]) for (const e of r.timeline.events) if (e.type === 'm.room.message') seen.push(e.event_id);
    expect(seen.length).toBe(sent.length);
    expect(new Set(seen)).toEqual(new Set(sent));
  });
});

describe('positions only move past settled writes', () => {
  it.skipIf(embedded)('an event committed after a later one is still delivered', async () => {
    const slowRoom = await createRoom(alice);
    const fastRoom = await createRoom(alice);
    const s0 = await sync(alice);
    const db = t.server.ctx.database.db;
    // Hold the slow room's extremity row: its next send takes a stream position, then waits before committing.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.transaction().execute(async (tx) => {
      await tx.selectFrom('forward_extremities').selectAll().where('room_id', '=', slowRoom).forUpdate().execute();
      locked();
      await held;
    });
    await isLocked;
    const slowSend = send(alice, slowRoom, 'slow');
    // Wait until the slow send has its position (its row is inserted but not committed).
    for (let i = 0; i < 200; i++) {
      const r = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('stream_ordering').as('m'))
        .executeTakeFirst();
      const seq = await sqlLastValue();
      if (seq > Number(r?.m ?? 0)) break;
      await new Promise((res) => setTimeout(res, 10));
    }
    const fast = await send(alice, fastRoom, 'fast');
    const s1 = await sync(alice, { since: s0.next_batch });
    release();
    await holder;
    const slow = await slowSend;
    const s2 = await sync(alice, { since: s1.next_batch });
    const got = [s1, s2].flatMap((s) => (Object.values(s.rooms.join) as Json[]).flatMap((r) => r.timeline.events.map((e: Json) => e.event_id)));
    expect(got.filter((id) => id === slow || id === fast).sort()).toEqual([slow, fast].sort());
  });

  it.skipIf(embedded)('account data written after a slower write is not reported before it', async () => {
    const s0 = await sync(alice);
    const db = t.server.ctx.database.db;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let written!: () => void;
    const isWritten = new Promise<void>((r) => (written = r));
    const { putAccountData } = await import('../../src/storage/account-data.js');
    const holder = db.transaction().execute(async (tx) => {
      await putAccountData(tx, alice.userId, '', 'org.example.slow', { n: 1 });
      written();
      await held;
    });
    await isWritten;
    const put = await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/org.example.fast`, { token: alice.accessToken, body: { n: 2 } });
    expect(put.status).toBe(200);
    const s1 = await sync(alice, { since: s0.next_batch });
    release();
    await holder;
    const s2 = await sync(alice, { since: s1.next_batch });
    const types = [...s1.account_data.events, ...s2.account_data.events].map((e: Json) => e.type).sort();
    expect(types).toEqual(['org.example.fast', 'org.example.slow']);
  });
});

/** The events stream sequence's last handed-out value. */
async function sqlLastValue(): Promise<number> {
  const { sql } = await import('kysely');
  const r = await sql<{ v: number }>`SELECT last_value AS v FROM events_stream_ordering_seq`.execute(t.server.ctx.database.db);
  return Number(r.rows[0]?.v ?? 0);
}

describe('tokens across a restart', () => {
  it('a next_batch from before a restart still works after it', async () => {
    const roomId = await createRoom(alice, { name: 'Survives' });
    const before = await send(alice, roomId, 'before restart');
    const s0 = await sync(alice);
    expect(s0.rooms.join[roomId].timeline.events.map((e: Json) => e.event_id)).toContain(before);
    const b0 = await sync(bob);

    Object.assign(t, await restartTestServer(t));

    const same = await sync(alice, { since: s0.next_batch });
    expect(same.rooms.join).toEqual({});
    const after = await send(alice, roomId, 'after restart');
    const s1 = await sync(alice, { since: s0.next_batch });
    expect(s1.rooms.join[roomId].timeline.events.map((e: Json) => e.event_id)).toEqual([after]);
    // Bob's token (typing position from the old process included) is accepted too.
    const b1 = await sync(bob, { since: b0.next_batch });
    expect(b1.next_batch).toMatch(/^s\d+(_\d+){6}$/);
    // A long-poll on the new process is woken as before.
    const pending = sync(alice, { since: s1.next_batch, timeout: 20_000 });
    await waiters(1);
    const woke = await send(alice, roomId, 'wake after restart');
    expect((await pending).rooms.join[roomId].timeline.events.map((e: Json) => e.event_id)).toEqual([woke]);
  });
});

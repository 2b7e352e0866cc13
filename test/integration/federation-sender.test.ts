/**
 * The outbound federation sender against a recording fake remote server
 * (test/helpers/fake-remote.ts) that a room of a real Axon has a joined
 * member on: local events reach it in order as stored, in transactions of
 * at most 50 PDUs with one in flight; failures back off (visible in the
 * destinations admin API), new events queue meanwhile, reset_connection
 * retries the same transaction under the same id; catch-up keeps the
 * newest PDUs of a room; EDUs with a key replace an unsent one; what was
 * queued (or only committed) before a restart is sent after it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseXMatrix } from '../../src/core/x-matrix.js';
import { maxStreamOrdering } from '../../src/storage/events.js';
import { outboxCounts, streamPosition } from '../../src/storage/federation-queue.js';
import { joinRemoteUser, startFakeRemote, waitUntil, type FakeRemote } from '../helpers/fake-remote.js';
import { startFederationServer, startFederationServers, type FederationServer } from '../helpers/federation.js';
import { restartTestServer } from '../helpers/restart.js';
import { roomHelpers, text } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Pdu = Record<string, any>;

const DEST = (remote: FakeRemote) => `/_synapse/admin/v1/federation/destinations/${encodeURIComponent(remote.serverName)}`;

/** Message bodies the remote accepted (200) in a room, in order. */
function acceptedBodies(remote: FakeRemote, roomId: string): string[] {
  return remote
    .accepted()
    .filter((p: Pdu) => p.room_id === roomId && p.type === 'm.room.message')
    .map((p: Pdu) => p.content.body as string);
}

function setup(yaml: Record<string, unknown> = {}) {
  const s = {} as { remote: FakeRemote; fed: FederationServer; alice: TestUser; admin: TestUser };
  beforeAll(async () => {
    s.remote = await startFakeRemote();
    s.fed = await startFederationServer({ yaml });
    s.alice = await createUser(s.fed.test, 'alice');
    s.admin = await createUser(s.fed.test, 'boss', { admin: true });
  });
  afterAll(async () => {
    await s.fed?.close();
    await s.remote?.close();
  });
  const h = roomHelpers(() => s.fed.test);
  const db = () => s.fed.test.server.ctx.database.db;
  const caughtUp = async () => {
    const max = await maxStreamOrdering(db());
    await waitUntil(() => (s.fed.test.server.ctx.services.federationSender.queuedThrough() ?? -1) >= max, 'the sender to queue every event');
  };
  /** A public room of alice's with the remote's user joined (nothing from before the join is sent). */
  const remoteRoom = async (user = '@x'): Promise<string> => {
    const roomId = await h.createRoom(s.alice, { preset: 'public_chat' });
    await caughtUp();
    await joinRemoteUser(s.fed.test, s.remote, roomId, `${user}:${s.remote.serverName}`);
    return roomId;
  };
  const sendAll = async (roomId: string, bodies: string[]) => {
    for (const b of bodies) await h.send(s.alice, roomId, text(b));
  };
  const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
  const adminGet = (path: string) => api(s.fed.test, 'GET', path, { token: s.admin.accessToken });
  const resetConnection = () => api(s.fed.test, 'POST', `${DEST(s.remote)}/reset_connection`, { token: s.admin.accessToken, body: {} });
  return { s, h, db, caughtUp, remoteRoom, sendAll, range, adminGet, resetConnection };
}

describe('federation sender', () => {
  const { s, h, db, caughtUp, remoteRoom, sendAll, range, adminGet, resetConnection } = setup();

  it('sends local events to the room’s other servers in order, as stored, signed as this server', async () => {
    const roomId = await remoteRoom();
    await sendAll(roomId, ['one', 'two', 'three']);
    await waitUntil(() => acceptedBodies(s.remote, roomId).length === 3, 'three messages');
    expect(acceptedBodies(s.remote, roomId)).toEqual(['one', 'two', 'three']);
    // Nothing from before the remote joined, and not the remote's own join.
    expect(s.remote.accepted().filter((p: Pdu) => p.room_id === roomId && p.type !== 'm.room.message')).toEqual([]);

    const send = s.remote.sends.find((x) => x.body.pdus.some((p: Pdu) => p.room_id === roomId))!;
    expect(send.body.origin).toBe(s.fed.serverName);
    expect(typeof send.body.origin_server_ts).toBe('number');
    expect(send.body.edus).toEqual([]);
    const auth = parseXMatrix(send.authorization!);
    expect(auth.origin).toBe(s.fed.serverName);
    expect(auth.destination).toBe(s.remote.serverName);
    // The PDU is the stored event JSON (a v3+ event: no event_id field).
    const rows = await db().selectFrom('events').select('json').where('room_id', '=', roomId).where('type', '=', 'm.room.message').orderBy('stream_ordering').execute();
    const sent = s.remote.accepted().filter((p: Pdu) => p.room_id === roomId);
    expect(sent).toEqual(rows.map((r) => r.json));
    expect(sent[0]).not.toHaveProperty('event_id');
  });

  it('batches a burst into transactions of at most 50 PDUs, one in flight', async () => {
    const roomId = await remoteRoom();
    s.remote.mode = 'hold';
    await sendAll(roomId, ['first']);
    await waitUntil(() => s.remote.inFlight() === 1, 'the first transaction');
    const bodies = range('burst', 70);
    await sendAll(roomId, bodies);
    await caughtUp();
    expect(s.remote.inFlight()).toBe(1);
    s.remote.mode = 'ok';
    s.remote.release();
    await waitUntil(() => acceptedBodies(s.remote, roomId).length === 71, 'every message');
    expect(acceptedBodies(s.remote, roomId)).toEqual(['first', ...bodies]);
    expect(s.remote.maxInFlight).toBe(1);
    const sizes = s.remote.sends.filter((x) => x.body.pdus.some((p: Pdu) => p.room_id === roomId)).map((x) => x.body.pdus.length);
    expect(Math.max(...sizes)).toBe(50);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(71);
    // Every transaction id is new.
    expect(new Set(s.remote.sends.map((x) => x.txnId)).size).toBe(s.remote.sends.length);
  });

  it('backs off after a failure: recorded, new events queue, reset_connection retries the same transaction', async () => {
    const roomId = await remoteRoom();
    s.remote.mode = 'fail';
    const before = s.remote.sends.length;
    await sendAll(roomId, ['while-down-1']);
    await waitUntil(() => s.remote.sends.length === before + 1 && s.remote.sends.at(-1)!.status === 500, 'a failed attempt');
    await waitUntil(async () => (await adminGet(DEST(s.remote))).body.retry_interval === 10_000, 'the backoff to be recorded');
    const failed = (await adminGet(DEST(s.remote))).body;
    expect(failed).toMatchObject({ destination: s.remote.serverName, retry_interval: 10_000 });
    expect(failed.retry_last_ts).toBeGreaterThan(0);
    expect(failed.failure_ts).toBe(failed.retry_last_ts);

    // A new event is queued durably and does not cut the backoff short.
    await sendAll(roomId, ['while-down-2']);
    await caughtUp();
    expect(await outboxCounts(db(), s.remote.serverName)).toEqual({ pdus: 2, edus: 0 });
    expect(s.remote.sends.length).toBe(before + 1);

    s.remote.mode = 'ok';
    expect(await resetConnection()).toMatchObject({ status: 200, body: {} });
    await waitUntil(() => acceptedBodies(s.remote, roomId).length === 2, 'both messages');
    expect(acceptedBodies(s.remote, roomId)).toEqual(['while-down-1', 'while-down-2']);
    const attempts = s.remote.sends.slice(before);
    // The retry is the failed transaction again, under its id; the new event follows in its own.
    expect(attempts[1]!.txnId).toBe(attempts[0]!.txnId);
    expect(attempts[1]!.body.pdus).toEqual(attempts[0]!.body.pdus);
    expect(attempts[2]!.txnId).not.toBe(attempts[0]!.txnId);

    await waitUntil(async () => (await outboxCounts(db(), s.remote.serverName)).pdus === 0, 'the outbox to empty');
    const ok = (await adminGet(DEST(s.remote))).body;
    const last = await db().selectFrom('events').select('stream_ordering').where('room_id', '=', roomId).orderBy('stream_ordering', 'desc').executeTakeFirstOrThrow();
    expect(ok).toEqual({ destination: s.remote.serverName, retry_last_ts: 0, retry_interval: 0, failure_ts: null, last_successful_stream_ordering: Number(last.stream_ordering) });
    // Not backing off any more: nothing to reset (Synapse's 400).
    expect(await resetConnection()).toMatchObject({ status: 400, body: { errcode: 'M_UNKNOWN', error: 'The retry timing does not need to be reset for this destination.' } });
  });

  it('catch-up: after an outage a room with more than 50 waiting PDUs sends only its newest 10', async () => {
    const roomId = await remoteRoom();
    s.remote.mode = 'fail';
    await sendAll(roomId, ['down-first']);
    await waitUntil(() => s.remote.sends.at(-1)?.status === 500 && s.remote.sends.at(-1)!.body.pdus.some((p: Pdu) => p.room_id === roomId), 'a failed attempt');
    const bodies = range('backlog', 60);
    await sendAll(roomId, bodies);
    await caughtUp();
    s.remote.mode = 'ok';
    expect((await resetConnection()).status).toBe(200);
    await waitUntil(async () => (await outboxCounts(db(), s.remote.serverName)).pdus === 0, 'the outbox to empty');
    // The transaction in flight at the outage, then the newest 10 of the 60 that waited.
    expect(acceptedBodies(s.remote, roomId)).toEqual(['down-first', ...bodies.slice(-10)]);
  });

  it('a kicked remote user’s server hears of the kick, and of nothing after it', async () => {
    const roomId = await remoteRoom('@kicked');
    const kicked = `@kicked:${s.remote.serverName}`;
    await sendAll(roomId, ['before-kick']);
    await h.act(s.alice, roomId, 'kick', { userId: kicked } as TestUser);
    await sendAll(roomId, ['after-kick']);
    await caughtUp();
    await waitUntil(() => s.remote.accepted().some((p: Pdu) => p.room_id === roomId && p.type === 'm.room.member'), 'the kick');
    const seen = s.remote.accepted().filter((p: Pdu) => p.room_id === roomId);
    expect(seen.map((p: Pdu) => [p.type, p.content.membership ?? p.content.body])).toEqual([
      ['m.room.message', 'before-kick'],
      ['m.room.member', 'leave'],
    ]);
    expect(seen[1]!.state_key).toBe(kicked);
  });

  it('EDUs: durable, at most one unsent per key (the newest), never replacing one in flight; queueEduForRoom fans out', async () => {
    const sender = s.fed.test.server.ctx.services.federationSender;
    const dest = s.remote.serverName;
    const before = s.remote.sends.length;
    s.remote.mode = 'hold';
    await sender.queueEdu(dest, 'm.typing', { n: 1 }, { key: 'room|user' });
    await waitUntil(() => s.remote.inFlight() === 1, 'the first EDU in flight');
    await sender.queueEdu(dest, 'm.typing', { n: 2 }, { key: 'room|user' });
    await sender.queueEdu(dest, 'm.direct_to_device', { m: 'a' });
    await sender.queueEdu(dest, 'm.typing', { n: 3 }, { key: 'room|user' });
    await sender.queueEdu(dest, 'm.typing', { n: 9 }, { key: 'other' });
    await sender.queueEdu(dest, 'm.direct_to_device', { m: 'b' });
    s.remote.mode = 'ok';
    s.remote.release();
    await waitUntil(async () => (await outboxCounts(db(), dest)).edus === 0 && s.remote.inFlight() === 0, 'the EDUs to be sent');
    const edus = s.remote.sends.slice(before).map((x) => x.body.edus);
    expect(edus).toEqual([
      [{ edu_type: 'm.typing', content: { n: 1 } }],
      [
        { edu_type: 'm.typing', content: { n: 3 } },
        { edu_type: 'm.direct_to_device', content: { m: 'a' } },
        { edu_type: 'm.typing', content: { n: 9 } },
        { edu_type: 'm.direct_to_device', content: { m: 'b' } },
      ],
    ]);

    const roomId = await remoteRoom('@edu');
    const mark = s.remote.sends.length;
    await sender.queueEduForRoom(roomId, 'm.receipt', { [roomId]: {} });
    await waitUntil(() => s.remote.sends.length > mark, 'the room EDU');
    expect(s.remote.sends.slice(mark).flatMap((x) => x.body.edus)).toEqual([{ edu_type: 'm.receipt', content: { [roomId]: {} } }]);
    // Never to ourselves.
    expect(await db().selectFrom('federation_destinations').select('destination').where('destination', '=', s.fed.serverName).execute()).toEqual([]);
  });
});

describe('federation sender: short backoff, restarts', () => {
  const { s, h, db, caughtUp, remoteRoom, sendAll, adminGet } = setup({ federation: { destination_min_retry_interval: '200ms' } });

  it('retries by itself once the backoff has run out, the interval growing', async () => {
    const roomId = await remoteRoom();
    s.remote.mode = 'fail';
    await sendAll(roomId, ['retry-me']);
    await waitUntil(() => s.remote.sends.filter((x) => x.status === 500).length >= 2, 'two failed attempts');
    await waitUntil(async () => Number((await adminGet(DEST(s.remote))).body.retry_interval) > 200, 'the interval to grow');
    const grown = Number((await adminGet(DEST(s.remote))).body.retry_interval);
    expect(grown).toBeGreaterThanOrEqual(360);
    s.remote.mode = 'ok';
    await waitUntil(() => acceptedBodies(s.remote, roomId).length === 1, 'the retry to succeed', 20_000);
    expect(new Set(s.remote.sends.map((x) => x.txnId)).size).toBe(1);
  });

  it('shutdown aborts the transaction in flight; what was queued, or only committed, before a restart is sent after it', async () => {
    const roomId = await remoteRoom();
    s.remote.mode = 'hold';
    await sendAll(roomId, ['queued-1', 'queued-2']);
    await caughtUp();
    await waitUntil(() => s.remote.inFlight() === 1, 'a transaction in flight');
    const held = s.remote.sends.at(-1)!;
    // An event for no other server moves the position in memory only; close stores it.
    const lonely = await h.createRoom(s.alice);
    await sendAll(lonely, ['nobody-else-here']);
    await caughtUp();
    const sender = s.fed.test.server.ctx.services.federationSender;
    const through = sender.queuedThrough()!;
    expect(await streamPosition(db())).toBeLessThan(through);
    // The sender stops without waiting for the answer, and records no failure for it.
    await sender.close();
    expect(await streamPosition(db())).toBe(through);
    expect(await adminGet(DEST(s.remote))).toMatchObject({ body: { retry_last_ts: 0, failure_ts: null } });
    s.remote.mode = 'fail';
    s.remote.release();
    // An event commits with nobody to queue it (as a crash before queueing would leave it).
    await sendAll(roomId, ['committed-only']);
    expect(await outboxCounts(db(), s.remote.serverName)).toEqual({ pdus: 2, edus: 0 });

    const restarted = await restartTestServer(s.fed.test);
    s.fed = { ...s.fed, test: restarted, close: () => restarted.close() };
    s.remote.mode = 'ok';
    await waitUntil(() => acceptedBodies(s.remote, roomId).length === 3, 'every message after the restart', 20_000);
    expect(acceptedBodies(s.remote, roomId)).toEqual(['queued-1', 'queued-2', 'committed-only']);
    // The interrupted transaction is sent again under its id.
    expect(s.remote.sends.find((x) => x.status === 200 && x.body.pdus.some((p: Pdu) => p.room_id === roomId))!.txnId).toBe(held.txnId);
  });
});

describe('federation sender: between two Axons', () => {
  let a: FederationServer;
  let b: FederationServer;
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    [a, b] = await startFederationServers(2);
    alice = await createUser(a.test, 'alice');
    bob = await createUser(b.test, 'bob');
  }, 60_000);
  afterAll(async () => Promise.all([a?.close(), b?.close()]));

  const bodiesSeen = async (t: FederationServer, user: TestUser, roomId: string): Promise<string[]> => {
    const res = await roomHelpers(() => t.test).messages(user, roomId, { dir: 'b', limit: 50 });
    return (res.body.chunk ?? []).filter((e) => e.type === 'm.room.message').map((e) => e.content.body as string);
  };

  it('each server’s messages reach the other, whose users read them', async () => {
    const ha = roomHelpers(() => a.test);
    const hb = roomHelpers(() => b.test);
    const roomId = await ha.createRoom(alice, { preset: 'public_chat' });
    const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?via=${encodeURIComponent(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(join.status, JSON.stringify(join.body)).toBe(200);
    await ha.send(alice, roomId, text('from A'));
    await hb.send(bob, roomId, text('from B'));
    await waitUntil(async () => (await bodiesSeen(b, bob, roomId)).includes('from A'), 'B to have A’s message');
    await waitUntil(async () => (await bodiesSeen(a, alice, roomId)).includes('from B'), 'A to have B’s message');
    expect((await api(a.test, 'GET', `/_synapse/admin/v1/federation/destinations`, { token: (await createUser(a.test, 'root', { admin: true })).accessToken })).body).toMatchObject(
      {
        total: 1,
        destinations: [{ destination: b.serverName, failure_ts: null }],
      },
    );
  });
});

/**
 * Receipts and read markers: POST /rooms/{roomId}/receipt/{type}/{eventId}
 * (m.read, m.read.private, m.fully_read; threaded) and POST
 * /rooms/{roomId}/read_markers. Receipts are stored with a stream position,
 * only move forward, keep private receipts private, and wake members.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountDataSince } from '../../src/storage/account-data.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let t: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let roomId: string;
let otherRoom: string;
const msgs: string[] = [];

const enc = encodeURIComponent;
const receiptPath = (type: string, eventId: string, room = roomId) => `/_matrix/client/v3/rooms/${enc(room)}/receipt/${enc(type)}/${enc(eventId)}`;
let txn = 0;
async function send(user: TestUser, content: Record<string, unknown>, room = roomId): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/t${++txn}`, { token: user.accessToken, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}
const receipts = () => t.server.ctx.services.receipts;

beforeAll(async () => {
  t = await startTestServer();
  alice = await createUser(t, 'alice');
  bob = await createUser(t, 'bob');
  carol = await createUser(t, 'carol');
  roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
  otherRoom = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
  expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
  for (let i = 0; i < 4; i++) msgs.push(await send(alice, { msgtype: 'm.text', body: `message ${i}` }));
});
afterAll(async () => {
  await t?.close();
});

describe('POST /rooms/{roomId}/receipt/m.read/{eventId}', () => {
  it('stores the receipt at a new stream position, visible to every member', async () => {
    const before = await receipts().position();
    const res = await api(t, 'POST', receiptPath('m.read', msgs[1] as string), { token: bob.accessToken, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const after = await receipts().position();
    expect(after).toBeGreaterThan(before);
    for (const viewer of [alice, bob]) {
      const got = (await receipts().since([roomId], before, viewer.userId)).get(roomId);
      expect(Object.keys(got ?? {})).toEqual([msgs[1]]);
      const entry = got?.[msgs[1] as string]?.['m.read']?.[bob.userId];
      expect(entry).toEqual({ ts: expect.any(Number) });
      expect(Math.abs((entry?.['ts'] as number) - Date.now())).toBeLessThan(60_000);
    }
    expect((await receipts().since([roomId], after, alice.userId)).size).toBe(0);
    expect((await receipts().since([otherRoom], 0, alice.userId)).size).toBe(0);
  });

  it('moves forward only: a receipt for an earlier event is accepted and ignored', async () => {
    const before = await receipts().position();
    const res = await api(t, 'POST', receiptPath('m.read', msgs[0] as string), { token: bob.accessToken, body: {} });
    expect(res.status).toBe(200);
    expect(await receipts().position()).toBe(before);
    const all = (await receipts().since([roomId], 0, bob.userId)).get(roomId) ?? {};
    expect(all[msgs[0] as string]).toBeUndefined();
    expect(all[msgs[1] as string]?.['m.read']?.[bob.userId]).toBeDefined();
    // A later one replaces it (under the new event).
    await api(t, 'POST', receiptPath('m.read', msgs[2] as string, roomId).replace('/v3/', '/r0/'), { token: bob.accessToken, body: {} });
    const now = (await receipts().since([roomId], 0, bob.userId)).get(roomId) ?? {};
    expect(now[msgs[1] as string]?.['m.read']?.[bob.userId]).toBeUndefined();
    expect(now[msgs[2] as string]?.['m.read']?.[bob.userId]).toBeDefined();
  });

  it("wakes the room's members", async () => {
    const woken = t.server.ctx.services.notifier.wait(alice.userId, 5000);
    await api(t, 'POST', receiptPath('m.read', msgs[3] as string), { token: bob.accessToken, body: {} });
    expect(await woken).toBe(true);
  });
});

describe('private receipts', () => {
  it('m.read.private is only returned to its owner, and wakes only them', async () => {
    const before = await receipts().position();
    const aliceWoken = t.server.ctx.services.notifier.wait(alice.userId, 300);
    const res = await api(t, 'POST', receiptPath('m.read.private', msgs[3] as string), { token: alice.accessToken, body: {} });
    expect(res.status).toBe(200);
    expect((await receipts().since([roomId], before, alice.userId)).get(roomId)?.[msgs[3] as string]?.['m.read.private']?.[alice.userId]).toBeDefined();
    expect((await receipts().since([roomId], before, bob.userId)).get(roomId)).toBeUndefined();
    expect(await aliceWoken).toBe(true);
  });
});

describe('threaded receipts', () => {
  let root: string;
  let reply: string;
  beforeAll(async () => {
    root = await send(alice, { msgtype: 'm.text', body: 'thread root' });
    reply = await send(alice, { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
  });

  it('keeps a receipt per thread, with thread_id in its content', async () => {
    const before = await receipts().position();
    expect((await api(t, 'POST', receiptPath('m.read', reply), { token: bob.accessToken, body: { thread_id: root } })).status).toBe(200);
    expect((await api(t, 'POST', receiptPath('m.read', root), { token: bob.accessToken, body: { thread_id: 'main' } })).status).toBe(200);
    const got = (await receipts().since([roomId], before, alice.userId)).get(roomId) ?? {};
    expect(got[reply]?.['m.read']?.[bob.userId]).toEqual({ ts: expect.any(Number), thread_id: root });
    expect(got[root]?.['m.read']?.[bob.userId]).toEqual({ ts: expect.any(Number), thread_id: 'main' });
    // The root itself may carry the thread's receipt too.
    expect((await api(t, 'POST', receiptPath('m.read.private', root), { token: bob.accessToken, body: { thread_id: root } })).status).toBe(200);
  });

  it('refuses a thread_id the event is not in, an empty one, and one with m.fully_read', async () => {
    const wrong = await api(t, 'POST', receiptPath('m.read', reply), { token: bob.accessToken, body: { thread_id: 'main' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errcode).toBe('M_INVALID_PARAM');
    const other = await api(t, 'POST', receiptPath('m.read', msgs[0] as string), { token: bob.accessToken, body: { thread_id: root } });
    expect(other.status).toBe(400);
    expect(other.body.errcode).toBe('M_INVALID_PARAM');
    for (const bad of ['', 5, null]) {
      const r = await api(t, 'POST', receiptPath('m.read', reply), { token: bob.accessToken, body: { thread_id: bad } });
      expect(r.status).toBe(400);
      expect(r.body.errcode).toBe('M_INVALID_PARAM');
    }
    const fully = await api(t, 'POST', receiptPath('m.fully_read', reply), { token: bob.accessToken, body: { thread_id: root } });
    expect(fully.status).toBe(400);
    expect(fully.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('m.fully_read', () => {
  it('through /receipt, sets the room account data marker, streamed for sync', async () => {
    const db = t.server.ctx.database.db;
    const res = await api(t, 'POST', receiptPath('m.fully_read', msgs[2] as string), { token: bob.accessToken, body: {} });
    expect(res.status).toBe(200);
    const marker = await api(t, 'GET', `/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { token: bob.accessToken });
    expect(marker.status).toBe(200);
    expect(marker.body).toEqual({ event_id: msgs[2] });
    const streamed = await accountDataSince(db, bob.userId, 0);
    expect(streamed.find((r) => r.type === 'm.fully_read' && r.room_id === roomId)?.content).toEqual({ event_id: msgs[2] });
    // Never into the m.receipt stream.
    const inReceipts = (await receipts().since([roomId], 0, bob.userId)).get(roomId) ?? {};
    expect(Object.values(inReceipts).some((byType) => 'm.fully_read' in byType)).toBe(false);
  });

  it('never moves back', async () => {
    await api(t, 'POST', receiptPath('m.fully_read', msgs[0] as string), { token: bob.accessToken, body: {} });
    const marker = await api(t, 'GET', `/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { token: bob.accessToken });
    expect(marker.body).toEqual({ event_id: msgs[2] });
  });
});

describe('POST /rooms/{roomId}/read_markers', () => {
  it('sets the read marker and both receipts in one request', async () => {
    const before = await receipts().position();
    const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, {
      token: alice.accessToken,
      body: { 'm.fully_read': msgs[3], 'm.read': msgs[3], 'm.read.private': msgs[3], 'org.example.unknown': 'ignored' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const marker = await api(t, 'GET', `/_matrix/client/r0/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { token: alice.accessToken });
    expect(marker.body).toEqual({ event_id: msgs[3] });
    const got = (await receipts().since([roomId], before, alice.userId)).get(roomId) ?? {};
    expect(got[msgs[3] as string]?.['m.read']?.[alice.userId]).toBeDefined();
    expect(await receipts().position()).toBeGreaterThan(before);
  });

  it('with only m.fully_read, or nothing, is fine', async () => {
    const only = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { token: bob.accessToken, body: { 'm.fully_read': msgs[3] } });
    expect(only.status).toBe(200);
    const marker = await api(t, 'GET', `/_matrix/client/v3/user/${enc(bob.userId)}/rooms/${enc(roomId)}/account_data/m.fully_read`, { token: bob.accessToken });
    expect(marker.body).toEqual({ event_id: msgs[3] });
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { token: bob.accessToken, body: {} })).status).toBe(200);
  });

  it('refuses non-string or unknown event ids, writing nothing', async () => {
    const before = await receipts().position();
    const bad = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { token: bob.accessToken, body: { 'm.read': 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const unknown = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, {
      token: bob.accessToken,
      body: { 'm.read': msgs[3], 'm.fully_read': '$unknown:test.local' },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    expect(await receipts().position()).toBe(before);
    const notJson = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { token: bob.accessToken, body: ['x'] });
    expect(notJson.body.errcode).toBe('M_BAD_JSON');
  });
});

describe('errors', () => {
  it('an unknown receipt type is 400', async () => {
    const res = await api(t, 'POST', receiptPath('m.unread', msgs[0] as string), { token: bob.accessToken, body: {} });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('the event must exist in the room (404 M_NOT_FOUND)', async () => {
    const unknown = await api(t, 'POST', receiptPath('m.read', '$nope:test.local'), { token: bob.accessToken, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    // An event of another room.
    const elsewhere = await send(alice, { msgtype: 'm.text', body: 'elsewhere' }, otherRoom);
    const wrongRoom = await api(t, 'POST', receiptPath('m.read', elsewhere), { token: alice.accessToken, body: {} });
    expect(wrongRoom.status).toBe(404);
    expect(wrongRoom.body.errcode).toBe('M_NOT_FOUND');
  });

  it('malformed room or event ids are 400', async () => {
    const res = await api(t, 'POST', receiptPath('m.read', 'not-an-event'), { token: bob.accessToken, body: {} });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('users not in the room get 403 M_FORBIDDEN', async () => {
    const res = await api(t, 'POST', receiptPath('m.read', msgs[0] as string), { token: carol.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    const markers = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/read_markers`, { token: carol.accessToken, body: { 'm.read': msgs[0] } });
    expect(markers.status).toBe(403);
  });

  it('needs an access token', async () => {
    const res = await api(t, 'POST', receiptPath('m.read', msgs[0] as string), { body: {} });
    expect(res.status).toBe(401);
  });
});

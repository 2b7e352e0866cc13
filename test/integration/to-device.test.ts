/**
 * Send-to-device messaging over HTTP against the real server: PUT
 * /sendToDevice and the `to_device` section of /sync — delivery to named
 * devices and to `*`, idempotent retries, at most 100 per sync, deletion
 * once a later sync acknowledges them (and redelivery to a client that
 * retries with the old token), long-poll wake-ups, device deletion, and
 * malformed requests.
 */
import { describe, expect, it } from 'vitest';
import { decodeStreamToken } from '../../src/services/streams/stream-token.js';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest, login, passwordAuth } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

const t = useTestServer();

let users = 0;
async function newUser(name: string): Promise<TestUser> {
  return createUser(t, `${name}${++users}`);
}

/** Another signed-in device of the same user. */
async function newDevice(u: TestUser): Promise<TestUser> {
  const session = await t.server.ctx.services.auth.createSession(t.server.ctx.database.db, { userId: u.userId, displayName: 'another device' });
  return { ...u, accessToken: session.access_token, deviceId: session.device_id };
}

async function sync(u: TestUser, params: Record<string, string | number> = {}, signal?: AbortSignal): Promise<Json> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  const res = await fetch(`${t.url}${V3}/sync?${q}`, { headers: { authorization: `Bearer ${u.accessToken}` }, signal });
  const body = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`sync answered ${res.status} ${JSON.stringify(body)}`);
  return body;
}

let txn = 0;
async function sendToDevice(from: TestUser, type: string, messages: unknown, txnId = `td${++txn}`, prefix = V3) {
  return api(t, 'PUT', `${prefix}/sendToDevice/${enc(type)}/${enc(txnId)}`, { token: from.accessToken, body: { messages } });
}

async function sendOk(from: TestUser, type: string, messages: unknown, txnId?: string): Promise<void> {
  const res = await sendToDevice(from, type, messages, txnId);
  expect(res.status).toBe(200);
  expect(res.body).toEqual({});
}

const events = (s: Json): Json[] => s.to_device.events as Json[];

/** Resolves once `n` requests wait on the notifier (the long-poll is parked). */
async function waiters(n: number): Promise<void> {
  const notifier = t.server.ctx.services.notifier;
  for (let i = 0; i < 500 && notifier.waiters() < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(notifier.waiters()).toBeGreaterThanOrEqual(n);
}

describe('PUT /sendToDevice', () => {
  it('delivers {type, sender, content} to the named device, and only to it (the spec example)', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const bob2 = await newDevice(bob);
    const content = { device_id: 'XYZABCDE', rooms: ['!726s6s6q:example.com'] };
    await sendOk(alice, 'm.new_device', { [bob.userId]: { [bob.deviceId]: content } });
    const s = await sync(bob);
    expect(events(s)).toEqual([{ sender: alice.userId, type: 'm.new_device', content }]);
    expect(events(await sync(bob2))).toEqual([]);
    expect(events(await sync(alice))).toEqual([]);
  });

  it('works under r0 too, and sends to the sender’s own other devices', async () => {
    const alice = await newUser('alice');
    const alice2 = await newDevice(alice);
    const res = await sendToDevice(alice, 'm.key.verification.request', { [alice.userId]: { [alice2.deviceId]: { n: 1 } } }, 'r0txn', '/_matrix/client/r0');
    expect(res.status).toBe(200);
    expect(events(await sync(alice2))).toEqual([{ sender: alice.userId, type: 'm.key.verification.request', content: { n: 1 } }]);
    expect(events(await sync(alice))).toEqual([]);
  });

  it('`*` reaches every device of the user, and the user’s other entries are ignored', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const bob2 = await newDevice(bob);
    const bob3 = await newDevice(bob);
    const carol = await newUser('carol');
    await sendOk(alice, 'm.room_key_request', {
      [bob.userId]: { '*': { to: 'all' }, [bob2.deviceId]: { to: 'one' } },
      [carol.userId]: { [carol.deviceId]: { to: 'carol' } },
    });
    for (const d of [bob, bob2, bob3]) {
      expect(events(await sync(d))).toEqual([{ sender: alice.userId, type: 'm.room_key_request', content: { to: 'all' } }]);
    }
    expect(events(await sync(carol))).toEqual([{ sender: alice.userId, type: 'm.room_key_request', content: { to: 'carol' } }]);
  });

  it('skips unknown users and devices and users on other servers, delivering the rest', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    await sendOk(alice, 'm.dummy', {
      '@nobody:test.local': { ABC: { a: 1 } },
      '@someone:elsewhere.example': { REMOTE: { a: 2 } },
      [bob.userId]: { NOSUCHDEVICE: { a: 3 }, [bob.deviceId]: { a: 4 } },
    });
    expect(events(await sync(bob))).toEqual([{ sender: alice.userId, type: 'm.dummy', content: { a: 4 } }]);
    // An empty map of messages is fine too.
    await sendOk(alice, 'm.dummy', {});
  });

  it('is idempotent per (user, device, txn id): a retry answers {} and delivers nothing again', async () => {
    const alice = await newUser('alice');
    const alice2 = await newDevice(alice);
    const bob = await newUser('bob');
    const to = (n: number) => ({ [bob.userId]: { [bob.deviceId]: { n } } });
    await sendOk(alice, 'm.test', to(1), 'same');
    await sendOk(alice, 'm.test', to(2), 'same');
    // The same txn id from another device of the sender, or another txn id, is a new request.
    await sendOk(alice2, 'm.test', to(3), 'same');
    await sendOk(alice, 'm.test', to(4), 'other');
    // Concurrent retries: one delivery.
    await Promise.all([0, 1, 2, 3].map(() => sendOk(alice, 'm.test', to(5), 'raced')));
    expect(events(await sync(bob)).map((e) => e.content.n)).toEqual([1, 3, 4, 5]);
  });

  it('refuses (413 M_TOO_LARGE) a request whose fan-out would queue more than 64 MiB, and queues none of it', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const devices = [bob];
    for (let i = 0; i < 5; i++) devices.push(await newDevice(bob));
    const big = { blob: 'x'.repeat(11 * 1024 * 1024) };
    const res = await sendToDevice(alice, 'm.test', { [bob.userId]: { '*': big } }, 'big');
    expect(res.status).toBe(413);
    expect(res.body.errcode).toBe('M_TOO_LARGE');
    for (const d of devices) expect(events(await sync(d))).toEqual([]);
    // The same content for one device is fine.
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: big } }, 'big');
    expect(events(await sync(bob)).map((e) => e.content.blob.length)).toEqual([big.blob.length]);
  });

  it('guests may send', async () => {
    const bob = await newUser('bob');
    const g = await createGuest(t);
    const res = await api(t, 'PUT', `${V3}/sendToDevice/m.test/g1`, { token: g.accessToken, body: { messages: { [bob.userId]: { [bob.deviceId]: { from: 'guest' } } } } });
    expect(res.status).toBe(200);
    expect(events(await sync(bob))).toEqual([{ sender: g.userId, type: 'm.test', content: { from: 'guest' } }]);
  });

  it('refuses malformed requests with 400, and a refused request does not use up its txn id', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const cases: [unknown, string][] = [
      [undefined, 'M_MISSING_PARAM'],
      [[], 'M_BAD_JSON'],
      ['text', 'M_BAD_JSON'],
      [{ [bob.userId]: [] }, 'M_BAD_JSON'],
      [{ [bob.userId]: { [bob.deviceId]: 'not an object' } }, 'M_BAD_JSON'],
      [{ [bob.userId]: { [bob.deviceId]: null } }, 'M_BAD_JSON'],
      [{ [bob.userId]: { [bob.deviceId]: { x: 'nul\u0000' } } }, 'M_BAD_JSON'],
      [{ 'not-a-user': { DEV: {} } }, 'M_INVALID_PARAM'],
      [{ '@nocolon': { DEV: {} } }, 'M_INVALID_PARAM'],
    ];
    for (const [messages, errcode] of cases) {
      const res = await api(t, 'PUT', `${V3}/sendToDevice/m.test/bad`, { token: alice.accessToken, body: messages === undefined ? {} : { messages } });
      expect(res.status, JSON.stringify(messages)).toBe(400);
      expect(res.body.errcode, JSON.stringify(messages)).toBe(errcode);
    }
    const array = await api(t, 'PUT', `${V3}/sendToDevice/m.test/bad`, { token: alice.accessToken, body: [] });
    expect(array.body.errcode).toBe('M_BAD_JSON');
    const longType = await sendToDevice(alice, 'x'.repeat(256), {}, 'bad');
    expect(longType.status).toBe(400);
    expect(longType.body.errcode).toBe('M_INVALID_PARAM');
    const noToken = await api(t, 'PUT', `${V3}/sendToDevice/m.test/bad`, { body: { messages: {} } });
    expect(noToken.status).toBe(401);
    expect(noToken.body.errcode).toBe('M_MISSING_TOKEN');
    // Nothing was recorded for txn id `bad`: a good request with it is delivered.
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { ok: true } } }, 'bad');
    expect(events(await sync(bob))).toEqual([{ sender: alice.userId, type: 'm.test', content: { ok: true } }]);
  });
});

describe('to_device in /sync', () => {
  it('delivers in order of arrival, exactly once: a later sync acknowledges and deletes them', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const s0 = await sync(bob);
    for (const n of [1, 2, 3]) await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { n } } });
    const s1 = await sync(bob, { since: s0.next_batch });
    expect(events(s1).map((e) => e.content.n)).toEqual([1, 2, 3]);
    // Retrying with the old token: they were not acknowledged, so they come again.
    const s1again = await sync(bob, { since: s0.next_batch });
    expect(events(s1again).map((e) => e.content.n)).toEqual([1, 2, 3]);
    // The next token acknowledges them: never again, not even from the old token.
    const s2 = await sync(bob, { since: s1.next_batch });
    expect(events(s2)).toEqual([]);
    expect(events(await sync(bob, { since: s0.next_batch }))).toEqual([]);
    expect(events(await sync(bob))).toEqual([]);
    const left = await t.server.ctx.database.db.selectFrom('device_inbox').select('stream_id').where('user_id', '=', bob.userId).execute();
    expect(left).toEqual([]);
  });

  it('an initial sync delivers pending messages, and does not acknowledge them', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { n: 1 } } });
    const a = await sync(bob);
    expect(events(a).map((e) => e.content.n)).toEqual([1]);
    expect(events(await sync(bob)).map((e) => e.content.n)).toEqual([1]);
    expect(events(await sync(bob, { since: a.next_batch }))).toEqual([]);
  });

  it('hands out at most 100 per sync; next_batch stops at the last one so the rest follow', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const s0 = await sync(bob);
    const total = 205;
    for (let n = 0; n < total; n++) await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { n } } });
    const got: number[] = [];
    let since = s0.next_batch as string;
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      // A long timeout: a sync with messages to hand out answers at once (or the test times out).
      const s = await sync(bob, { since, timeout: i < 3 ? 300_000 : 0 });
      sizes.push(events(s).length);
      got.push(...events(s).map((e) => e.content.n as number));
      since = s.next_batch;
    }
    expect(sizes).toEqual([100, 100, 5, 0]);
    expect(got).toEqual([...Array(total).keys()]);
  });

  it('paging does not hold back other streams: room events still come with the first page', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const s0 = await sync(bob);
    for (let n = 0; n < 101; n++) await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { n } } });
    const created = await api(t, 'POST', `${V3}/createRoom`, { token: bob.accessToken, body: {} });
    const roomId = created.body.room_id as string;
    const s1 = await sync(bob, { since: s0.next_batch });
    expect(events(s1)).toHaveLength(100);
    expect(s1.rooms.join[roomId]).toBeDefined();
    const t0 = decodeStreamToken(s0.next_batch);
    const t1 = decodeStreamToken(s1.next_batch);
    expect(t1.events).toBeGreaterThan(t0.events);
    const s2 = await sync(bob, { since: s1.next_batch });
    expect(events(s2).map((e) => e.content.n)).toEqual([100]);
    expect(s2.rooms.join[roomId]).toBeUndefined();
  });

  it('a message wakes a waiting sync at once', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const s0 = await sync(bob);
    const before = t.server.ctx.services.notifier.waiters();
    const pending = sync(bob, { since: s0.next_batch, timeout: 300_000 });
    await waiters(before + 1);
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { wake: true } } });
    const s1 = await pending;
    expect(events(s1)).toEqual([{ sender: alice.userId, type: 'm.test', content: { wake: true } }]);
  });

  it('a waiting sync stays waiting when a message goes to another device', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const bob2 = await newDevice(bob);
    const s0 = await sync(bob);
    const before = t.server.ctx.services.notifier.waiters();
    const pending = sync(bob, { since: s0.next_batch, timeout: 300_000 });
    await waiters(before + 1);
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob2.deviceId]: { for: 'bob2' } } });
    // Woken for the other device's message, it found nothing and waits again.
    await waiters(before + 1);
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob.deviceId]: { for: 'bob' } } });
    const s1 = await pending;
    expect(events(s1)).toEqual([{ sender: alice.userId, type: 'm.test', content: { for: 'bob' } }]);
    expect(events(await sync(bob2)).map((e) => e.content)).toEqual([{ for: 'bob2' }]);
  });

  it('with nothing for this device, an incremental sync is empty even though the stream moved', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const bob2 = await newDevice(bob);
    const s0 = await sync(bob);
    await sendOk(alice, 'm.test', { [bob.userId]: { [bob2.deviceId]: { for: 'bob2' } } });
    const s1 = await sync(bob, { since: s0.next_batch, timeout: 0 });
    expect(events(s1)).toEqual([]);
    expect(s1.rooms.join).toEqual({});
  });

  it('a deleted device’s pending messages go with it', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const phone = await login(t, bob.userId, bob.password, { device_id: 'BOBPHONE' });
    expect(phone.status).toBe(200);
    await sendOk(alice, 'm.test', { [bob.userId]: { BOBPHONE: { n: 1 } } });
    // Delete it (UIA), then sign in again with the same device id: nothing is waiting.
    const first = await api(t, 'DELETE', `${V3}/devices/BOBPHONE`, { token: bob.accessToken, body: {} });
    expect(first.status).toBe(401);
    const del = await api(t, 'DELETE', `${V3}/devices/BOBPHONE`, { token: bob.accessToken, body: { auth: passwordAuth(bob, first.body.session as string) } });
    expect(del.status).toBe(200);
    const left = await t.server.ctx.database.db.selectFrom('device_inbox').select('stream_id').where('user_id', '=', bob.userId).where('device_id', '=', 'BOBPHONE').execute();
    expect(left).toEqual([]);
    const again = await login(t, bob.userId, bob.password, { device_id: 'BOBPHONE' });
    const phoneUser = { ...bob, accessToken: again.body.access_token as string, deviceId: 'BOBPHONE' };
    expect(events(await sync(phoneUser))).toEqual([]);
    // Signing out (which deletes the device) does the same.
    await sendOk(alice, 'm.test', { [bob.userId]: { BOBPHONE: { n: 2 } } });
    expect((await api(t, 'POST', `${V3}/logout`, { token: phoneUser.accessToken, body: {} })).status).toBe(200);
    const third = await login(t, bob.userId, bob.password, { device_id: 'BOBPHONE' });
    expect(events(await sync({ ...bob, accessToken: third.body.access_token as string, deviceId: 'BOBPHONE' }))).toEqual([]);
  });
});

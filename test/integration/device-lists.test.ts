/**
 * Device lists over HTTP: `device_lists.changed` / `left` in incremental
 * /sync and GET /keys/changes between two tokens — key uploads, renames and
 * deletions of devices of users sharing a room, users who start or stop
 * sharing a room — and long-polling syncs woken by a device-list change.
 */
import { describe, expect, it } from 'vitest';
import { deviceKeys } from '../helpers/e2e-keys.js';
import { useTestServer } from '../helpers/rooms.js';
import { eventually, login, passwordAuth } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;

/** `api` with the body typed loosely, as these tests read deep into it. */
const call = (method: string, path: string, opts: Parameters<typeof api>[3] = {}) => api(t, method, path, opts) as Promise<{ status: number; body: Json; headers: Headers }>;
const t = useTestServer();

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

async function sync(u: TestUser, since?: string, timeout = 0): Promise<Json> {
  const q = since === undefined ? '' : `?since=${enc(since)}&timeout=${timeout}`;
  const res = await call('GET', `${V3}/sync${q}`, { token: u.accessToken });
  expect(res.status).toBe(200);
  return res.body;
}

async function room(creator: TestUser, ...joiners: TestUser[]): Promise<string> {
  const res = await call('POST', `${V3}/createRoom`, { token: creator.accessToken, body: { preset: 'public_chat' } });
  expect(res.status).toBe(200);
  const roomId = res.body.room_id as string;
  for (const j of joiners) await join(j, roomId);
  return roomId;
}

async function join(u: TestUser, roomId: string): Promise<void> {
  expect((await call('POST', `${V3}/rooms/${enc(roomId)}/join`, { token: u.accessToken, body: {} })).status).toBe(200);
}

async function leave(u: TestUser, roomId: string): Promise<void> {
  expect((await call('POST', `${V3}/rooms/${enc(roomId)}/leave`, { token: u.accessToken, body: {} })).status).toBe(200);
}

async function uploadKeys(u: { userId: string; deviceId: string; accessToken: string }): Promise<void> {
  const res = await call('POST', `${V3}/keys/upload`, { token: u.accessToken, body: { device_keys: deviceKeys(u.userId, u.deviceId).deviceKeys } });
  expect(res.status).toBe(200);
}

function changes(u: TestUser, from?: string, to?: string) {
  const q = new URLSearchParams();
  if (from !== undefined) q.set('from', from);
  if (to !== undefined) q.set('to', to);
  return call('GET', `${V3}/keys/changes?${q}`, { token: u.accessToken });
}

/** Starts a long-polling sync and resolves once the server is waiting on it (wrapped, or awaiting it would wait for the sync). */
async function longPoll(u: TestUser, since: string): Promise<{ response: Promise<Json> }> {
  const notifier = t.server.ctx.services.notifier;
  const before = notifier.waiters();
  const response = sync(u, since, 30_000);
  await eventually(async () => notifier.waiters() > before);
  return { response };
}

describe('device_lists in /sync', () => {
  it('is empty in an initial sync', async () => {
    const u = await createUser(t, 'init');
    await uploadKeys(u);
    expect((await sync(u)).device_lists).toEqual({ changed: [], left: [] });
  });

  it('names users sharing a room whose devices changed, the user themself, and nobody else', async () => {
    const alice = await createUser(t, 'dl-alice');
    const bob = await createUser(t, 'dl-bob');
    const stranger = await createUser(t, 'dl-stranger');
    await room(alice, bob);
    const s0 = await sync(alice);
    await uploadKeys(bob);
    await uploadKeys(stranger);
    const s1 = await sync(alice, s0.next_batch);
    expect(s1.device_lists).toEqual({ changed: [bob.userId], left: [] });
    // Alice's own new device.
    const second = await login(t, 'dl-alice', alice.password);
    await uploadKeys({ userId: alice.userId, deviceId: second.body.device_id as string, accessToken: second.body.access_token as string });
    const s2 = await sync(alice, s1.next_batch);
    expect(s2.device_lists.changed).toEqual([alice.userId]);
  });

  it('wakes a long-polling sync when a device list changes: keys uploaded, device renamed, device deleted', async () => {
    const alice = await createUser(t, 'lp-alice');
    const bob = await createUser(t, 'lp-bob');
    await room(alice, bob);
    let since = (await sync(alice)).next_batch as string;

    let pending = await longPoll(alice, since);
    await uploadKeys(bob);
    let res = await pending.response;
    expect(res.device_lists.changed).toEqual([bob.userId]);
    since = res.next_batch;

    pending = await longPoll(alice, since);
    expect((await call('PUT', `${V3}/devices/${bob.deviceId}`, { token: bob.accessToken, body: { display_name: 'Renamed' } })).status).toBe(200);
    res = await pending.response;
    expect(res.device_lists.changed).toEqual([bob.userId]);
    since = res.next_batch;
    const q = await call('POST', `${V3}/keys/query`, { token: alice.accessToken, body: { device_keys: { [bob.userId]: [] } } });
    expect(q.body.device_keys[bob.userId][bob.deviceId].unsigned).toEqual({ device_display_name: 'Renamed' });

    const other = await login(t, 'lp-bob', bob.password);
    const otherId = other.body.device_id as string;
    pending = await longPoll(alice, since);
    const path = `${V3}/devices/${otherId}`;
    const first = await call('DELETE', path, { token: bob.accessToken, body: {} });
    expect((await call('DELETE', path, { token: bob.accessToken, body: { auth: passwordAuth(bob, first.body.session as string) } })).status).toBe(200);
    res = await pending.response;
    expect(res.device_lists.changed).toEqual([bob.userId]);
  });

  it('names users who newly share a room (either side joining), but not for a profile change', async () => {
    const alice = await createUser(t, 'nj-alice');
    const carol = await createUser(t, 'nj-carol');
    const dave = await createUser(t, 'nj-dave');
    const roomId = await room(alice, dave);
    const a0 = await sync(alice);
    const c0 = await sync(carol);
    await join(carol, roomId);
    const a1 = await sync(alice, a0.next_batch);
    expect(a1.device_lists).toEqual({ changed: [carol.userId], left: [] });
    const c1 = await sync(carol, c0.next_batch);
    expect(c1.device_lists).toEqual({ changed: [alice.userId, dave.userId].sort(), left: [] });
    // A display name change is a join after a join: nobody new.
    const res = await call('PUT', `${V3}/profile/${enc(carol.userId)}/displayname`, { token: carol.accessToken, body: { displayname: 'Carol C' } });
    expect(res.status).toBe(200);
    const a2 = await sync(alice, a1.next_batch);
    expect(a2.device_lists).toEqual({ changed: [], left: [] });
  });

  it('names users no longer sharing any room in left, either side leaving; not while another room is shared', async () => {
    const alice = await createUser(t, 'lv-alice');
    const erin = await createUser(t, 'lv-erin');
    const frank = await createUser(t, 'lv-frank');
    const r1 = await room(alice, erin, frank);
    await room(alice, frank);
    const a0 = await sync(alice);
    const e0 = await sync(erin);
    await leave(erin, r1);
    const a1 = await sync(alice, a0.next_batch);
    expect(a1.device_lists).toEqual({ changed: [], left: [erin.userId] });
    const e1 = await sync(erin, e0.next_batch);
    expect(e1.device_lists).toEqual({ changed: [], left: [alice.userId, frank.userId].sort() });
    // Frank leaves r1 but still shares the other room with alice.
    await leave(frank, r1);
    const a2 = await sync(alice, a1.next_batch);
    expect(a2.device_lists).toEqual({ changed: [], left: [] });
  });

  it('an invite is not sharing a room', async () => {
    const alice = await createUser(t, 'inv-alice');
    const gina = await createUser(t, 'inv-gina');
    const roomId = await room(alice);
    const a0 = await sync(alice);
    expect((await call('POST', `${V3}/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: gina.userId } })).status).toBe(200);
    await uploadKeys(gina);
    const a1 = await sync(alice, a0.next_batch);
    expect(a1.device_lists).toEqual({ changed: [], left: [] });
  });
});

describe('GET /keys/changes', () => {
  it('lists changes between two tokens, and left users', async () => {
    const alice = await createUser(t, 'kc-alice');
    const bob = await createUser(t, 'kc-bob');
    const carol = await createUser(t, 'kc-carol');
    const roomId = await room(alice, bob, carol);
    const t0 = (await sync(alice)).next_batch as string;
    await uploadKeys(bob);
    const t1 = (await sync(alice, t0)).next_batch as string;
    await uploadKeys(carol);
    await leave(carol, roomId);
    const t2 = (await sync(alice, t1)).next_batch as string;

    expect((await changes(alice, t0, t1)).body).toEqual({ changed: [bob.userId], left: [] });
    expect((await changes(alice, t1, t2)).body).toEqual({ changed: [], left: [carol.userId] });
    expect((await changes(alice, t0, t2)).body).toEqual({ changed: [bob.userId], left: [carol.userId] });
    // Without `to` (or with one from the future): up to now.
    expect((await changes(alice, t0)).body).toEqual({ changed: [bob.userId], left: [carol.userId] });
    expect((await changes(alice, t0, 's999999999_0_0_0_0_999999999_0')).body).toEqual({ changed: [bob.userId], left: [carol.userId] });
    expect((await changes(alice, t2, t2)).body).toEqual({ changed: [], left: [] });
  });

  it('refuses a missing or malformed token', async () => {
    const u = await createUser(t, 'kc-bad');
    const missing = await changes(u);
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    for (const [from, to] of [
      ['nonsense', undefined],
      ['s1_2', 'x'],
    ] as const) {
      const res = await changes(u, from, to);
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
    expect((await call('GET', `${V3}/keys/changes?from=s0`)).status).toBe(401);
  });
});

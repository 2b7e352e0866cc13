/**
 * Presence: PUT/GET /presence/{userId}/status (who may set and read, the
 * body rules, the disabled and untracked modes, the rate limit), and the
 * PresenceService that /sync reads (stream positions, m.presence events,
 * waking the syncs of users sharing a room, Synapse's timers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PresenceService, presenceOptions } from '../../src/services/presence.js';
import { getPresence } from '../../src/storage/presence.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const LOOSE_PRESENCE = { rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } };

const statusPath = (userId: string, prefix = 'v3') => `/_matrix/client/${prefix}/presence/${encodeURIComponent(userId)}/status`;
const put = (t: TestServer, u: TestUser, body: unknown, target = u.userId) => api(t, 'PUT', statusPath(target), { token: u.accessToken, body });
const get = (t: TestServer, u: TestUser, target: string, prefix = 'v3') => api(t, 'GET', statusPath(target, prefix), { token: u.accessToken });

async function shareRoom(t: TestServer, a: TestUser, b: TestUser): Promise<string> {
  const r = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: a.accessToken, body: { preset: 'private_chat', invite: [b.userId] } });
  expect(r.status).toBe(200);
  const roomId = r.body.room_id as string;
  const j = await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, { token: b.accessToken, body: {} });
  expect(j.status).toBe(200);
  return roomId;
}

describe('presence (enabled)', () => {
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let carol: TestUser;
  beforeAll(async () => {
    t = await startTestServer({ yaml: { ...LOOSE_PRESENCE } });
    alice = await createUser(t, 'alice');
    bob = await createUser(t, 'bob');
    carol = await createUser(t, 'carol');
    await shareRoom(t, alice, bob);
  });
  afterAll(async () => {
    await t?.close();
  });
  const svc = () => t.server.ctx.services.presence;

  it('a user sets and reads their own presence, under r0 and v3', async () => {
    const r = await put(t, alice, { presence: 'online', status_msg: 'Hacking' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({});
    for (const prefix of ['r0', 'v3']) {
      const g = await get(t, alice, alice.userId, prefix);
      expect(g.status).toBe(200);
      expect(g.body).toMatchObject({ presence: 'online', status_msg: 'Hacking', currently_active: true });
      expect(g.body.last_active_ago).toBeGreaterThanOrEqual(0);
      expect(g.body.last_active_ago).toBeLessThan(10_000);
      expect(g.body).not.toHaveProperty('user_id');
    }
    const row = await getPresence(t.server.ctx.database.db, alice.userId);
    expect(row).toMatchObject({ state: 'online', status_msg: 'Hacking', currently_active: true });
  });

  it('a user sharing a room reads it; a stranger gets 403', async () => {
    const g = await get(t, bob, alice.userId);
    expect(g.status).toBe(200);
    expect(g.body.presence).toBe('online');
    const stranger = await get(t, carol, alice.userId);
    expect(stranger.status).toBe(403);
    expect(stranger.body.errcode).toBe('M_FORBIDDEN');
  });

  it('a user who never set presence is offline, without last_active_ago', async () => {
    const g = await get(t, alice, bob.userId);
    expect(g.status).toBe(200);
    expect(g.body).toEqual({ presence: 'offline' });
  });

  it('unavailable and offline carry no currently_active; a set without status_msg clears it', async () => {
    expect((await put(t, alice, { presence: 'unavailable', status_msg: 'away' })).status).toBe(200);
    const g = await get(t, alice, alice.userId);
    expect(g.body).toMatchObject({ presence: 'unavailable', status_msg: 'away' });
    expect(g.body).not.toHaveProperty('currently_active');
    expect((await put(t, alice, { presence: 'offline' })).status).toBe(200);
    const g2 = await get(t, alice, alice.userId);
    expect(g2.body.presence).toBe('offline');
    expect(g2.body).not.toHaveProperty('status_msg');
    expect((await getPresence(t.server.ctx.database.db, alice.userId))?.status_msg).toBeNull();
  });

  it('only yourself: setting another user is 403 and changes nothing', async () => {
    const r = await put(t, alice, { presence: 'online' }, bob.userId);
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_FORBIDDEN');
    expect(await getPresence(t.server.ctx.database.db, bob.userId)).toBeUndefined();
  });

  it('refuses bad bodies and ids with the spec errors', async () => {
    const cases: [unknown, number, string][] = [
      [{}, 400, 'M_MISSING_PARAM'],
      [{ presence: 'busy' }, 400, 'M_INVALID_PARAM'],
      [{ presence: 5 }, 400, 'M_INVALID_PARAM'],
      [{ presence: 'online', status_msg: 7 }, 400, 'M_INVALID_PARAM'],
      [{ presence: 'online', status_msg: 'a\u0000b' }, 400, 'M_INVALID_PARAM'],
      [{ presence: 'online', mood: 'happy' }, 400, 'M_BAD_JSON'],
      [[1], 400, 'M_BAD_JSON'],
      ['online', 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const r = await put(t, alice, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.errcode, JSON.stringify(body)).toBe(errcode);
    }
    const notJson = await api(t, 'PUT', statusPath(alice.userId), { token: alice.accessToken, headers: { 'content-type': 'application/json' } });
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const badId = await api(t, 'GET', statusPath('not-a-user'), { token: alice.accessToken });
    expect(badId.status).toBe(400);
    expect(badId.body.errcode).toBe('M_INVALID_PARAM');
    const badIdPut = await put(t, alice, { presence: 'online' }, 'not-a-user');
    expect(badIdPut.status).toBe(400);
    const noToken = await api(t, 'GET', statusPath(alice.userId));
    expect(noToken.status).toBe(401);
    expect(noToken.body.errcode).toBe('M_MISSING_TOKEN');
    const noTokenPut = await api(t, 'PUT', statusPath(alice.userId), { body: { presence: 'online' } });
    expect(noTokenPut.status).toBe(401);
  });

  it('refuses guests', async () => {
    const guest = await createUser(t, 'guesty');
    await t.server.ctx.database.db.updateTable('users').set({ is_guest: true }).where('user_id', '=', guest.userId).execute();
    t.server.ctx.services.auth.forgetUser(guest.userId);
    const r = await put(t, guest, { presence: 'online' });
    expect(r.status).toBe(403);
    expect(r.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });

  it('changes advance the presence stream; since() gives m.presence events by user and position', async () => {
    const before = svc().position;
    expect((await put(t, bob, { presence: 'online', status_msg: 'here' })).status).toBe(200);
    const after = svc().position;
    expect(after).toBeGreaterThan(before);
    const events = await svc().since([alice.userId, bob.userId], before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'm.presence', sender: bob.userId, content: { presence: 'online', status_msg: 'here', currently_active: true } });
    expect(events[0]?.content.last_active_ago).toBeGreaterThanOrEqual(0);
    // Nothing after the newest position; users not asked for are left out.
    expect(await svc().since([bob.userId], after)).toEqual([]);
    expect(await svc().since([carol.userId], before)).toEqual([]);
    // `to` bounds the range.
    expect(await svc().since([bob.userId], before, before)).toEqual([]);
  });

  it('an initial sync (from 0) leaves offline users out', async () => {
    // alice is offline (set above), bob online.
    const initial = await svc().since([alice.userId, bob.userId], 0);
    expect(initial.map((e) => e.sender)).toEqual([bob.userId]);
  });

  it('repeating the same state is not news: the stream does not move', async () => {
    await put(t, bob, { presence: 'online', status_msg: 'here' });
    const pos = svc().position;
    await put(t, bob, { presence: 'online', status_msg: 'here' });
    expect(svc().position).toBe(pos);
    await put(t, bob, { presence: 'online', status_msg: 'elsewhere' });
    expect(svc().position).toBeGreaterThan(pos);
  });

  it("a change wakes the syncs of users sharing a room, and not strangers'", async () => {
    const notifier = t.server.ctx.services.notifier;
    const bobWoken = notifier.wait(bob.userId, 5_000);
    const carolWoken = notifier.wait(carol.userId, 300);
    const aliceWoken = notifier.wait(alice.userId, 5_000);
    await put(t, alice, { presence: 'online', status_msg: 'back' });
    expect(await bobWoken).toBe(true);
    expect(await aliceWoken).toBe(true);
    expect(await carolWoken).toBe(false);
  });

  it('interestedUsers lists those sharing a joined room, and the user', async () => {
    expect((await svc().interestedUsers(alice.userId)).sort()).toEqual([alice.userId, bob.userId].sort());
    expect(await svc().interestedUsers(carol.userId)).toEqual([carol.userId]);
  });
});

describe('presence timers and /sync hooks', () => {
  // A service of its own on the test server's database, with a clock the test moves.
  let t: TestServer;
  let alice: TestUser;
  let bob: TestUser;
  let clock = 1_000_000;
  let svc: PresenceService;
  beforeAll(async () => {
    t = await startTestServer({ yaml: { ...LOOSE_PRESENCE, presence: { sync_online_timeout: 200, idle_timeout: 400, last_active_granularity: 150 } } });
    alice = await createUser(t, 'alice');
    bob = await createUser(t, 'bob');
    await shareRoom(t, alice, bob);
    svc = new PresenceService({
      db: t.server.ctx.database.db,
      notifier: t.server.ctx.services.notifier,
      logger: t.server.ctx.logger,
      options: { ...presenceOptions(t.config), sweepIntervalMs: 3_600_000 },
      now: () => clock,
    });
    await svc.start();
  });
  afterAll(async () => {
    await svc?.close();
    await t?.close();
  });
  const advance = (ms: number) => {
    clock += ms;
  };

  it('reads the timer settings from the presence: section', () => {
    expect(presenceOptions(t.config)).toMatchObject({ syncOnlineTimeoutMs: 200, idleTimeoutMs: 400, lastActiveGranularityMs: 150, enabled: true, track: true });
  });

  it('without a sync, a set online times out to offline after sync_online_timeout', async () => {
    await svc.set(alice.userId, 'online', 'hi');
    advance(150);
    await svc.sweep();
    expect((await svc.get(alice.userId)).presence).toBe('online');
    advance(100);
    const pos = svc.position;
    await svc.sweep();
    expect((await svc.get(alice.userId)).presence).toBe('offline');
    expect(svc.position).toBeGreaterThan(pos);
    expect((await getPresence(t.server.ctx.database.db, alice.userId))?.state).toBe('offline');
    const events = await svc.since([alice.userId], pos);
    expect(events.map((e) => e.content)).toEqual([{ presence: 'offline', last_active_ago: 250, status_msg: 'hi' }]);
  });

  it('a sync in flight keeps the user online; currently_active lapses; idle turns unavailable', async () => {
    const done = await svc.userSyncing(bob.userId, 'online');
    expect(await svc.get(bob.userId)).toEqual({ presence: 'online', currently_active: true, last_active_ago: 0 });
    advance(220);
    await svc.sweep();
    // Still syncing: online, no longer currently active (granularity 150 ms).
    expect(await svc.get(bob.userId)).toMatchObject({ presence: 'online', currently_active: false, last_active_ago: 220 });
    advance(250);
    await svc.sweep();
    // Inactive past idle_timeout: unavailable, though the sync goes on.
    expect((await svc.get(bob.userId)).presence).toBe('unavailable');
    done();
    advance(150);
    await svc.sweep();
    expect((await svc.get(bob.userId)).presence).toBe('unavailable');
    advance(100);
    await svc.sweep();
    expect((await svc.get(bob.userId)).presence).toBe('offline');
  });

  it('activity bumps within the granularity stay in memory; the stream moves only for news', async () => {
    const done = await svc.userSyncing(bob.userId, 'online');
    const pos = svc.position;
    advance(50);
    (await svc.userSyncing(bob.userId, 'online'))();
    advance(50);
    (await svc.userSyncing(bob.userId, 'online'))();
    expect(svc.position).toBe(pos);
    expect((await svc.get(bob.userId)).last_active_ago).toBe(0);
    done();
  });

  it('set_presence from /sync: "offline" changes nothing, and syncs keep the status message', async () => {
    await svc.set(bob.userId, 'unavailable', 'lunch');
    const pos = svc.position;
    const done = await svc.userSyncing(bob.userId, 'offline');
    done();
    expect(svc.position).toBe(pos);
    await svc.set(bob.userId, 'offline', undefined, { sync: true });
    expect(svc.position).toBe(pos);
    await svc.set(bob.userId, 'online', undefined, { sync: true });
    expect(await svc.get(bob.userId)).toMatchObject({ presence: 'online', status_msg: 'lunch' });
  });
});

describe('presence configuration', () => {
  it('presence.enabled: false: PUT accepted and ignored, GET offline for anyone, nothing for sync', async () => {
    const t = await startTestServer({ yaml: { ...LOOSE_PRESENCE, presence: { enabled: false } } });
    try {
      const a = await createUser(t, 'alice');
      const b = await createUser(t, 'bob');
      const r = await put(t, a, { presence: 'online', status_msg: 'x' });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({});
      expect(await getPresence(t.server.ctx.database.db, a.userId)).toBeUndefined();
      const own = await get(t, a, a.userId);
      expect(own.status).toBe(200);
      expect(own.body).toEqual({ presence: 'offline' });
      // Synapse answers before any visibility check.
      const stranger = await get(t, b, a.userId);
      expect(stranger.status).toBe(200);
      expect(stranger.body).toEqual({ presence: 'offline' });
      const svc = t.server.ctx.services.presence;
      await svc.set(a.userId, 'online');
      expect(svc.position).toBe(0);
      expect(await svc.since([a.userId], 0)).toEqual([]);
      // Other users still may not set someone else's.
      expect((await put(t, b, { presence: 'online' }, a.userId)).status).toBe(403);
    } finally {
      await t.close();
    }
  });

  it('use_presence: false (the legacy key) disables it too', async () => {
    const t = await startTestServer({ yaml: { ...LOOSE_PRESENCE, use_presence: false } });
    try {
      const a = await createUser(t, 'alice');
      await put(t, a, { presence: 'online' });
      expect((await get(t, a, a.userId)).body).toEqual({ presence: 'offline' });
    } finally {
      await t.close();
    }
  });

  it('presence.enabled: untracked ignores local changes but reads work', async () => {
    const t = await startTestServer({ yaml: { ...LOOSE_PRESENCE, presence: { enabled: 'untracked' } } });
    try {
      const a = await createUser(t, 'alice');
      expect((await put(t, a, { presence: 'online' })).status).toBe(200);
      expect(await getPresence(t.server.ctx.database.db, a.userId)).toBeUndefined();
      expect((await get(t, a, a.userId)).body).toEqual({ presence: 'offline' });
    } finally {
      await t.close();
    }
  });

  it('rc_presence.per_user limits PUTs with 429 (Synapse default: 1 per 10 s)', async () => {
    const t = await startTestServer();
    try {
      const a = await createUser(t, 'alice');
      expect((await put(t, a, { presence: 'online', status_msg: 'one' })).status).toBe(200);
      const second = await put(t, a, { presence: 'online', status_msg: 'two' });
      expect(second.status).toBe(429);
      expect(second.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(second.body.retry_after_ms).toBeGreaterThan(0);
      // The refused update was dropped.
      expect((await get(t, a, a.userId)).body.status_msg).toBe('one');
    } finally {
      await t.close();
    }
  });

  it('presence survives a restart: the stream position and states are kept', async () => {
    const t = await startTestServer({ yaml: { ...LOOSE_PRESENCE } });
    try {
      const a = await createUser(t, 'alice');
      await put(t, a, { presence: 'unavailable', status_msg: 'zzz' });
      const pos = t.server.ctx.services.presence.position;
      const fresh = new PresenceService({
        db: t.server.ctx.database.db,
        notifier: t.server.ctx.services.notifier,
        logger: t.server.ctx.logger,
        options: presenceOptions(t.config),
      });
      await fresh.start();
      try {
        expect(fresh.position).toBe(pos);
        expect(await fresh.get(a.userId)).toMatchObject({ presence: 'unavailable', status_msg: 'zzz' });
      } finally {
        await fresh.close();
      }
    } finally {
      await t.close();
    }
  });
});

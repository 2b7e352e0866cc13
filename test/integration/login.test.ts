/**
 * POST /login (password), the login rate limits, POST /refresh and
 * POST /logout(/all), over HTTP against the real server.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest, eventually, login } from '../helpers/sessions.js';
import { startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const LOOSE = { per_second: 1000, burst_count: 1000 };
const TIGHT = { per_second: 0.001, burst_count: 2 };

const t = useTestServer();

const db = () => t.server.ctx.database.db;
const whoami = (token: string, server = t) => api(server, 'GET', '/_matrix/client/v3/account/whoami', { token });

describe('POST /login', () => {
  it('logs in with an m.id.user localpart and returns a working session', async () => {
    const u = await createUser(t, 'alice');
    const res = await login(t, 'alice', u.password, { initial_device_display_name: 'Alice phone' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user_id: '@alice:test.local', home_server: 'test.local' });
    expect(res.body.access_token).toMatch(/^syt_/);
    expect(res.body.device_id).toMatch(/^[A-Z]{10}$/);
    expect(res.body).not.toHaveProperty('refresh_token');
    expect(res.body).not.toHaveProperty('expires_in_ms');
    const who = await whoami(res.body.access_token as string);
    expect(who.body).toEqual({ user_id: '@alice:test.local', device_id: res.body.device_id, is_guest: false });
    const device = await db()
      .selectFrom('devices')
      .selectAll()
      .where('user_id', '=', u.userId)
      .where('device_id', '=', res.body.device_id as string)
      .executeTakeFirst();
    expect(device?.display_name).toBe('Alice phone');
  });

  it('accepts a full user id, the legacy top-level `user`, any case, and the r0 path', async () => {
    const u = await createUser(t, 'bob');
    expect((await login(t, '@bob:test.local', u.password)).status).toBe(200);
    expect((await login(t, 'BOB', u.password)).body.user_id).toBe('@bob:test.local');
    const legacy = await api(t, 'POST', '/_matrix/client/r0/login', { body: { type: 'm.login.password', user: 'bob', password: u.password } });
    expect(legacy.status).toBe(200);
    expect(legacy.body.user_id).toBe('@bob:test.local');
  });

  it('reuses a given device_id and keeps its name', async () => {
    const u = await createUser(t, 'carol');
    const first = await login(t, 'carol', u.password, { device_id: 'CAROLDEV', initial_device_display_name: 'first' });
    const second = await login(t, 'carol', u.password, { device_id: 'CAROLDEV', initial_device_display_name: 'second' });
    expect(first.body.device_id).toBe('CAROLDEV');
    expect(second.body.device_id).toBe('CAROLDEV');
    const devices = await db().selectFrom('devices').selectAll().where('user_id', '=', u.userId).where('device_id', '=', 'CAROLDEV').execute();
    expect(devices).toHaveLength(1);
    expect(devices[0]?.display_name).toBe('first');
    // Both sessions on the device stay valid.
    expect((await whoami(first.body.access_token as string)).status).toBe(200);
    expect((await whoami(second.body.access_token as string)).status).toBe(200);
  });

  it('issues a refresh token and an expiring access token on request', async () => {
    const u = await createUser(t, 'dave');
    const res = await login(t, 'dave', u.password, { refresh_token: true });
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toMatch(/^syr_/);
    expect(res.body.expires_in_ms).toBe(5 * 60_000);
    const row = await db()
      .selectFrom('access_tokens')
      .select(['valid_until_ms', 'refresh_token_id'])
      .where('user_id', '=', u.userId)
      .where('device_id', '=', res.body.device_id as string)
      .executeTakeFirst();
    expect(row?.refresh_token_id).not.toBeNull();
    expect(Number(row?.valid_until_ms)).toBeGreaterThan(Date.now());
  });

  it('refuses wrong credentials with 403 M_FORBIDDEN', async () => {
    const u = await createUser(t, 'erin');
    const wrong = await login(t, 'erin', 'not-the-password');
    expect(wrong.status).toBe(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const nobody = await login(t, 'nobody-here', 'whatever');
    expect(nobody.status).toBe(403);
    expect(nobody.body.errcode).toBe('M_FORBIDDEN');
    const remote = await login(t, '@erin:elsewhere.example', u.password);
    expect(remote.status).toBe(403);
    const count = await db().selectFrom('access_tokens').select(db().fn.countAll<number>().as('n')).where('user_id', '=', u.userId).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1); // only the fixture's session
  });

  it('answers a deactivated account with 403 M_USER_DEACTIVATED', async () => {
    const u = await createUser(t, 'frank');
    await db()
      .transaction()
      .execute((tx) => t.server.ctx.services.accounts.deactivate(tx, u.userId, { erase: false }));
    const res = await login(t, 'frank', u.password);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_USER_DEACTIVATED');
  });

  it('answers a locked account with 401 M_USER_LOCKED', async () => {
    const u = await createUser(t, 'grace');
    await db().updateTable('users').set({ locked: true }).where('user_id', '=', u.userId).execute();
    const res = await login(t, 'grace', u.password);
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_USER_LOCKED');
  });

  it('rejects bad submissions with the spec errors', async () => {
    const u = await createUser(t, 'heidi');
    const post = (body: unknown) => api(t, 'POST', '/_matrix/client/v3/login', { body });
    const cases: [unknown, number, string][] = [
      [{ type: 'm.login.token', token: 'x' }, 400, 'M_UNKNOWN'],
      [{ type: 'org.example.custom', user: 'heidi' }, 400, 'M_UNKNOWN'],
      [{ identifier: { type: 'm.id.user', user: 'heidi' }, password: u.password }, 400, 'M_MISSING_PARAM'],
      [{ type: 5, user: 'heidi', password: u.password }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'heidi', password: 12345 }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', password: u.password }, 400, 'M_MISSING_PARAM'],
      [{ type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' }, password: 'x' }, 400, 'M_UNKNOWN'],
      [{ type: 'm.login.password', identifier: 'heidi', password: 'x' }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'heidi', password: u.password, refresh_token: 'yes' }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'heidi', password: u.password, device_id: 'D'.repeat(513) }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'heidi', password: u.password, device_id: 7 }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'heidi', password: u.password, initial_device_display_name: 'n'.repeat(101) }, 400, 'M_TOO_LARGE'],
      [['m.login.password'], 400, 'M_BAD_JSON'],
      [{ type: 'm.login.password', user: 'heidi', password: u.password, device_id: 'A\u0000B' }, 400, 'M_INVALID_PARAM'],
      [{ type: 'm.login.password', user: 'hei\u0000di', password: u.password }, 400, 'M_INVALID_PARAM'],
    ];
    for (const [body, status, errcode] of cases) {
      const res = await post(body);
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status, errcode });
    }
    const empty = await fetch(`${t.url}/_matrix/client/v3/login`, { method: 'POST' });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
    const garbage = await fetch(`${t.url}/_matrix/client/v3/login`, { method: 'POST', body: '{not json' });
    expect(((await garbage.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
  });
});

describe('login rate limits', () => {
  it('limits attempts per client address (rc_login.address), even with the right password', async () => {
    const s = await startTestServer({ yaml: { rc_login: { address: TIGHT, account: LOOSE, failed_attempts: LOOSE } } });
    try {
      const u = await createUser(s, 'ivan');
      expect((await login(s, 'ivan', 'wrong')).status).toBe(403);
      expect((await login(s, 'ivan', u.password)).status).toBe(200);
      const limited = await login(s, 'ivan', u.password);
      expect(limited.status).toBe(429);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(limited.body.retry_after_ms).toBeGreaterThan(0);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      // A different client address (through x_forwarded) has its own bucket.
      const other = await api(s, 'POST', '/_matrix/client/v3/login', {
        body: { type: 'm.login.password', user: 'ivan', password: u.password },
        headers: { 'x-forwarded-for': '198.51.100.7' },
      });
      expect(other.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('counts failures per user (rc_login.failed_attempts) and then refuses before checking the password', async () => {
    const s = await startTestServer({ yaml: { rc_login: { address: LOOSE, account: LOOSE, failed_attempts: TIGHT } } });
    try {
      const u = await createUser(s, 'judy');
      const v = await createUser(s, 'ken');
      // Successes do not count.
      for (let i = 0; i < 3; i++) expect((await login(s, 'judy', u.password)).status).toBe(200);
      expect((await login(s, 'judy', 'wrong')).status).toBe(403);
      expect((await login(s, 'judy', 'wrong')).status).toBe(403);
      const limited = await login(s, 'judy', u.password);
      expect(limited.status).toBe(429);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(limited.body.retry_after_ms).toBeGreaterThan(0);
      // The same user however named; another user is unaffected.
      expect((await login(s, '@JUDY:test.local', u.password)).status).toBe(429);
      expect((await login(s, 'ken', v.password)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('limits successful logins per account (rc_login.account); failures do not count there', async () => {
    const s = await startTestServer({ yaml: { rc_login: { address: LOOSE, account: TIGHT, failed_attempts: LOOSE } } });
    try {
      const u = await createUser(s, 'leo');
      for (let i = 0; i < 3; i++) expect((await login(s, 'leo', 'wrong')).status).toBe(403);
      expect((await login(s, 'leo', u.password)).status).toBe(200);
      expect((await login(s, 'leo', u.password)).status).toBe(200);
      const limited = await login(s, 'leo', u.password);
      expect(limited.status).toBe(429);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      // A wrong password is still just wrong: the account limit applies once the password is accepted.
      expect((await login(s, 'leo', 'wrong')).status).toBe(403);
    } finally {
      await s.close();
    }
  });
});

describe('password login disabled', () => {
  it('offers no flows and refuses m.login.password', async () => {
    const s = await startTestServer({ yaml: { password_config: { enabled: false } } });
    try {
      const u = await createUser(s, 'mallory');
      const flows = await api(s, 'GET', '/_matrix/client/v3/login');
      expect(flows.body).toEqual({ flows: [] });
      const res = await login(s, 'mallory', u.password);
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_UNKNOWN');
      expect(res.body.error).toMatch(/disabled/);
    } finally {
      await s.close();
    }
  });
});

describe('POST /refresh', () => {
  const refresh = (token: unknown) => api(t, 'POST', '/_matrix/client/v3/refresh', { body: { refresh_token: token } });

  it('rotates: the old refresh token works until the new access token is used', async () => {
    const u = await createUser(t, 'nina');
    const first = await login(t, 'nina', u.password, { refresh_token: true });
    const r1 = first.body.refresh_token as string;

    const a = await refresh(r1);
    expect(a.status).toBe(200);
    expect(a.body.access_token).toMatch(/^syt_/);
    expect(a.body.refresh_token).toMatch(/^syr_/);
    expect(a.body.expires_in_ms).toBe(5 * 60_000);

    // The response was lost: the client retries with r1, which still works and replaces a's tokens.
    const b = await refresh(r1);
    expect(b.status).toBe(200);
    expect((await whoami(a.body.access_token as string)).status).toBe(401);

    // Using b's access token retires r1 for good.
    const who = await whoami(b.body.access_token as string);
    expect(who.body).toMatchObject({ user_id: u.userId, device_id: first.body.device_id });
    const again = await refresh(r1);
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_UNKNOWN_TOKEN');

    // The chain goes on, on the same device; only the newest two refresh tokens are kept.
    const c = await refresh(b.body.refresh_token);
    expect(c.status).toBe(200);
    expect((await whoami(c.body.access_token as string)).body.device_id).toBe(first.body.device_id);
    expect((await refresh(b.body.refresh_token)).status).toBe(401);
    expect((await refresh(c.body.refresh_token)).status).toBe(200);
    const kept = await db().selectFrom('refresh_tokens').select('id').where('user_id', '=', u.userId).execute();
    expect(kept).toHaveLength(2);
  });

  it('serialises two refreshes of one token: one successor survives', async () => {
    const u = await createUser(t, 'norma');
    const first = await login(t, 'norma', u.password, { refresh_token: true });
    const [a, b] = await Promise.all([refresh(first.body.refresh_token), refresh(first.body.refresh_token)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const rows = await db().selectFrom('refresh_tokens').select(['id', 'next_token_id']).where('user_id', '=', u.userId).execute();
    expect(rows).toHaveLength(2);
    const valid = [(await whoami(a.body.access_token as string)).status, (await whoami(b.body.access_token as string)).status].sort();
    expect(valid).toEqual([200, 401]);
  });

  it('retires a refresh token once its successor has itself been refreshed', async () => {
    const u = await createUser(t, 'nils');
    const first = await login(t, 'nils', u.password, { refresh_token: true });
    const x = await refresh(first.body.refresh_token);
    const y = await refresh(x.body.refresh_token);
    expect(y.status).toBe(200);
    const again = await refresh(first.body.refresh_token);
    expect(again.status).toBe(401);
    expect(again.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('lets a soft-logged-out client refresh its expired access token', async () => {
    const u = await createUser(t, 'oscar');
    const first = await login(t, 'oscar', u.password, { refresh_token: true });
    await db()
      .updateTable('access_tokens')
      .set({ valid_until_ms: Date.now() - 1000 })
      .where('user_id', '=', u.userId)
      .where('device_id', '=', first.body.device_id as string)
      .execute();
    const expired = await whoami(first.body.access_token as string);
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ errcode: 'M_UNKNOWN_TOKEN', soft_logout: true });
    const r = await refresh(first.body.refresh_token);
    expect(r.status).toBe(200);
    expect((await whoami(r.body.access_token as string)).status).toBe(200);
  });

  it('refuses unknown, expired and malformed refresh tokens', async () => {
    for (const token of ['syr_bm9ib2R5_aaaaaaaaaaaaaaaaaaaa_000000', 'not-a-token', '']) {
      const res = await refresh(token);
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    const u = await createUser(t, 'peggy');
    const s = await login(t, 'peggy', u.password, { refresh_token: true });
    await db()
      .updateTable('refresh_tokens')
      .set({ expiry_ts: Date.now() - 1 })
      .where('user_id', '=', u.userId)
      .execute();
    expect((await refresh(s.body.refresh_token)).status).toBe(401);
    const missing = await api(t, 'POST', '/_matrix/client/v3/refresh', { body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const wrongType = await refresh(42);
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('POST /logout and /logout/all', () => {
  it('ends this session at once and removes its device, leaving the others', async () => {
    const u = await createUser(t, 'quentin');
    const other = await login(t, 'quentin', u.password, { refresh_token: true });
    const mine = await login(t, 'quentin', u.password, { refresh_token: true });
    const token = mine.body.access_token as string;
    expect((await whoami(token)).status).toBe(200); // now cached by AuthService
    const res = await api(t, 'POST', '/_matrix/client/v3/logout', { token, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const after = await whoami(token);
    expect(after.status).toBe(401);
    expect(after.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const devices = await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute();
    expect(devices.map((d) => d.device_id).sort()).toEqual([u.deviceId, other.body.device_id].sort());
    const tokens = await db()
      .selectFrom('access_tokens')
      .select('id')
      .where('device_id', '=', mine.body.device_id as string)
      .execute();
    expect(tokens).toHaveLength(0);
    const refreshTokens = await db()
      .selectFrom('refresh_tokens')
      .select('id')
      .where('device_id', '=', mine.body.device_id as string)
      .execute();
    expect(refreshTokens).toHaveLength(0);
    expect((await api(t, 'POST', '/_matrix/client/v3/refresh', { body: { refresh_token: mine.body.refresh_token } })).status).toBe(401);
    expect((await whoami(other.body.access_token as string)).status).toBe(200);
    expect((await whoami(u.accessToken)).status).toBe(200);
  });

  it('accepts an expired access token (r0 path)', async () => {
    const u = await createUser(t, 'rupert');
    await db()
      .updateTable('access_tokens')
      .set({ valid_until_ms: Date.now() - 1000 })
      .where('user_id', '=', u.userId)
      .execute();
    const res = await api(t, 'POST', '/_matrix/client/r0/logout', { token: u.accessToken });
    expect(res.status).toBe(200);
    expect(await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
  });

  it('/logout/all ends every session and removes every device', async () => {
    const u = await createUser(t, 'sybil');
    const second = await login(t, 'sybil', u.password, { refresh_token: true });
    expect((await whoami(second.body.access_token as string)).status).toBe(200);
    const res = await api(t, 'POST', '/_matrix/client/v3/logout/all', { token: u.accessToken });
    expect(res.status).toBe(200);
    for (const token of [u.accessToken, second.body.access_token as string]) {
      expect((await whoami(token)).body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    expect(await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    expect(await db().selectFrom('access_tokens').select('id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    expect(await db().selectFrom('refresh_tokens').select('id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    // The password still works: logging in again starts afresh.
    expect((await login(t, 'sybil', u.password)).status).toBe(200);
  });

  it('needs a valid token, and lets guests log out', async () => {
    const none = await api(t, 'POST', '/_matrix/client/v3/logout');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await api(t, 'POST', '/_matrix/client/v3/logout/all', { token: 'syt_bogus' });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const guest = await createGuest(t);
    expect((await api(t, 'POST', '/_matrix/client/v3/logout', { token: guest.accessToken })).status).toBe(200);
    expect((await whoami(guest.accessToken)).status).toBe(401);
  });

  it('records nothing of a logged-out session afterwards', async () => {
    const u = await createUser(t, 'trent');
    await whoami(u.accessToken);
    await eventually(async () => (await db().selectFrom('devices').select('last_seen_ts').where('user_id', '=', u.userId).executeTakeFirst())?.last_seen_ts);
    await api(t, 'POST', '/_matrix/client/v3/logout', { token: u.accessToken });
    expect(await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
  });
});

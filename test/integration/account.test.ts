/**
 * GET /account/whoami, POST /account/password and POST /account/deactivate
 * (both behind UIA), over HTTP against the real server.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest, login, passwordAuth } from '../helpers/sessions.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const t = useTestServer();

const db = () => t.server.ctx.database.db;
const whoami = (token: string, server = t) => api(server, 'GET', '/_matrix/client/v3/account/whoami', { token });

/** Runs a UIA-protected request to completion with the user's password; returns the final response. */
async function withPassword(server: TestServer, u: TestUser, method: string, path: string, body: Record<string, unknown>, token = u.accessToken) {
  const first = await api(server, method, path, { token, body });
  expect(first.status).toBe(401);
  const session = first.body.session as string;
  return api(server, method, path, { token, body: { ...body, auth: passwordAuth(u, session) } });
}

describe('GET /account/whoami', () => {
  it('names the user and device, on r0 and v3', async () => {
    const u = await createUser(t, 'alice');
    for (const v of ['r0', 'v3']) {
      const res = await api(t, 'GET', `/_matrix/client/${v}/account/whoami`, { token: u.accessToken });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ user_id: u.userId, device_id: u.deviceId, is_guest: false });
    }
  });

  it('says is_guest for guests', async () => {
    const g = await createGuest(t);
    const res = await whoami(g.accessToken);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: g.userId, device_id: g.deviceId, is_guest: true });
  });

  it('needs a valid access token (header or query)', async () => {
    const none = await api(t, 'GET', '/_matrix/client/v3/account/whoami');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await whoami('syt_nope');
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
    const u = await createUser(t, 'alice2');
    const q = await api(t, 'GET', `/_matrix/client/v3/account/whoami?access_token=${encodeURIComponent(u.accessToken)}`);
    expect(q.body.user_id).toBe(u.userId);
  });
});

describe('POST /account/password', () => {
  const path = '/_matrix/client/v3/account/password';

  it('asks for the password stage, then changes the password and ends every other session', async () => {
    const u = await createUser(t, 'bob');
    const other = await login(t, 'bob', u.password, { refresh_token: true });
    expect((await whoami(other.body.access_token as string)).status).toBe(200);

    const first = await api(t, 'POST', path, { token: u.accessToken, body: { new_password: 'a brand new password' } });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(typeof first.body.session).toBe('string');
    expect(first.body).not.toHaveProperty('errcode');

    const wrong = await api(t, 'POST', path, {
      token: u.accessToken,
      body: { new_password: 'a brand new password', auth: passwordAuth(u, first.body.session as string, 'wrong') },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect(wrong.body.session).toBe(first.body.session);

    const done = await api(t, 'POST', path, {
      token: u.accessToken,
      body: { new_password: 'a brand new password', auth: passwordAuth(u, first.body.session as string) },
    });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({});

    expect((await login(t, 'bob', u.password)).status).toBe(403);
    expect((await login(t, 'bob', 'a brand new password')).status).toBe(200);
    // The other session is over, device and all; this one carries on.
    expect((await whoami(other.body.access_token as string)).body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await api(t, 'POST', '/_matrix/client/v3/refresh', { body: { refresh_token: other.body.refresh_token } })).status).toBe(401);
    expect((await whoami(u.accessToken)).status).toBe(200);
    const devices = await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute();
    expect(devices.map((d) => d.device_id)).not.toContain(other.body.device_id);
    expect(devices.map((d) => d.device_id)).toContain(u.deviceId);
  });

  it('keeps other sessions with logout_devices: false', async () => {
    const u = await createUser(t, 'carol');
    const other = await login(t, 'carol', u.password);
    const res = await withPassword(t, u, 'POST', path, { new_password: 'carols new password', logout_devices: false });
    expect(res.status).toBe(200);
    expect((await whoami(other.body.access_token as string)).status).toBe(200);
    expect((await login(t, 'carol', 'carols new password')).status).toBe(200);
  });

  it('keeps a refreshable current session alive', async () => {
    const u = await createUser(t, 'chuck');
    const s = await login(t, 'chuck', u.password, { refresh_token: true });
    const token = s.body.access_token as string;
    const res = await withPassword(t, u, 'POST', path, { new_password: 'chucks new password' }, token);
    expect(res.status).toBe(200);
    expect((await whoami(token)).status).toBe(200);
    expect((await whoami(u.accessToken)).status).toBe(401);
    const r = await api(t, 'POST', '/_matrix/client/v3/refresh', { body: { refresh_token: s.body.refresh_token } });
    expect(r.status).toBe(200);
  });

  it('uses a new password given only before UIA completed (kept hashed in the session)', async () => {
    const u = await createUser(t, 'dave');
    const other = await login(t, 'dave', u.password);
    const first = await api(t, 'POST', path, { token: u.accessToken, body: { new_password: 'daves later password' } });
    expect(first.status).toBe(401);
    const row = await db()
      .selectFrom('ui_auth_sessions')
      .select('serverdict')
      .where('session_id', '=', first.body.session as string)
      .executeTakeFirstOrThrow();
    expect(String(row.serverdict['password_hash'])).toMatch(/^\$2/);
    expect(JSON.stringify(row)).not.toContain('daves later password');
    const done = await api(t, 'POST', path, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    expect((await login(t, 'dave', 'daves later password')).status).toBe(200);
    expect((await whoami(u.accessToken)).status).toBe(200);
    expect((await whoami(other.body.access_token as string)).status).toBe(401);
    const devices = await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute();
    expect(devices.map((d) => d.device_id)).toContain(u.deviceId);
    expect(devices.map((d) => d.device_id)).not.toContain(other.body.device_id);
  });

  it('needs a new password somewhere', async () => {
    const u = await createUser(t, 'erin');
    const res = await withPassword(t, u, 'POST', path, {});
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
    expect((await login(t, 'erin', u.password)).status).toBe(200);
  });

  it('refuses bad input', async () => {
    const u = await createUser(t, 'frank');
    const cases: [unknown, string][] = [
      [{ new_password: 42 }, 'M_INVALID_PARAM'],
      [{ new_password: 'x'.repeat(513) }, 'M_BAD_JSON'],
      [{ new_password: 'fine password', logout_devices: 'yes' }, 'M_BAD_JSON'],
      [[1, 2], 'M_BAD_JSON'],
    ];
    for (const [body, errcode] of cases) {
      const res = await api(t, 'POST', path, { token: u.accessToken, body });
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status: 400, errcode });
    }
    expect((await api(t, 'POST', path, { body: { new_password: 'whatever password' } })).body.errcode).toBe('M_MISSING_TOKEN');
  });

  it("refuses another user's password in the stage", async () => {
    const u = await createUser(t, 'grace');
    const v = await createUser(t, 'heidi');
    const first = await api(t, 'POST', path, { token: u.accessToken, body: { new_password: 'graces new password' } });
    const res = await api(t, 'POST', path, {
      token: u.accessToken,
      body: { new_password: 'graces new password', auth: passwordAuth(v, first.body.session as string) },
    });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect((await login(t, 'grace', u.password)).status).toBe(200);
  });

  it('is not for guests', async () => {
    const g = await createGuest(t);
    const res = await api(t, 'POST', path, { token: g.accessToken, body: { new_password: 'guest password' } });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });

  it('applies password_config.policy, and refuses when password changes are disabled', async () => {
    const s = await startTestServer({ yaml: { password_config: { policy: { enabled: true, minimum_length: 12, require_digit: true } } } });
    try {
      const u = await createUser(s, 'ivan');
      const short = await api(s, 'POST', path, { token: u.accessToken, body: { new_password: 'short1' } });
      expect(short.status).toBe(400);
      expect(short.body.errcode).toBe('M_PASSWORD_TOO_SHORT');
      const noDigit = await api(s, 'POST', path, { token: u.accessToken, body: { new_password: 'long enough but no digit' } });
      expect(noDigit.body.errcode).toBe('M_PASSWORD_NO_DIGIT');
      const ok = await withPassword(s, u, 'POST', path, { new_password: 'long enough with 1 digit' });
      expect(ok.status).toBe(200);
    } finally {
      await s.close();
    }
    const off = await startTestServer({ yaml: { password_config: { enabled: false } } });
    try {
      const u = await createUser(off, 'judy');
      const res = await api(off, 'POST', path, { token: u.accessToken, body: { new_password: 'new password' } });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
    } finally {
      await off.close();
    }
  });

  it('limits failed re-authentication attempts (rc_login.failed_attempts)', async () => {
    const tight = { per_second: 0.001, burst_count: 2 };
    const loose = { per_second: 1000, burst_count: 1000 };
    const s = await startTestServer({ yaml: { rc_login: { address: loose, account: loose, failed_attempts: tight } } });
    try {
      const u = await createUser(s, 'ken');
      const first = await api(s, 'POST', path, { token: u.accessToken, body: { new_password: 'kens new password' } });
      const session = first.body.session as string;
      for (let i = 0; i < 2; i++) {
        const res = await api(s, 'POST', path, { token: u.accessToken, body: { new_password: 'kens new password', auth: passwordAuth(u, session, 'wrong') } });
        expect(res.status).toBe(401);
      }
      const limited = await api(s, 'POST', path, { token: u.accessToken, body: { new_password: 'kens new password', auth: passwordAuth(u, session) } });
      expect(limited.status).toBe(429);
      expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect((await login(s, 'ken', u.password)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('POST /account/deactivate', () => {
  const path = '/_matrix/client/v3/account/deactivate';

  it('deactivates behind UIA: sessions end, login says M_USER_DEACTIVATED, erase clears the profile', async () => {
    const u = await createUser(t, 'leo');
    const other = await login(t, 'leo', u.password);
    await api(t, 'PUT', `/_matrix/client/v3/user/${encodeURIComponent(u.userId)}/account_data/m.example`, { token: u.accessToken, body: { a: 1 } });
    await api(t, 'PUT', `/_matrix/client/v3/profile/${encodeURIComponent(u.userId)}/avatar_url`, { token: u.accessToken, body: { avatar_url: 'mxc://test.local/abc' } });

    const first = await api(t, 'POST', path, { token: u.accessToken, body: { erase: true } });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const done = await api(t, 'POST', path, { token: u.accessToken, body: { erase: true, auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ id_server_unbind_result: 'no-support' });

    for (const token of [u.accessToken, other.body.access_token as string]) {
      expect((await whoami(token)).body.errcode).toBe('M_UNKNOWN_TOKEN');
    }
    const res = await login(t, 'leo', u.password);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_USER_DEACTIVATED');

    const user = await db().selectFrom('users').selectAll().where('user_id', '=', u.userId).executeTakeFirstOrThrow();
    expect(user).toMatchObject({ deactivated: true, erased: true, password_hash: null });
    expect(await db().selectFrom('profiles').select(['displayname', 'avatar_url']).where('user_id', '=', u.userId).executeTakeFirst()).toEqual({
      displayname: null,
      avatar_url: null,
    });
    expect(await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    expect(await db().selectFrom('access_tokens').select('id').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    expect(await db().selectFrom('account_data').select('type').where('user_id', '=', u.userId).execute()).toHaveLength(0);
    expect((await api(t, 'GET', `/_matrix/client/v3/profile/${encodeURIComponent(u.userId)}`)).status).toBe(404);
  });

  it('keeps the profile without erase (r0 path)', async () => {
    const u = await createUser(t, 'mallory');
    // As Synapse: the body is required (a JSON object), even for the first UIA step.
    const noBody = await api(t, 'POST', '/_matrix/client/r0/account/deactivate', { token: u.accessToken });
    expect({ status: noBody.status, errcode: noBody.body.errcode }).toEqual({ status: 400, errcode: 'M_NOT_JSON' });
    const first = await api(t, 'POST', '/_matrix/client/r0/account/deactivate', { token: u.accessToken, body: {} });
    expect(first.status).toBe(401);
    const done = await api(t, 'POST', '/_matrix/client/r0/account/deactivate', { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    const user = await db().selectFrom('users').select(['deactivated', 'erased']).where('user_id', '=', u.userId).executeTakeFirstOrThrow();
    expect(user).toEqual({ deactivated: true, erased: false });
    expect((await api(t, 'GET', `/_matrix/client/v3/profile/${encodeURIComponent(u.userId)}/displayname`)).body).toEqual({ displayname: 'mallory' });
  });

  it('refuses a wrong password, bad input and guests', async () => {
    const u = await createUser(t, 'nina');
    const first = await api(t, 'POST', path, { token: u.accessToken, body: {} });
    const wrong = await api(t, 'POST', path, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string, 'nope') } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    expect((await whoami(u.accessToken)).status).toBe(200);
    const badErase = await api(t, 'POST', path, { token: u.accessToken, body: { erase: 'yes' } });
    expect(badErase.status).toBe(400);
    expect(badErase.body.errcode).toBe('M_BAD_JSON');
    const g = await createGuest(t);
    const guest = await api(t, 'POST', path, { token: g.accessToken, body: {} });
    expect(guest.status).toBe(403);
    expect(guest.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    const user = await db().selectFrom('users').select('deactivated').where('user_id', '=', u.userId).executeTakeFirstOrThrow();
    expect(user.deactivated).toBe(false);
  });
});

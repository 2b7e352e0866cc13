/**
 * POST /register (user-interactive auth, guests, usernames, passwords,
 * refresh tokens, rate limits), /register/available, and registration
 * tokens (the m.login.registration_token stage, /validity, use counting,
 * the race for a token's last use, session expiry), over HTTP against the
 * real server, checking what lands in the database.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { api, createUser } from '../helpers/users.js';
import { type TestServer } from '../helpers/server.js';

const REG = '/_matrix/client/v3/register';
const VALIDITY = '/_matrix/client/v1/register/m.login.registration_token/validity';
const LOOSE = { per_second: 1000, burst_count: 1000 };

const dbOf = (t: TestServer) => t.server.ctx.database.db;
const userRow = (t: TestServer, userId: string) => dbOf(t).selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
const tokenRow = (t: TestServer, token: string) => dbOf(t).selectFrom('registration_tokens').selectAll().where('token', '=', token).executeTakeFirstOrThrow();
const userCount = async (t: TestServer) =>
  Number(
    (
      await dbOf(t)
        .selectFrom('users')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

async function addToken(t: TestServer, token: string, opts: { usesAllowed?: number | null; expiryTime?: number | null } = {}): Promise<void> {
  await dbOf(t)
    .insertInto('registration_tokens')
    .values({ token, uses_allowed: opts.usesAllowed ?? null, expiry_time: opts.expiryTime ?? null })
    .execute();
}

/** Opens a UIA session for a registration; returns its id and the 401 body. */
async function openSession(t: TestServer, body: Record<string, unknown>): Promise<{ session: string; body: Record<string, unknown> }> {
  const res = await api(t, 'POST', REG, { body });
  expect(res.status).toBe(401);
  expect(typeof res.body.session).toBe('string');
  return { session: res.body.session as string, body: res.body };
}

const stage = (t: TestServer, session: string, auth: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  api(t, 'POST', REG, { body: { ...extra, auth: { ...auth, session } } });

describe('open registration (enable_registration_without_verification)', () => {
  const t = useTestServer({
    yaml: {
      enable_registration: true,
      enable_registration_without_verification: true,
      allow_guest_access: true,
      password_config: { policy: { enabled: true, minimum_length: 8, require_digit: true } },
    },
  });

  it('offers the m.login.dummy flow with a session, no errcode on the first round', async () => {
    const res = await api(t, 'POST', REG, { body: {} });
    expect(res.status).toBe(401);
    expect(res.body.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    expect(res.body.params).toEqual({});
    expect(typeof res.body.session).toBe('string');
    expect(res.body.errcode).toBeUndefined();
    expect(res.body.completed).toBeUndefined();
  });

  it('registers with the parameters of the first request when the follow-up only carries auth', async () => {
    const { session } = await openSession(t, {
      username: 'Alice',
      password: 'correct horse 1',
      device_id: 'ALICEPHONE',
      initial_device_display_name: "Alice's phone",
    });
    // The password itself is never stored in the session: only its hash.
    const s = await dbOf(t).selectFrom('ui_auth_sessions').selectAll().where('session_id', '=', session).executeTakeFirstOrThrow();
    expect(JSON.stringify(s.clientdict)).not.toContain('correct horse');
    expect(s.clientdict).toMatchObject({ username: 'Alice', device_id: 'ALICEPHONE' });
    expect(String(s.serverdict['password_hash'])).toMatch(/^\$2[aby]\$/);

    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user_id: '@alice:test.local', home_server: 'test.local', device_id: 'ALICEPHONE' });
    expect(res.body.access_token).toMatch(/^syt_/);
    expect(res.body.refresh_token).toBeUndefined();

    const user = await userRow(t, '@alice:test.local');
    expect(user).toMatchObject({ localpart: 'alice', admin: false, is_guest: false, deactivated: false });
    expect(user?.password_hash).toMatch(/^\$2[aby]\$/);
    expect(await t.server.ctx.services.accounts.checkPassword('@alice:test.local', 'correct horse 1')).toBe(true);
    const profile = await dbOf(t).selectFrom('profiles').selectAll().where('user_id', '=', '@alice:test.local').executeTakeFirstOrThrow();
    expect(profile.displayname).toBe('alice');
    const device = await dbOf(t).selectFrom('devices').selectAll().where('user_id', '=', '@alice:test.local').executeTakeFirstOrThrow();
    expect(device).toMatchObject({ device_id: 'ALICEPHONE', display_name: "Alice's phone" });

    const requester = await t.server.ctx.services.auth.authenticate(res.body.access_token as string, '127.0.0.1', 'test');
    expect(requester).toMatchObject({ userId: '@alice:test.local', deviceId: 'ALICEPHONE' });

    // The same completed session again (a client that lost the answer): the same user, logged in anew.
    const before = await userCount(t);
    const again = await stage(t, session, { type: 'm.login.dummy' });
    expect(again.status).toBe(200);
    expect(again.body.user_id).toBe('@alice:test.local');
    expect(again.body.access_token).not.toBe(res.body.access_token);
    expect(await userCount(t)).toBe(before);
  });

  it('registers in one round when the first request already completes the dummy stage (r0 too)', async () => {
    const res = await api(t, 'POST', '/_matrix/client/r0/register', {
      body: { username: 'carol', password: 'carolpass1', auth: { type: 'm.login.dummy' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@carol:test.local');
    expect(res.body.device_id).toMatch(/^[A-Z]{10}$/);
  });

  it('tells the client that a username is taken before any stage (400 M_USER_IN_USE)', async () => {
    const res = await api(t, 'POST', REG, { body: { username: 'alice', password: 'another pass 2' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_USER_IN_USE');
    expect(res.body.session).toBeUndefined();
  });

  it('refuses a username taken while the session was open, writing nothing', async () => {
    const { session } = await openSession(t, { username: 'dave', password: 'davepass1' });
    await createUser(t, 'dave');
    const tokensBefore = await dbOf(t).selectFrom('access_tokens').select('id').where('user_id', '=', '@dave:test.local').execute();
    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_USER_IN_USE');
    const tokensAfter = await dbOf(t).selectFrom('access_tokens').select('id').where('user_id', '=', '@dave:test.local').execute();
    expect(tokensAfter).toHaveLength(tokensBefore.length);
  });

  it.each([
    ['bad name', 'M_INVALID_USERNAME'],
    ['_underscore', 'M_INVALID_USERNAME'],
    ['12345', 'M_INVALID_USERNAME'],
    ['émile', 'M_INVALID_USERNAME'],
    ['x'.repeat(300), 'M_INVALID_USERNAME'],
  ])('rejects the username %j with %s', async (username, errcode) => {
    const res = await api(t, 'POST', REG, { body: { username, password: 'goodpass123' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe(errcode);
  });

  it('rejects a username that is not a string', async () => {
    const res = await api(t, 'POST', REG, { body: { username: 42, password: 'goodpass123' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_USERNAME');
  });

  it('applies the password policy before any stage', async () => {
    let res = await api(t, 'POST', REG, { body: { username: 'weak', password: 'short1' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_PASSWORD_TOO_SHORT');
    res = await api(t, 'POST', REG, { body: { username: 'weak', password: 'no digits here' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_PASSWORD_NO_DIGIT');
    res = await api(t, 'POST', REG, { body: { username: 'weak', password: 12345678 } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
    expect(await userRow(t, '@weak:test.local')).toBeUndefined();
  });

  it('needs a password (Synapse does): 400 M_MISSING_PARAM once auth is done, and no user', async () => {
    const { session } = await openSession(t, { username: 'nopass' });
    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_MISSING_PARAM');
    expect(await userRow(t, '@nopass:test.local')).toBeUndefined();
  });

  it('generates a numeric localpart when no username is given', async () => {
    const res = await api(t, 'POST', REG, { body: { password: 'numeric pass 1', auth: { type: 'm.login.dummy' } } });
    expect(res.status).toBe(200);
    const userId = res.body.user_id as string;
    expect(userId).toMatch(/^@\d+:test\.local$/);
    const profile = await dbOf(t).selectFrom('profiles').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
    expect(profile.displayname).toBe(userId.slice(1, userId.indexOf(':')));
    const user = await userRow(t, userId);
    expect(user?.is_guest).toBe(false);
  });

  it('inhibit_login: the account but no device and no token', async () => {
    const res = await api(t, 'POST', REG, {
      body: { username: 'quiet', password: 'quietpass1', inhibit_login: true, auth: { type: 'm.login.dummy' } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: '@quiet:test.local', home_server: 'test.local' });
    const devices = await dbOf(t).selectFrom('devices').select('device_id').where('user_id', '=', '@quiet:test.local').execute();
    expect(devices).toEqual([]);
    expect(await t.server.ctx.services.accounts.checkPassword('@quiet:test.local', 'quietpass1')).toBe(true);
  });

  it('refresh_token: true gives a refresh token and expires_in_ms; a non-boolean is 400', async () => {
    const res = await api(t, 'POST', REG, {
      body: { username: 'fresh', password: 'freshpass1', refresh_token: true, auth: { type: 'm.login.dummy' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.refresh_token).toMatch(/^syr_/);
    expect(res.body.expires_in_ms).toBe(5 * 60_000);
    const rows = await dbOf(t).selectFrom('refresh_tokens').select('id').where('user_id', '=', '@fresh:test.local').execute();
    expect(rows).toHaveLength(1);

    const bad = await api(t, 'POST', REG, { body: { username: 'fresh2', password: 'freshpass1', refresh_token: 'yes' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('registers guests with a numeric localpart (kind=guest), ignoring the other parameters', async () => {
    const res = await api(t, 'POST', `${REG}?kind=guest`, {
      body: { username: 'notused', password: 'ignored', initial_device_display_name: 'Guest browser' },
    });
    expect(res.status).toBe(200);
    const userId = res.body.user_id as string;
    expect(userId).toMatch(/^@\d+:test\.local$/);
    expect(typeof res.body.access_token).toBe('string');
    expect(res.body.home_server).toBe('test.local');
    const user = await userRow(t, userId);
    expect(user).toMatchObject({ is_guest: true, password_hash: null });
    const device = await dbOf(t).selectFrom('devices').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
    expect(device).toMatchObject({ device_id: res.body.device_id, display_name: 'Guest browser' });
    const requester = await t.server.ctx.services.auth.authenticate(res.body.access_token as string, '127.0.0.1', 'test');
    expect(requester.isGuest).toBe(true);
    expect(await userRow(t, '@notused:test.local')).toBeUndefined();
  });

  it('rejects an unknown kind with 400 M_UNRECOGNIZED', async () => {
    const res = await api(t, 'POST', `${REG}?kind=robot`, { body: {} });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('rejects a request that carries an access token', async () => {
    const res = await api(t, 'POST', REG, { token: 'syt_whatever', body: { username: 'tok', password: 'tokpass123' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_UNKNOWN');
  });

  it('rejects a body that is not a JSON object (M_BAD_JSON, as Synapse)', async () => {
    const res = await fetch(`${t.url}${REG}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_BAD_JSON');
  });

  it('does not offer the registration-token stage when tokens are not required', async () => {
    const { session } = await openSession(t, { username: 'erin', password: 'erinpass1' });
    const res = await stage(t, session, { type: 'm.login.registration_token', token: 'x' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNRECOGNIZED');
  });

  it('refuses a session continued on another endpoint', async () => {
    const { session } = await openSession(t, { username: 'frank', password: 'frankpass1' });
    const res = await api(t, 'POST', '/_matrix/client/r0/register', { body: { auth: { type: 'm.login.dummy', session } } });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });

  describe('GET /register/available', () => {
    it('is true for a free, valid name', async () => {
      const res = await api(t, 'GET', '/_matrix/client/v3/register/available?username=newbie');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ available: true });
      const r0 = await api(t, 'GET', '/_matrix/client/r0/register/available?username=newbie');
      expect(r0.body).toEqual({ available: true });
    });

    it('is 400 M_USER_IN_USE for a taken name', async () => {
      const res = await api(t, 'GET', '/_matrix/client/v3/register/available?username=alice');
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_USER_IN_USE');
    });

    it.each(['Bad!', '_hidden', '007', ''])('is 400 M_INVALID_USERNAME for %j', async (name) => {
      const res = await api(t, 'GET', `/_matrix/client/v3/register/available?username=${encodeURIComponent(name)}`);
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_USERNAME');
    });

    it('is 400 M_MISSING_PARAM without a username', async () => {
      const res = await api(t, 'GET', '/_matrix/client/v3/register/available');
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_MISSING_PARAM');
    });
  });
});

describe('registration disabled (the default)', () => {
  const t = useTestServer({ yaml: { rc_registration_token_validity: LOOSE } });

  it('POST /register is 403 M_FORBIDDEN "Registration has been disabled"', async () => {
    for (const path of [REG, '/_matrix/client/r0/register']) {
      const res = await api(t, 'POST', path, { body: { username: 'nobody', password: 'nobodypass1', auth: { type: 'm.login.dummy' } } });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ errcode: 'M_FORBIDDEN', error: 'Registration has been disabled' });
    }
    expect(await userRow(t, '@nobody:test.local')).toBeUndefined();
  });

  it('guests are 403 M_GUEST_ACCESS_FORBIDDEN without allow_guest_access', async () => {
    const res = await api(t, 'POST', `${REG}?kind=guest`, { body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    expect(await userCount(t)).toBe(0);
  });

  it('/register/available and the token validity check are 403 M_FORBIDDEN', async () => {
    const a = await api(t, 'GET', '/_matrix/client/v3/register/available?username=someone');
    expect(a.status).toBe(403);
    expect(a.body.errcode).toBe('M_FORBIDDEN');
    const v = await api(t, 'GET', `${VALIDITY}?token=abc`);
    expect(v.status).toBe(403);
    expect(v.body.errcode).toBe('M_FORBIDDEN');
  });
});

describe('registration tokens (registration_requires_token)', () => {
  const t = useTestServer({
    yaml: { enable_registration: true, registration_requires_token: true, rc_registration_token_validity: LOOSE },
  });

  it('offers the token stage ahead of the dummy stage, as Synapse does', async () => {
    const { body } = await openSession(t, { username: 'flowcheck', password: 'pw' });
    expect(body.flows).toEqual([{ stages: ['m.login.registration_token', 'm.login.dummy'] }]);
  });

  it('cannot skip the token stage', async () => {
    const { session } = await openSession(t, { username: 'skipper', password: 'pw' });
    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(401);
    expect(res.body.completed).toEqual(['m.login.dummy']);
    expect(await userRow(t, '@skipper:test.local')).toBeUndefined();
  });

  it('registers with a token: pending while the session is open, completed after, once per session', async () => {
    await addToken(t, 'twice', { usesAllowed: 2 });
    const { session } = await openSession(t, { username: 'kermit', password: 'monkey', device_id: 'frogfone' });
    let res = await stage(t, session, { type: 'm.login.registration_token', token: 'twice' });
    expect(res.status).toBe(401);
    expect(res.body.completed).toEqual(['m.login.registration_token']);
    expect(await tokenRow(t, 'twice')).toMatchObject({ pending: 1, completed: 0 });

    // Repeating the stage does not take a second use; another token is refused.
    res = await stage(t, session, { type: 'm.login.registration_token', token: 'twice' });
    expect(res.status).toBe(401);
    expect(await tokenRow(t, 'twice')).toMatchObject({ pending: 1, completed: 0 });
    await addToken(t, 'other');
    res = await stage(t, session, { type: 'm.login.registration_token', token: 'other' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
    expect(await tokenRow(t, 'other')).toMatchObject({ pending: 0, completed: 0 });

    res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user_id: '@kermit:test.local', device_id: 'frogfone' });
    expect(await tokenRow(t, 'twice')).toMatchObject({ pending: 0, completed: 1 });
    const held = await dbOf(t).selectFrom('registration_token_pending').selectAll().where('session_id', '=', session).execute();
    expect(held).toEqual([]);
  });

  it('reports stage errors in the 401 body: missing, not a string, unknown, expired', async () => {
    await addToken(t, 'expired', { expiryTime: Date.now() - 86_400_000 });
    const { session } = await openSession(t, { username: 'piggy', password: 'pw' });
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'M_MISSING_PARAM'],
      [{ token: 1234 }, 'M_INVALID_PARAM'],
      [{ token: 'no-such-token' }, 'M_UNAUTHORIZED'],
      [{ token: 'expired' }, 'M_UNAUTHORIZED'],
    ];
    for (const [extra, errcode] of cases) {
      const res = await stage(t, session, { type: 'm.login.registration_token', ...extra });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe(errcode);
      expect(res.body.completed).toBeUndefined();
      expect(res.body.flows).toEqual([{ stages: ['m.login.registration_token', 'm.login.dummy'] }]);
    }
    expect(await tokenRow(t, 'expired')).toMatchObject({ pending: 0, completed: 0 });
  });

  it('a token with uses_allowed 1 held by one session is refused to another, before and after it completes', async () => {
    await addToken(t, 'single', { usesAllowed: 1 });
    const s1 = await openSession(t, { username: 'bert', password: 'pw' });
    const s2 = await openSession(t, { username: 'ernie', password: 'pw' });
    let res = await stage(t, s1.session, { type: 'm.login.registration_token', token: 'single' });
    expect(res.body.completed).toEqual(['m.login.registration_token']);
    expect((await api(t, 'GET', `${VALIDITY}?token=single`)).body).toEqual({ valid: false });

    res = await stage(t, s2.session, { type: 'm.login.registration_token', token: 'single' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');

    res = await stage(t, s1.session, { type: 'm.login.dummy' });
    expect(res.status).toBe(200);
    expect(await tokenRow(t, 'single')).toMatchObject({ pending: 0, completed: 1 });

    res = await stage(t, s2.session, { type: 'm.login.registration_token', token: 'single' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await userRow(t, '@ernie:test.local')).toBeUndefined();
  });

  it('ten sessions racing for the last use: exactly one gets it and exactly one account is made', async () => {
    await addToken(t, 'last-one', { usesAllowed: 1 });
    const sessions = await Promise.all(Array.from({ length: 10 }, (_, i) => openSession(t, { username: `racer${i}`, password: 'pw' })));
    const staged = await Promise.all(sessions.map((s) => stage(t, s.session, { type: 'm.login.registration_token', token: 'last-one' })));
    const winners = staged.filter((r) => Array.isArray(r.body.completed) && (r.body.completed as string[]).includes('m.login.registration_token'));
    expect(winners).toHaveLength(1);
    for (const r of staged) {
      expect(r.status).toBe(401);
      if (!winners.includes(r)) expect(r.body.errcode).toBe('M_UNAUTHORIZED');
    }
    expect(await tokenRow(t, 'last-one')).toMatchObject({ pending: 1, completed: 0 });

    const finished = await Promise.all(sessions.map((s) => stage(t, s.session, { type: 'm.login.dummy' })));
    expect(finished.filter((r) => r.status === 200)).toHaveLength(1);
    expect(await tokenRow(t, 'last-one')).toMatchObject({ pending: 0, completed: 1 });
    const racers = await dbOf(t).selectFrom('users').select('user_id').where('localpart', 'like', 'racer%').execute();
    expect(racers).toHaveLength(1);
  });

  it('ten whole registrations racing on a token with uses_allowed 3: exactly three accounts', async () => {
    await addToken(t, 'three', { usesAllowed: 3 });
    const results = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const { session } = await openSession(t, { username: `trio${i}`, password: 'pw' });
        await stage(t, session, { type: 'm.login.registration_token', token: 'three' });
        return stage(t, session, { type: 'm.login.dummy' });
      }),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(await tokenRow(t, 'three')).toMatchObject({ pending: 0, completed: 3 });
    const trio = await dbOf(t).selectFrom('users').select('user_id').where('localpart', 'like', 'trio%').execute();
    expect(trio).toHaveLength(3);
  });

  it('a session that expires without registering gives its use back', async () => {
    await addToken(t, 'comeback', { usesAllowed: 1 });
    const { session } = await openSession(t, { username: 'gonzo', password: 'pw' });
    await stage(t, session, { type: 'm.login.registration_token', token: 'comeback' });
    expect(await tokenRow(t, 'comeback')).toMatchObject({ pending: 1 });
    expect((await api(t, 'GET', `${VALIDITY}?token=comeback`)).body).toEqual({ valid: false });

    // Age the session past the UIA lifetime (two days), then sweep.
    await dbOf(t)
      .updateTable('ui_auth_sessions')
      .set({ creation_time: Date.now() - 3 * 86_400_000 })
      .where('session_id', '=', session)
      .execute();
    const released = await t.server.ctx.services.registration.releaseAbandonedTokenUses();
    expect(released).toBe(1);
    expect(await tokenRow(t, 'comeback')).toMatchObject({ pending: 0, completed: 0 });
    expect((await api(t, 'GET', `${VALIDITY}?token=comeback`)).body).toEqual({ valid: true });

    // The expired session itself is over.
    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_UNKNOWN');

    // Another session can now use the token.
    const next = await openSession(t, { username: 'rizzo', password: 'pw' });
    await stage(t, next.session, { type: 'm.login.registration_token', token: 'comeback' });
    expect((await stage(t, next.session, { type: 'm.login.dummy' })).status).toBe(200);
    expect(await tokenRow(t, 'comeback')).toMatchObject({ pending: 0, completed: 1 });
  });

  it('a deleted session gives its use back too; a live one keeps it', async () => {
    await addToken(t, 'kept');
    const a = await openSession(t, { username: 'animal', password: 'pw' });
    const b = await openSession(t, { username: 'beaker', password: 'pw' });
    await stage(t, a.session, { type: 'm.login.registration_token', token: 'kept' });
    await stage(t, b.session, { type: 'm.login.registration_token', token: 'kept' });
    expect(await tokenRow(t, 'kept')).toMatchObject({ pending: 2 });
    await dbOf(t).deleteFrom('ui_auth_sessions').where('session_id', '=', a.session).execute();
    await t.server.ctx.services.registration.releaseAbandonedTokenUses();
    expect(await tokenRow(t, 'kept')).toMatchObject({ pending: 1, completed: 0 });
    expect((await stage(t, b.session, { type: 'm.login.dummy' })).status).toBe(200);
    expect(await tokenRow(t, 'kept')).toMatchObject({ pending: 0, completed: 1 });
  });

  it('a token deleted mid-session stops the registration, writing nothing', async () => {
    await addToken(t, 'revoked');
    const { session } = await openSession(t, { username: 'statler', password: 'pw' });
    await stage(t, session, { type: 'm.login.registration_token', token: 'revoked' });
    await dbOf(t).deleteFrom('registration_tokens').where('token', '=', 'revoked').execute();
    const res = await stage(t, session, { type: 'm.login.dummy' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');
    expect(await userRow(t, '@statler:test.local')).toBeUndefined();
    const devices = await dbOf(t).selectFrom('devices').select('device_id').where('user_id', '=', '@statler:test.local').execute();
    expect(devices).toEqual([]);
  });

  describe('GET /v1/register/m.login.registration_token/validity', () => {
    it('is true for a usable token and false for unknown, expired and used-up ones', async () => {
      await addToken(t, 'v-ok', { usesAllowed: 5, expiryTime: Date.now() + 86_400_000 });
      await addToken(t, 'v-expired', { expiryTime: Date.now() - 1000 });
      await addToken(t, 'v-used', { usesAllowed: 1 });
      await dbOf(t).updateTable('registration_tokens').set({ completed: 1 }).where('token', '=', 'v-used').execute();
      await addToken(t, 'v-zero', { usesAllowed: 0 });
      const valid = async (token: string) => (await api(t, 'GET', `${VALIDITY}?token=${encodeURIComponent(token)}`)).body;
      expect(await valid('v-ok')).toEqual({ valid: true });
      expect(await valid('v-unknown')).toEqual({ valid: false });
      expect(await valid('v-expired')).toEqual({ valid: false });
      expect(await valid('v-used')).toEqual({ valid: false });
      expect(await valid('v-zero')).toEqual({ valid: false });
    });

    it('is 400 M_MISSING_PARAM without a token', async () => {
      const res = await api(t, 'GET', VALIDITY);
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_MISSING_PARAM');
    });
  });
});

describe('rate limits', () => {
  const t = useTestServer({
    yaml: {
      enable_registration: true,
      enable_registration_without_verification: true,
      allow_guest_access: true,
      rc_registration: { per_second: 0.001, burst_count: 2 },
    },
  });

  it('rc_registration counts registrations per client address; over it every /register call is 429', async () => {
    const a = await api(t, 'POST', REG, { body: { username: 'first', password: 'pw', auth: { type: 'm.login.dummy' } } });
    expect(a.status).toBe(200);
    const b = await api(t, 'POST', `${REG}?kind=guest`, { body: {} });
    expect(b.status).toBe(200);
    const c = await api(t, 'POST', REG, { body: { username: 'third', password: 'pw', auth: { type: 'm.login.dummy' } } });
    expect(c.status).toBe(429);
    expect(c.body.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(c.body.retry_after_ms).toBeGreaterThan(0);
    expect(await userRow(t, '@third:test.local')).toBeUndefined();
    // Another address (nginx's X-Forwarded-For, x_forwarded: true) has its own budget.
    const other = await api(t, 'POST', REG, {
      headers: { 'x-forwarded-for': '203.0.113.7' },
      body: { username: 'elsewhere', password: 'pw', auth: { type: 'm.login.dummy' } },
    });
    expect(other.status).toBe(200);
  });

  it('the validity check is limited by rc_registration_token_validity (Synapse default: burst 5)', async () => {
    const headers = { 'x-forwarded-for': '198.51.100.9' };
    for (let i = 0; i < 5; i++) {
      const ok = await api(t, 'GET', `${VALIDITY}?token=t${i}`, { headers });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ valid: false });
    }
    const limited = await api(t, 'GET', `${VALIDITY}?token=t5`, { headers });
    expect(limited.status).toBe(429);
    expect(limited.body.errcode).toBe('M_LIMIT_EXCEEDED');
  });
});

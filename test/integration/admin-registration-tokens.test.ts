/**
 * /_synapse/admin/v1/registration_tokens against the real server: Synapse's
 * shapes, its validation errors, and what lands in the database.
 */
import { describe, expect, it } from 'vitest';
import { type AdminEndpoint, itRequiresAdmin } from '../helpers/admin.js';
import { useServerWith } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const BASE = '/_synapse/admin/v1/registration_tokens';

const { t, admin, alice } = useServerWith({ admins: ['admin'] }, 'admin', 'alice');

const db = () => t.server.ctx.database.db;
const dbRow = (token: string) => db().selectFrom('registration_tokens').selectAll().where('token', '=', token).executeTakeFirst();

describe('access', () => {
  const endpoints: AdminEndpoint[] = [
    ['GET', BASE],
    ['GET', `${BASE}/abcd`],
    ['POST', `${BASE}/new`, {}],
    ['PUT', `${BASE}/abcd`, {}],
    ['DELETE', `${BASE}/abcd`],
  ];

  itRequiresAdmin(t, alice, endpoints);

  it('an unknown token is 401 M_UNKNOWN_TOKEN', async () => {
    const res = await api(t, 'GET', BASE, { token: 'syt_nope' });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });
});

describe('create', () => {
  it('creates a random 16-character token with the defaults', async () => {
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: {} });
    expect(res.status).toBe(200);
    const token = res.body.token as string;
    expect(token).toMatch(/^[A-Za-z0-9._~-]{16}$/);
    expect(res.body).toEqual({ token, uses_allowed: null, pending: 0, completed: 0, expiry_time: null });
    expect(await dbRow(token)).toEqual({ token, uses_allowed: null, pending: 0, completed: 0, expiry_time: null });
  });

  it('honours length', async () => {
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { length: 5 } });
    expect(res.status).toBe(200);
    expect(res.body.token).toMatch(/^[A-Za-z0-9._~-]{5}$/);
    const long = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { length: 64 } });
    expect(long.body.token).toHaveLength(64);
  });

  it('random tokens differ', async () => {
    const a = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: {} });
    const b = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: {} });
    expect(a.body.token).not.toBe(b.body.token);
  });

  it('creates a chosen token with uses and expiry', async () => {
    const expiry = Date.now() + 86_400_000;
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'defg', uses_allowed: 1, expiry_time: expiry } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ token: 'defg', uses_allowed: 1, pending: 0, completed: 0, expiry_time: expiry });
    expect(await dbRow('defg')).toMatchObject({ uses_allowed: 1, expiry_time: expiry });
  });

  it('accepts every allowed character and uses_allowed 0', async () => {
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'Az09._~-', uses_allowed: 0 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ token: 'Az09._~-', uses_allowed: 0 });
    const got = await api(t, 'GET', `${BASE}/${encodeURIComponent('Az09._~-')}`, { token: admin.accessToken });
    expect(got.body.token).toBe('Az09._~-');
  });

  it('refuses an existing token with 400 M_INVALID_PARAM', async () => {
    await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'dup1' } });
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'dup1', uses_allowed: 5 } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: 'Token already exists: dup1' });
    expect(await dbRow('dup1')).toMatchObject({ uses_allowed: null });
  });

  it('is race-safe: of concurrent creations of one token, exactly one wins', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'racy', uses_allowed: i } })));
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(400);
      expect(r.body.errcode).toBe('M_INVALID_PARAM');
    }
    expect(await dbRow('racy')).toMatchObject({ uses_allowed: ok[0]!.body.uses_allowed });
  });

  const bad: [string, unknown, string][] = [
    ['token not a string', { token: 123 }, 'token must be a string'],
    ['empty token', { token: '' }, 'token must not be empty and must not be longer than 64 characters'],
    ['65-character token', { token: 'a'.repeat(65) }, 'token must not be empty and must not be longer than 64 characters'],
    ['bad characters', { token: 'abc/def' }, 'token must consist only of characters matched by the regex [A-Za-z0-9._~-]'],
    ['space', { token: 'abc def' }, 'token must consist only of characters matched by the regex [A-Za-z0-9._~-]'],
    ['length 0', { length: 0 }, 'length must be greater than zero and not greater than 64'],
    ['length 65', { length: 65 }, 'length must be greater than zero and not greater than 64'],
    ['length not an integer', { length: 1.5 }, 'length must be an integer'],
    ['length a string', { length: '8' }, 'length must be an integer'],
    ['negative uses_allowed', { uses_allowed: -1 }, 'uses_allowed must be a non-negative integer or null'],
    ['fractional uses_allowed', { uses_allowed: 1.5 }, 'uses_allowed must be a non-negative integer or null'],
    ['string uses_allowed', { uses_allowed: '3' }, 'uses_allowed must be a non-negative integer or null'],
    ['huge uses_allowed', { uses_allowed: 2 ** 40 }, 'uses_allowed must be a non-negative integer or null'],
    ['string expiry_time', { expiry_time: 'tomorrow' }, 'expiry_time must be an integer or null'],
    ['fractional expiry_time', { expiry_time: Date.now() + 1000.5 }, 'expiry_time must be an integer or null'],
    ['past expiry_time', { expiry_time: Date.now() - 1000 }, 'expiry_time must not be in the past'],
  ];
  it.each(bad)('%s is 400 M_INVALID_PARAM', async (_name, body, message) => {
    const before = await db()
      .selectFrom('registration_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const res = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: message });
    const after = await db()
      .selectFrom('registration_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
  });

  it('a body that is not an object is 400 M_BAD_JSON; no body is M_NOT_JSON', async () => {
    const arr = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: [1] });
    expect(arr.status).toBe(400);
    expect(arr.body.errcode).toBe('M_BAD_JSON');
    const none = await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken });
    expect(none.status).toBe(400);
    expect(none.body.errcode).toBe('M_NOT_JSON');
  });
});

describe('read, list, update, delete', () => {
  it('GET one token; an unknown one is 404 M_NOT_FOUND', async () => {
    await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'abcd', uses_allowed: 3 } });
    const res = await api(t, 'GET', `${BASE}/abcd`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ token: 'abcd', uses_allowed: 3, pending: 0, completed: 0, expiry_time: null });
    const missing = await api(t, 'GET', `${BASE}/1234`, { token: admin.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'No such registration token: 1234' });
  });

  it('GET /new is the token called "new", not the create endpoint', async () => {
    const res = await api(t, 'GET', `${BASE}/new`, { token: admin.accessToken });
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('No such registration token: new');
  });

  it('lists all, valid and invalid tokens', async () => {
    const now = Date.now();
    for (const token of ['v-unlimited', 'v-room', 'i-used-up', 'i-expired', 'i-zero', 'i-pending']) {
      await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token } });
    }
    // Shape the counters and expiry directly, as registrations and time would.
    await db().updateTable('registration_tokens').set({ uses_allowed: 3, completed: 1, pending: 1 }).where('token', '=', 'v-room').execute();
    await db().updateTable('registration_tokens').set({ uses_allowed: 2, completed: 2 }).where('token', '=', 'i-used-up').execute();
    await db()
      .updateTable('registration_tokens')
      .set({ expiry_time: now - 1000 })
      .where('token', '=', 'i-expired')
      .execute();
    await db().updateTable('registration_tokens').set({ uses_allowed: 0 }).where('token', '=', 'i-zero').execute();
    await db().updateTable('registration_tokens').set({ uses_allowed: 1, pending: 1 }).where('token', '=', 'i-pending').execute();

    const all = await api(t, 'GET', BASE, { token: admin.accessToken });
    expect(all.status).toBe(200);
    const allList = all.body.registration_tokens as { token: string }[];
    const names = allList.map((x) => x.token);
    for (const n of ['v-unlimited', 'v-room', 'i-used-up', 'i-expired', 'i-zero', 'i-pending']) expect(names).toContain(n);
    expect(allList.find((x) => x.token === 'v-room')).toEqual({ token: 'v-room', uses_allowed: 3, pending: 1, completed: 1, expiry_time: null });

    const valid = ((await api(t, 'GET', `${BASE}?valid=true`, { token: admin.accessToken })).body.registration_tokens as { token: string }[]).map((x) => x.token);
    const invalid = ((await api(t, 'GET', `${BASE}?valid=false`, { token: admin.accessToken })).body.registration_tokens as { token: string }[]).map((x) => x.token);
    expect(valid).toEqual(expect.arrayContaining(['v-unlimited', 'v-room']));
    expect(invalid).toEqual(expect.arrayContaining(['i-used-up', 'i-expired', 'i-zero', 'i-pending']));
    for (const n of valid) expect(invalid).not.toContain(n);
    expect(valid.length + invalid.length).toBe(names.length);
  });

  it('valid must be true or false', async () => {
    const res = await api(t, 'GET', `${BASE}?valid=yes`, { token: admin.accessToken });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: "Boolean query parameter 'valid' must be one of ['true', 'false']" });
  });

  it('PUT updates the given fields only, and null clears them', async () => {
    await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'upd', uses_allowed: 1 } });
    const expiry = 4781243146000;
    const r1 = await api(t, 'PUT', `${BASE}/upd`, { token: admin.accessToken, body: { expiry_time: expiry } });
    expect(r1.status).toBe(200);
    expect(r1.body).toEqual({ token: 'upd', uses_allowed: 1, pending: 0, completed: 0, expiry_time: expiry });
    const r2 = await api(t, 'PUT', `${BASE}/upd`, { token: admin.accessToken, body: { uses_allowed: 7 } });
    expect(r2.body).toEqual({ token: 'upd', uses_allowed: 7, pending: 0, completed: 0, expiry_time: expiry });
    const r3 = await api(t, 'PUT', `${BASE}/upd`, { token: admin.accessToken, body: { uses_allowed: null, expiry_time: null } });
    expect(r3.body).toEqual({ token: 'upd', uses_allowed: null, pending: 0, completed: 0, expiry_time: null });
    expect(await dbRow('upd')).toMatchObject({ uses_allowed: null, expiry_time: null });
    const r4 = await api(t, 'PUT', `${BASE}/upd`, { token: admin.accessToken, body: {} });
    expect(r4.status).toBe(200);
    expect(r4.body).toEqual(r3.body);
  });

  it('PUT validates like create and 404s an unknown token', async () => {
    await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'upd2', uses_allowed: 2 } });
    const cases: [unknown, string][] = [
      [{ uses_allowed: -5 }, 'uses_allowed must be a non-negative integer or null'],
      [{ uses_allowed: 'x' }, 'uses_allowed must be a non-negative integer or null'],
      [{ expiry_time: 'x' }, 'expiry_time must be an integer or null'],
      [{ expiry_time: 1000 }, 'expiry_time must not be in the past'],
    ];
    for (const [body, message] of cases) {
      const res = await api(t, 'PUT', `${BASE}/upd2`, { token: admin.accessToken, body });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: message });
    }
    expect(await dbRow('upd2')).toMatchObject({ uses_allowed: 2, expiry_time: null });
    const missing = await api(t, 'PUT', `${BASE}/nope`, { token: admin.accessToken, body: { uses_allowed: 1 } });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'No such registration token: nope' });
    expect(await dbRow('nope')).toBeUndefined();
  });

  it('DELETE removes the token; deleting it again is 404', async () => {
    await api(t, 'POST', `${BASE}/new`, { token: admin.accessToken, body: { token: 'wxyz' } });
    const res = await api(t, 'DELETE', `${BASE}/wxyz`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(await dbRow('wxyz')).toBeUndefined();
    const again = await api(t, 'DELETE', `${BASE}/wxyz`, { token: admin.accessToken });
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'No such registration token: wxyz' });
    const get = await api(t, 'GET', `${BASE}/wxyz`, { token: admin.accessToken });
    expect(get.status).toBe(404);
  });
});

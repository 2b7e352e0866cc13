/**
 * The user admin API (v2/v3 list, query, create or modify) against the real
 * server: Synapse's shapes, filters and pagination, validation errors, and
 * the effect of each change on the database and on the user's sessions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminEndpoint, itRequiresAdmin, tokenWorks } from '../helpers/admin.js';
import { useServerWith } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const { t, admin, alice } = useServerWith({ admins: ['admin'] }, 'admin', 'alice');

const db = () => t.server.ctx.database.db;
const u = (userId: string) => `/_synapse/admin/v2/users/${encodeURIComponent(userId)}`;
const id = (localpart: string) => `@${localpart}:test.local`;
const userRow = (userId: string) => db().selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
const profileRow = (userId: string) => db().selectFrom('profiles').selectAll().where('user_id', '=', userId).executeTakeFirst();

describe('access', () => {
  const endpoints: AdminEndpoint[] = [
    ['GET', '/_synapse/admin/v2/users'],
    ['GET', '/_synapse/admin/v3/users'],
    ['GET', u('@alice:test.local')],
    ['PUT', u('@someone:test.local'), { password: 'x' }],
  ];
  itRequiresAdmin(t, alice, endpoints, async () => expect(await userRow(id('someone'))).toBeUndefined());
  it('the access_token query parameter works too', async () => {
    const res = await api(t, 'GET', `/_synapse/admin/v2/users?access_token=${encodeURIComponent(admin.accessToken)}`);
    expect(res.status).toBe(200);
  });
});

describe('GET /_synapse/admin/v2/users/<user_id>', () => {
  it("returns Synapse's fields", async () => {
    const before = Math.floor(Date.now() / 1000);
    const bob = await createUser(t, 'bob');
    const res = await api(t, 'GET', u(bob.userId), { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: '@bob:test.local',
      displayname: 'bob',
      avatar_url: null,
      threepids: [],
      external_ids: [],
      is_guest: false,
      admin: false,
      deactivated: false,
      erased: false,
      shadow_banned: false,
      appservice_id: null,
      consent_server_notice_sent: null,
      consent_version: null,
      consent_ts: null,
      user_type: null,
      locked: false,
      suspended: false,
    });
    // Seconds, as Synapse stores and returns it here (the list reports milliseconds).
    const creation = res.body.creation_ts as number;
    expect(creation).toBeGreaterThanOrEqual(before - 1);
    expect(creation).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect('last_seen_ts' in res.body).toBe(true);
  });

  it('reports last_seen_ts once the user has made a request', async () => {
    const carol = await createUser(t, 'carol');
    expect((await api(t, 'GET', u(carol.userId), { token: admin.accessToken })).body.last_seen_ts).toBeNull();
    const start = Date.now();
    await tokenWorks(t, carol);
    let seen: unknown = null;
    for (let i = 0; i < 50 && seen === null; i++) {
      seen = (await api(t, 'GET', u(carol.userId), { token: admin.accessToken })).body.last_seen_ts;
      if (seen === null) await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen).toBeGreaterThanOrEqual(start - 1000);
  });

  it('unknown user 404, remote user 400, malformed id 400 M_INVALID_PARAM', async () => {
    const missing = await api(t, 'GET', u('@ghost:test.local'), { token: admin.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'User not found' });
    const remote = await api(t, 'GET', u('@bob:elsewhere.org'), { token: admin.accessToken });
    expect(remote.status).toBe(400);
    expect(remote.body.error).toBe('Can only look up local users');
    const bad = await api(t, 'GET', u('bob'), { token: admin.accessToken });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const noDomain = await api(t, 'GET', u('@bob'), { token: admin.accessToken });
    expect(noDomain.status).toBe(400);
    expect(noDomain.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('accepts the user id unencoded in the path', async () => {
    const res = await api(t, 'GET', '/_synapse/admin/v2/users/@alice:test.local', { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.name).toBe('@alice:test.local');
  });
});

describe('PUT /_synapse/admin/v2/users/<user_id>: create', () => {
  it('creates a user with 201 and the given fields', async () => {
    const res = await api(t, 'PUT', u(id('dave')), {
      token: admin.accessToken,
      body: { password: 'dave-pass-1', displayname: 'Dave D', avatar_url: 'mxc://test.local/abc', admin: true, user_type: 'bot' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: '@dave:test.local', displayname: 'Dave D', avatar_url: 'mxc://test.local/abc', admin: true, user_type: 'bot', deactivated: false });
    expect(await t.server.ctx.services.accounts.checkPassword(id('dave'), 'dave-pass-1')).toBe(true);
    expect(await userRow(id('dave'))).toMatchObject({ localpart: 'dave', admin: true, user_type: 'bot' });
    expect(await profileRow(id('dave'))).toMatchObject({ displayname: 'Dave D', avatar_url: 'mxc://test.local/abc' });
  });

  it('defaults: display name is the localpart, not admin, no password', async () => {
    const res = await api(t, 'PUT', u(id('erin')), { token: admin.accessToken, body: {} });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: id('erin'), displayname: 'erin', admin: false, user_type: null });
    expect((await userRow(id('erin')))?.password_hash).toBeNull();
  });

  it('a second PUT modifies (200)', async () => {
    const res = await api(t, 'PUT', u(id('erin')), { token: admin.accessToken, body: { displayname: 'Erin' } });
    expect(res.status).toBe(200);
    expect(res.body.displayname).toBe('Erin');
  });

  it('concurrent creations of one user: exactly one 201, the rest modify', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => api(t, 'PUT', u(id('racer')), { token: admin.accessToken, body: { displayname: `R${i}` } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    const n = await db()
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', id('racer'))
      .executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(1);
  });

  it('refuses a remote user, a bad localpart and an unknown user type', async () => {
    const remote = await api(t, 'PUT', u('@x:elsewhere.org'), { token: admin.accessToken, body: {} });
    expect(remote.status).toBe(400);
    expect(remote.body.error).toBe('This endpoint can only be used with local users');
    const upper = await api(t, 'PUT', u('@Upper:test.local'), { token: admin.accessToken, body: {} });
    expect(upper.status).toBe(400);
    expect(upper.body.errcode).toBe('M_INVALID_USERNAME');
    const type = await api(t, 'PUT', u(id('typed')), { token: admin.accessToken, body: { user_type: 'wizard' } });
    expect(type.status).toBe(400);
    expect(type.body.error).toBe('Invalid user type');
    expect(await userRow(id('typed'))).toBeUndefined();
    expect(await userRow('@Upper:test.local')).toBeUndefined();
  });

  it('validates the body', async () => {
    const cases: [unknown, number, string, string?][] = [
      [{ admin: 'yes' }, 400, 'M_BAD_JSON', "Param 'admin' must be a boolean, if given"],
      [{ password: 12 }, 400, 'M_UNKNOWN', 'Invalid password'],
      [{ password: 'x'.repeat(513) }, 400, 'M_UNKNOWN', 'Invalid password'],
      [{ logout_devices: 'no' }, 400, 'M_UNKNOWN', "'logout_devices' parameter is not of type boolean"],
      [{ deactivated: null }, 400, 'M_UNKNOWN', "'deactivated' parameter is not of type boolean"],
      [{ locked: 1 }, 400, 'M_UNKNOWN', "'locked' parameter is not of type boolean"],
      [{ deactivated: true, locked: true }, 400, 'M_UNKNOWN', "An user can't be deactivated and locked"],
      [{ displayname: 5 }, 400, 'M_INVALID_PARAM', "'displayname' must be a string"],
      [{ displayname: 'x'.repeat(257) }, 400, 'M_UNKNOWN', 'Displayname is too long (max 256)'],
      [{ avatar_url: null }, 400, 'M_INVALID_PARAM', "'avatar_url' must be a string"],
      [{ threepids: [{ medium: 'email' }] }, 400, 'M_MISSING_PARAM', "Missing params: ['address']"],
      [{ threepids: [{ medium: 'email', address: 'a@b.c' }] }, 400, 'M_INVALID_PARAM'],
      [{ external_ids: [{ auth_provider: 'oidc' }] }, 400, 'M_MISSING_PARAM', "Missing params: ['external_id']"],
      [[1, 2], 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode, error] of cases) {
      const res = await api(t, 'PUT', u(id('invalid')), { token: admin.accessToken, body });
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.errcode, JSON.stringify(body)).toBe(errcode);
      if (error) expect(res.body.error).toBe(error);
    }
    expect(await userRow(id('invalid'))).toBeUndefined();
  });

  it('empty threepids and external_ids are accepted', async () => {
    const res = await api(t, 'PUT', u(id('frank')), { token: admin.accessToken, body: { threepids: [], external_ids: [] } });
    expect(res.status).toBe(201);
  });
});

describe('PUT /_synapse/admin/v2/users/<user_id>: modify', () => {
  it('changes and clears the display name and avatar', async () => {
    const g = await createUser(t, 'gina');
    let res = await api(t, 'PUT', u(g.userId), { token: admin.accessToken, body: { displayname: 'Gina', avatar_url: 'mxc://x/y' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ displayname: 'Gina', avatar_url: 'mxc://x/y' });
    res = await api(t, 'PUT', u(g.userId), { token: admin.accessToken, body: { displayname: '', avatar_url: '' } });
    expect(res.body).toMatchObject({ displayname: null, avatar_url: null });
    expect(await profileRow(g.userId)).toMatchObject({ displayname: null, avatar_url: null });
  });

  it('making a user admin applies to their next request', async () => {
    const h = await createUser(t, 'hank');
    // The first request caches the token as a non-admin's.
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: h.accessToken })).status).toBe(403);
    const res = await api(t, 'PUT', u(h.userId), { token: admin.accessToken, body: { admin: true } });
    expect(res.body.admin).toBe(true);
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: h.accessToken })).status).toBe(200);
    await api(t, 'PUT', u(h.userId), { token: admin.accessToken, body: { admin: false } });
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: h.accessToken })).status).toBe(403);
  });

  it('an admin may not demote themselves', async () => {
    const res = await api(t, 'PUT', u(admin.userId), { token: admin.accessToken, body: { admin: false, displayname: 'Changed' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('You may not demote yourself.');
    expect(await userRow(admin.userId)).toMatchObject({ admin: true });
    expect((await profileRow(admin.userId))?.displayname).toBe('admin');
  });

  it('a new password logs the user out by default', async () => {
    const i = await createUser(t, 'ivan');
    const res = await api(t, 'PUT', u(i.userId), { token: admin.accessToken, body: { password: 'ivan-new-pass' } });
    expect(res.status).toBe(200);
    const accounts = t.server.ctx.services.accounts;
    expect(await accounts.checkPassword(i.userId, 'ivan-new-pass')).toBe(true);
    expect(await accounts.checkPassword(i.userId, i.password)).toBe(false);
    expect(await tokenWorks(t, i)).toBe(false);
    const devices = await db().selectFrom('devices').select('device_id').where('user_id', '=', i.userId).execute();
    expect(devices).toEqual([]);
  });

  it('logout_devices: false keeps the sessions', async () => {
    const j = await createUser(t, 'judy');
    expect(await tokenWorks(t, j)).toBe(true);
    await api(t, 'PUT', u(j.userId), { token: admin.accessToken, body: { password: 'judy-new-pass', logout_devices: false } });
    expect(await t.server.ctx.services.accounts.checkPassword(j.userId, 'judy-new-pass')).toBe(true);
    expect(await tokenWorks(t, j)).toBe(true);
  });

  it('deactivated: true deactivates; false reactivates', async () => {
    const k = await createUser(t, 'kate');
    expect(await tokenWorks(t, k)).toBe(true);
    let res = await api(t, 'PUT', u(k.userId), { token: admin.accessToken, body: { deactivated: true } });
    expect(res.status).toBe(200);
    expect(res.body.deactivated).toBe(true);
    expect(await tokenWorks(t, k)).toBe(false);
    expect(await userRow(k.userId)).toMatchObject({ deactivated: true, password_hash: null });
    expect(await t.server.ctx.services.accounts.checkPassword(k.userId, k.password)).toBe(false);

    // Synapse no longer insists on a password to reactivate; one given here lets the user in again.
    res = await api(t, 'PUT', u(k.userId), { token: admin.accessToken, body: { deactivated: false, password: 'kate-again' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ deactivated: false, erased: false });
    expect(await t.server.ctx.services.accounts.checkPassword(k.userId, 'kate-again')).toBe(true);
  });

  it('locks and unlocks, and sets or clears the user type', async () => {
    const l = await createUser(t, 'liam');
    let res = await api(t, 'PUT', u(l.userId), { token: admin.accessToken, body: { locked: true, user_type: 'support' } });
    expect(res.body).toMatchObject({ locked: true, user_type: 'support' });
    expect(await userRow(l.userId)).toMatchObject({ locked: true, user_type: 'support' });
    res = await api(t, 'PUT', u(l.userId), { token: admin.accessToken, body: { locked: false, user_type: null } });
    expect(res.body).toMatchObject({ locked: false, user_type: null });
    // user_type left out: unchanged.
    await api(t, 'PUT', u(l.userId), { token: admin.accessToken, body: { user_type: 'bot' } });
    res = await api(t, 'PUT', u(l.userId), { token: admin.accessToken, body: { displayname: 'Liam' } });
    expect(res.body.user_type).toBe('bot');
  });

  it('one failing field changes nothing', async () => {
    const m = await createUser(t, 'mona');
    const res = await api(t, 'PUT', u(m.userId), { token: admin.accessToken, body: { displayname: 'Mona', user_type: 'nope' } });
    expect(res.status).toBe(400);
    expect((await profileRow(m.userId))?.displayname).toBe('mona');
  });
});

describe('GET /_synapse/admin/v2/users and v3', () => {
  let s: TestServer;
  let root: TestUser;
  const list = async (query: string, version = 'v2') => {
    const res = await api(s, 'GET', `/_synapse/admin/${version}/users${query}`, { token: root.accessToken });
    return res;
  };
  const names = (res: { body: Record<string, unknown> }) => (res.body.users as { name: string }[]).map((x) => x.name);

  beforeAll(async () => {
    s = await startTestServer();
    root = await createUser(s, 'root', { admin: true });
    const accounts = s.server.ctx.services.accounts;
    const sdb = s.server.ctx.database.db;
    for (const lp of ['user01', 'user02', 'user03', 'user04', 'user05']) await accounts.createUser(sdb, { localpart: lp });
    await accounts.createUser(sdb, { localpart: '12345', isGuest: true });
    await accounts.createUser(sdb, { localpart: 'robot', userType: 'bot', displayname: 'Beep Boop' });
    await accounts.createUser(sdb, { localpart: 'zed', displayname: 'Zorro the Admin', admin: true });
    await accounts.createUser(sdb, { localpart: 'gone' });
    await accounts.deactivate(sdb, '@gone:test.local', { erase: false });
    await accounts.createUser(sdb, { localpart: 'locked1' });
    await sdb.updateTable('users').set({ locked: true }).where('user_id', '=', '@locked1:test.local').execute();
    await sdb.updateTable('profiles').set({ avatar_url: 'mxc://a/b' }).where('user_id', '=', '@user03:test.local').execute();
  });
  afterAll(async () => {
    await s?.close();
  });

  it("lists users by name with Synapse's fields", async () => {
    const res = await list('');
    expect(res.status).toBe(200);
    // Deactivated and locked users are left out by default; guests are in.
    expect(names(res)).toEqual([
      '@12345:test.local',
      '@robot:test.local',
      '@root:test.local',
      '@user01:test.local',
      '@user02:test.local',
      '@user03:test.local',
      '@user04:test.local',
      '@user05:test.local',
      '@zed:test.local',
    ]);
    expect(res.body.total).toBe(9);
    expect('next_token' in res.body).toBe(false);
    const user03 = (res.body.users as Record<string, unknown>[]).find((x) => x.name === '@user03:test.local')!;
    expect(Object.keys(user03).sort()).toEqual(
      ['admin', 'avatar_url', 'creation_ts', 'deactivated', 'displayname', 'erased', 'is_guest', 'last_seen_ts', 'locked', 'name', 'shadow_banned', 'user_type'].sort(),
    );
    expect(user03).toMatchObject({
      is_guest: false,
      admin: false,
      deactivated: false,
      displayname: 'user03',
      avatar_url: 'mxc://a/b',
      user_type: null,
      locked: false,
      erased: false,
    });
    // Milliseconds in the list.
    expect(user03.creation_ts as number).toBeGreaterThan(Date.now() - 600_000);
    expect(user03.creation_ts as number).toBeLessThanOrEqual(Date.now());
  });

  it('paginates with from/limit, next_token and total', async () => {
    const seen: string[] = [];
    let from: string | undefined = '0';
    let pages = 0;
    while (from !== undefined) {
      const res = await list(`?limit=4&from=${from}`);
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(9);
      seen.push(...names(res));
      from = res.body.next_token as string | undefined;
      if (from !== undefined) expect(typeof from).toBe('string');
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(names(await list('')));
    const first = await list('?limit=4');
    expect(first.body.next_token).toBe('4');
    const last = await list('?limit=4&from=8');
    expect(names(last)).toEqual(['@zed:test.local']);
    expect('next_token' in last.body).toBe(false);
  });

  it('dir=b reverses; order_by sorts with name as the tie-breaker', async () => {
    expect(names(await list('?dir=b'))).toEqual(names(await list('')).reverse());
    const byAdmin = names(await list('?order_by=admin&dir=b'));
    expect(byAdmin.slice(0, 2)).toEqual(['@root:test.local', '@zed:test.local']);
    const byDisplay = names(await list('?order_by=displayname'));
    expect(byDisplay[0]).toBe('@12345:test.local');
    expect(byDisplay.indexOf('@robot:test.local')).toBeLessThan(byDisplay.indexOf('@user01:test.local'));
    const byAvatar = names(await list('?order_by=avatar_url'));
    expect(byAvatar[0]).toBe('@user03:test.local');
    const byType = names(await list('?order_by=user_type'));
    expect(byType[0]).toBe('@robot:test.local');
    for (const o of ['name', 'is_guest', 'admin', 'user_type', 'deactivated', 'shadow_banned', 'displayname', 'avatar_url', 'creation_ts', 'last_seen_ts', 'locked']) {
      const res = await list(`?order_by=${o}`);
      expect(res.status, o).toBe(200);
      expect(res.body.total).toBe(9);
    }
  });

  it('filters by name (localpart or display name), user_id, guests, admins, user types', async () => {
    expect(names(await list('?name=user0'))).toHaveLength(5);
    expect(names(await list('?name=zorro'))).toEqual(['@zed:test.local']);
    expect(names(await list('?name=BEEP'))).toEqual(['@robot:test.local']);
    // name looks at the localpart, not the server name.
    expect(names(await list('?name=test.local'))).toEqual([]);
    expect(names(await list('?user_id=user01'))).toEqual(['@user01:test.local']);
    expect(names(await list('?user_id=test.local'))).toHaveLength(9);
    expect(names(await list('?name=50%25'))).toEqual([]);
    expect(names(await list('?guests=false'))).not.toContain('@12345:test.local');
    expect((await list('?guests=false')).body.total).toBe(8);
    expect(names(await list('?admins=true'))).toEqual(['@root:test.local', '@zed:test.local']);
    expect(names(await list('?admins=false'))).toHaveLength(7);
    expect(names(await list('?not_user_type=bot'))).not.toContain('@robot:test.local');
    expect(names(await list('?not_user_type='))).toEqual(['@robot:test.local']);
    expect(names(await list('?not_user_type=&not_user_type=bot'))).toEqual([]);
  });

  it('deactivated: v2 includes them on true; v3 filters both ways', async () => {
    expect(names(await list('?deactivated=true'))).toContain('@gone:test.local');
    expect((await list('?deactivated=true')).body.total).toBe(10);
    expect(names(await list('?deactivated=false'))).not.toContain('@gone:test.local');
    expect(names(await list('', 'v3'))).toContain('@gone:test.local');
    expect(names(await list('?deactivated=true', 'v3'))).toEqual(['@gone:test.local']);
    expect(names(await list('?deactivated=false', 'v3'))).not.toContain('@gone:test.local');
    const gone = (await list('?deactivated=true', 'v3')).body.users as Record<string, unknown>[];
    expect(gone[0]).toMatchObject({ deactivated: true });
  });

  it('locked=true includes locked users', async () => {
    expect(names(await list(''))).not.toContain('@locked1:test.local');
    const res = await list('?locked=true');
    expect(names(res)).toContain('@locked1:test.local');
    expect((res.body.users as Record<string, unknown>[]).find((x) => x.name === '@locked1:test.local')).toMatchObject({ locked: true });
  });

  it('rejects bad query parameters', async () => {
    const cases: [string, string, string][] = [
      ['?limit=-1', 'M_INVALID_PARAM', 'Query parameter limit must be a positive integer.'],
      ['?limit=abc', 'M_INVALID_PARAM', 'Query parameter limit must be an integer'],
      ['?from=-3', 'M_INVALID_PARAM', 'Query parameter from must be a positive integer.'],
      ['?guests=maybe', 'M_INVALID_PARAM', "Boolean query parameter 'guests' must be one of ['true', 'false']"],
      ['?deactivated=1', 'M_INVALID_PARAM', "Boolean query parameter 'deactivated' must be one of ['true', 'false']"],
      ['?dir=x', 'M_INVALID_PARAM', "Query parameter 'dir' must be one of ['b', 'f']"],
    ];
    for (const [q, errcode, error] of cases) {
      const res = await list(q);
      expect(res.status, q).toBe(400);
      expect(res.body).toEqual({ errcode, error });
    }
    const order = await list('?order_by=password_hash');
    expect(order.status).toBe(400);
    expect(order.body.errcode).toBe('M_INVALID_PARAM');
  });
});

/**
 * The rest of the /_synapse/admin API against the real server: server
 * version, deactivate, reset password, whois, the admin flag, joined
 * rooms, devices, username availability.
 */
import { describe, expect, it } from 'vitest';
import { SERVER_VERSION } from '../../src/version.js';
import { type AdminEndpoint, itRequiresAdmin, tokenWorks } from '../helpers/admin.js';
import { useServerWith } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const { t, admin, alice } = useServerWith({ admins: ['admin'] }, 'admin', 'alice');

const db = () => t.server.ctx.database.db;
const enc = encodeURIComponent;
const userRow = (userId: string) => db().selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
const deviceIds = async (userId: string) =>
  (await db().selectFrom('devices').select('device_id').where('user_id', '=', userId).orderBy('device_id').execute()).map((d) => d.device_id);

describe('access to every endpoint', () => {
  const A = '@alice:test.local';
  const endpoints: AdminEndpoint[] = [
    ['POST', `/_synapse/admin/v1/deactivate/${enc(A)}`, {}],
    ['POST', `/_synapse/admin/v1/reset_password/${enc(A)}`, { new_password: 'x' }],
    ['GET', `/_synapse/admin/v1/whois/${enc('@admin:test.local')}`],
    ['GET', `/_matrix/client/v3/admin/whois/${enc('@admin:test.local')}`],
    ['GET', `/_matrix/client/r0/admin/whois/${enc('@admin:test.local')}`],
    ['GET', `/_synapse/admin/v1/users/${enc(A)}/admin`],
    ['PUT', `/_synapse/admin/v1/users/${enc(A)}/admin`, { admin: true }],
    ['GET', `/_synapse/admin/v1/users/${enc(A)}/joined_rooms`],
    ['GET', `/_synapse/admin/v2/users/${enc(A)}/devices`],
    ['POST', `/_synapse/admin/v2/users/${enc(A)}/devices`, { device_id: 'NEWDEV' }],
    ['GET', `/_synapse/admin/v2/users/${enc(A)}/devices/X`],
    ['PUT', `/_synapse/admin/v2/users/${enc(A)}/devices/X`, { display_name: 'n' }],
    ['DELETE', `/_synapse/admin/v2/users/${enc(A)}/devices/X`],
    ['POST', `/_synapse/admin/v2/users/${enc(A)}/delete_devices`, { devices: ['X'] }],
    ['GET', '/_synapse/admin/v1/username_available?username=free'],
  ];
  itRequiresAdmin(t, alice, endpoints);
  it('none of those attempts changed anything', async () => {
    expect(await userRow(A)).toMatchObject({ admin: false, deactivated: false });
    expect(await tokenWorks(t, alice)).toBe(true);
  });
});

describe('server_version', () => {
  it('answers without a token, as Synapse does', async () => {
    const res = await api(t, 'GET', '/_synapse/admin/v1/server_version');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ server_version: SERVER_VERSION });
    expect(SERVER_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('POST /_synapse/admin/v1/deactivate/<user_id>', () => {
  it('deactivates: the token stops working, the password and devices go', async () => {
    const b = await createUser(t, 'bert');
    expect(await tokenWorks(t, b)).toBe(true);
    const res = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc(b.userId)}`, { token: admin.accessToken, body: {} });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id_server_unbind_result: 'success' });
    expect(await tokenWorks(t, b)).toBe(false);
    expect(await userRow(b.userId)).toMatchObject({ deactivated: true, erased: false, password_hash: null });
    expect(await deviceIds(b.userId)).toEqual([]);
    expect(await t.server.ctx.services.accounts.checkPassword(b.userId, b.password)).toBe(false);
    const profile = await db().selectFrom('profiles').selectAll().where('user_id', '=', b.userId).executeTakeFirst();
    expect(profile?.displayname).toBe('bert');
    const got = await api(t, 'GET', `/_synapse/admin/v2/users/${enc(b.userId)}`, { token: admin.accessToken });
    expect(got.body).toMatchObject({ deactivated: true, erased: false });
  });

  it('with erase, the profile is cleared and the user marked erased; an empty body works', async () => {
    const c = await createUser(t, 'cleo');
    const res = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc(c.userId)}`, { token: admin.accessToken, body: { erase: true } });
    expect(res.status).toBe(200);
    const got = await api(t, 'GET', `/_synapse/admin/v2/users/${enc(c.userId)}`, { token: admin.accessToken });
    expect(got.body).toMatchObject({ deactivated: true, erased: true, displayname: null, avatar_url: null });
    // Deactivating again (no body) keeps the erasure.
    const again = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc(c.userId)}`, { token: admin.accessToken });
    expect(again.status).toBe(200);
    expect(await userRow(c.userId)).toMatchObject({ deactivated: true, erased: true });
  });

  it('erase must be a boolean; remote 400; unknown 404', async () => {
    const d = await createUser(t, 'dora');
    const bad = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc(d.userId)}`, { token: admin.accessToken, body: { erase: 'yes' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ errcode: 'M_BAD_JSON', error: "Param 'erase' must be a boolean, if given" });
    expect(await userRow(d.userId)).toMatchObject({ deactivated: false });
    const remote = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc('@dora:other.org')}`, { token: admin.accessToken, body: {} });
    expect(remote.status).toBe(400);
    expect(remote.body.error).toBe('Can only deactivate local users');
    const unknown = await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc('@nobody:test.local')}`, { token: admin.accessToken, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'User not found' });
    const malformed = await api(t, 'POST', `/_synapse/admin/v1/deactivate/dora`, { token: admin.accessToken, body: {} });
    expect(malformed.status).toBe(400);
    expect(malformed.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('POST /_synapse/admin/v1/reset_password/<user_id>', () => {
  it('sets the password and logs the user out', async () => {
    const e = await createUser(t, 'eve');
    const res = await api(t, 'POST', `/_synapse/admin/v1/reset_password/${enc(e.userId)}`, { token: admin.accessToken, body: { new_password: 'eve-new-secret' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const accounts = t.server.ctx.services.accounts;
    expect(await accounts.checkPassword(e.userId, 'eve-new-secret')).toBe(true);
    expect(await accounts.checkPassword(e.userId, e.password)).toBe(false);
    expect(await tokenWorks(t, e)).toBe(false);
    expect(await deviceIds(e.userId)).toEqual([]);
  });

  it('logout_devices: false keeps the sessions', async () => {
    const f = await createUser(t, 'finn');
    expect(await tokenWorks(t, f)).toBe(true);
    const res = await api(t, 'POST', `/_synapse/admin/v1/reset_password/${enc(f.userId)}`, {
      token: admin.accessToken,
      body: { new_password: 'finn-new-secret', logout_devices: false },
    });
    expect(res.status).toBe(200);
    expect(await t.server.ctx.services.accounts.checkPassword(f.userId, 'finn-new-secret')).toBe(true);
    expect(await tokenWorks(t, f)).toBe(true);
    expect(await deviceIds(f.userId)).toEqual([f.deviceId]);
  });

  it('an admin resetting their own password keeps their own session', async () => {
    const boss = await createUser(t, 'boss', { admin: true });
    const res = await api(t, 'POST', `/_synapse/admin/v1/reset_password/${enc(boss.userId)}`, { token: boss.accessToken, body: { new_password: 'boss-new' } });
    expect(res.status).toBe(200);
    expect(await tokenWorks(t, boss)).toBe(true);
    expect(await deviceIds(boss.userId)).toEqual([boss.deviceId]);
  });

  it('validates: missing new_password, wrong types, unknown user', async () => {
    const path = `/_synapse/admin/v1/reset_password/${enc(alice.userId)}`;
    const missing = await api(t, 'POST', path, { token: admin.accessToken, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ errcode: 'M_MISSING_PARAM', error: "Missing params: ['new_password']" });
    const wrong = await api(t, 'POST', path, { token: admin.accessToken, body: { new_password: 42 } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errcode).toBe('M_INVALID_PARAM');
    const logout = await api(t, 'POST', path, { token: admin.accessToken, body: { new_password: 'x', logout_devices: 'no' } });
    expect(logout.status).toBe(400);
    expect(await t.server.ctx.services.accounts.checkPassword(alice.userId, alice.password)).toBe(true);
    const unknown = await api(t, 'POST', `/_synapse/admin/v1/reset_password/${enc('@ghost:test.local')}`, { token: admin.accessToken, body: { new_password: 'x' } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
  });
});

describe('whois', () => {
  it("lists the addresses and user agents the user's tokens were used from, per device", async () => {
    const g = await createUser(t, 'gus');
    const start = Date.now();
    // A request with the user's token, from an address nginx would forward.
    await api(t, 'GET', `/_synapse/admin/v2/users`, { token: g.accessToken, headers: { 'x-forwarded-for': '203.0.113.7', 'user-agent': 'AxonTest/1.0' } });
    let body: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) {
      const res = await api(t, 'GET', `/_synapse/admin/v1/whois/${enc(g.userId)}`, { token: admin.accessToken });
      expect(res.status).toBe(200);
      body = res.body;
      if (Object.keys(body.devices as object).length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(body.user_id).toBe(g.userId);
    const devices = body.devices as Record<string, { sessions: { connections: { ip: string; last_seen: number; user_agent: string }[] }[] }>;
    expect(Object.keys(devices)).toEqual([g.deviceId]);
    const connections = devices[g.deviceId]!.sessions[0]!.connections;
    expect(connections).toHaveLength(1);
    expect(connections[0]).toMatchObject({ ip: '203.0.113.7', user_agent: 'AxonTest/1.0' });
    expect(connections[0]!.last_seen).toBeGreaterThanOrEqual(start - 1000);
  });

  it('an unused account has no connections; the client-server path answers the same', async () => {
    const h = await createUser(t, 'hugo');
    const res = await api(t, 'GET', `/_synapse/admin/v1/whois/${enc(h.userId)}`, { token: admin.accessToken });
    expect(res.body).toEqual({ user_id: h.userId, devices: {} });
    const client = await api(t, 'GET', `/_matrix/client/v3/admin/whois/${enc(h.userId)}`, { token: admin.accessToken });
    expect(client.status).toBe(200);
    expect(client.body).toEqual({ user_id: h.userId, devices: {} });
  });

  it('users may whois themselves; others need an admin; remote 400; unknown 404', async () => {
    expect((await api(t, 'GET', `/_synapse/admin/v1/whois/${enc(alice.userId)}`, { token: alice.accessToken })).status).toBe(200);
    const remote = await api(t, 'GET', `/_synapse/admin/v1/whois/${enc('@x:other.org')}`, { token: admin.accessToken });
    expect(remote.status).toBe(400);
    expect(remote.body.error).toBe('Can only whois a local user');
    const unknown = await api(t, 'GET', `/_synapse/admin/v1/whois/${enc('@ghost:test.local')}`, { token: admin.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
  });
});

describe('the admin flag', () => {
  it('GET reports it; PUT changes it, effective on the next request', async () => {
    const i = await createUser(t, 'iris');
    const path = `/_synapse/admin/v1/users/${enc(i.userId)}/admin`;
    expect((await api(t, 'GET', path, { token: admin.accessToken })).body).toEqual({ admin: false });
    // Cache the token as a non-admin's first.
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: i.accessToken })).status).toBe(403);
    const put = await api(t, 'PUT', path, { token: admin.accessToken, body: { admin: true } });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({});
    expect(await userRow(i.userId)).toMatchObject({ admin: true });
    expect((await api(t, 'GET', path, { token: admin.accessToken })).body).toEqual({ admin: true });
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: i.accessToken })).status).toBe(200);
    await api(t, 'PUT', path, { token: admin.accessToken, body: { admin: false } });
    expect((await api(t, 'GET', '/_synapse/admin/v2/users', { token: i.accessToken })).status).toBe(403);
  });

  it('errors: self-demotion, missing or non-boolean admin, remote, unknown', async () => {
    const self = await api(t, 'PUT', `/_synapse/admin/v1/users/${enc(admin.userId)}/admin`, { token: admin.accessToken, body: { admin: false } });
    expect(self.status).toBe(400);
    expect(self.body.error).toBe('You may not demote yourself.');
    expect(await userRow(admin.userId)).toMatchObject({ admin: true });
    const path = `/_synapse/admin/v1/users/${enc(alice.userId)}/admin`;
    const missing = await api(t, 'PUT', path, { token: admin.accessToken, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ errcode: 'M_MISSING_PARAM', error: "Missing params: ['admin']" });
    const notBool = await api(t, 'PUT', path, { token: admin.accessToken, body: { admin: 'true' } });
    expect(notBool.status).toBe(400);
    expect(notBool.body.errcode).toBe('M_INVALID_PARAM');
    expect(await userRow(alice.userId)).toMatchObject({ admin: false });
    for (const method of ['GET', 'PUT']) {
      const remote = await api(t, method, `/_synapse/admin/v1/users/${enc('@x:other.org')}/admin`, {
        token: admin.accessToken,
        body: method === 'PUT' ? { admin: true } : undefined,
      });
      expect(remote.status).toBe(400);
      expect(remote.body.error).toBe('Only local users can be admins of this homeserver');
      const unknown = await api(t, method, `/_synapse/admin/v1/users/${enc('@ghost:test.local')}/admin`, {
        token: admin.accessToken,
        body: method === 'PUT' ? { admin: true } : undefined,
      });
      expect(unknown.status).toBe(404);
      expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    }
    expect(await userRow('@ghost:test.local')).toBeUndefined();
  });
});

describe('joined_rooms', () => {
  it('reports the rooms a user is joined to (there are none without rooms) with a total', async () => {
    const res = await api(t, 'GET', `/_synapse/admin/v1/users/${enc(alice.userId)}/joined_rooms`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ joined_rooms: [], total: 0 });
    const unknown = await api(t, 'GET', `/_synapse/admin/v1/users/${enc('@ghost:test.local')}/joined_rooms`, { token: admin.accessToken });
    expect(unknown.status).toBe(404);
    const bad = await api(t, 'GET', `/_synapse/admin/v1/users/ghost/joined_rooms`, { token: admin.accessToken });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('devices', () => {
  const base = (userId: string) => `/_synapse/admin/v2/users/${enc(userId)}`;

  it('lists, creates, shows and renames devices', async () => {
    const j = await createUser(t, 'jay');
    // Give the device a last-seen address.
    await api(t, 'GET', `/_synapse/admin/v1/whois/${enc(j.userId)}`, { token: j.accessToken, headers: { 'x-forwarded-for': '198.51.100.4', 'user-agent': 'JayAgent' } });

    const created = await api(t, 'POST', `${base(j.userId)}/devices`, { token: admin.accessToken, body: { device_id: 'QBUAZIFURK' } });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({});
    // Creating it again does nothing.
    expect((await api(t, 'POST', `${base(j.userId)}/devices`, { token: admin.accessToken, body: { device_id: 'QBUAZIFURK' } })).status).toBe(201);
    expect(await deviceIds(j.userId)).toEqual([j.deviceId, 'QBUAZIFURK'].sort());

    let list: Record<string, unknown> = {};
    for (let i = 0; i < 50; i++) {
      list = (await api(t, 'GET', `${base(j.userId)}/devices`, { token: admin.accessToken })).body;
      const mine = (list.devices as Record<string, unknown>[]).find((d) => d.device_id === j.deviceId);
      if (mine?.last_seen_ip) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(list.total).toBe(2);
    const devices = list.devices as Record<string, unknown>[];
    expect(devices.find((d) => d.device_id === 'QBUAZIFURK')).toEqual({
      device_id: 'QBUAZIFURK',
      display_name: null,
      last_seen_ip: null,
      last_seen_user_agent: null,
      last_seen_ts: null,
      user_id: j.userId,
      dehydrated: false,
    });
    expect(devices.find((d) => d.device_id === j.deviceId)).toMatchObject({
      display_name: 'test device',
      last_seen_ip: '198.51.100.4',
      last_seen_user_agent: 'JayAgent',
      user_id: j.userId,
    });

    const one = await api(t, 'GET', `${base(j.userId)}/devices/${j.deviceId}`, { token: admin.accessToken });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ device_id: j.deviceId, display_name: 'test device', user_id: j.userId, last_seen_ip: '198.51.100.4' });

    const renamed = await api(t, 'PUT', `${base(j.userId)}/devices/QBUAZIFURK`, { token: admin.accessToken, body: { display_name: 'My other phone' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toEqual({});
    expect((await api(t, 'GET', `${base(j.userId)}/devices/QBUAZIFURK`, { token: admin.accessToken })).body.display_name).toBe('My other phone');
    // No name: unchanged.
    expect((await api(t, 'PUT', `${base(j.userId)}/devices/QBUAZIFURK`, { token: admin.accessToken, body: {} })).status).toBe(200);
    expect((await api(t, 'GET', `${base(j.userId)}/devices/QBUAZIFURK`, { token: admin.accessToken })).body.display_name).toBe('My other phone');
  });

  it('device errors: unknown device, long name, bad bodies, remote or unknown user', async () => {
    const k = await createUser(t, 'kim');
    const missing = await api(t, 'GET', `${base(k.userId)}/devices/NOPE`, { token: admin.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'No device found' });
    const renameMissing = await api(t, 'PUT', `${base(k.userId)}/devices/NOPE`, { token: admin.accessToken, body: { display_name: 'x' } });
    expect(renameMissing.status).toBe(404);
    expect(renameMissing.body.errcode).toBe('M_NOT_FOUND');
    expect(await deviceIds(k.userId)).toEqual([k.deviceId]);
    const long = await api(t, 'PUT', `${base(k.userId)}/devices/${k.deviceId}`, { token: admin.accessToken, body: { display_name: 'x'.repeat(101) } });
    expect(long.status).toBe(400);
    expect(long.body).toEqual({ errcode: 'M_TOO_LARGE', error: 'Device display name is too long (max 100)' });
    const noId = await api(t, 'POST', `${base(k.userId)}/devices`, { token: admin.accessToken, body: {} });
    expect(noId.status).toBe(400);
    expect(noId.body.error).toBe('Missing device_id');
    const numId = await api(t, 'POST', `${base(k.userId)}/devices`, { token: admin.accessToken, body: { device_id: 5 } });
    expect(numId.status).toBe(400);
    expect(numId.body.error).toBe('device_id must be a string');
    const noList = await api(t, 'POST', `${base(k.userId)}/delete_devices`, { token: admin.accessToken, body: {} });
    expect(noList.status).toBe(400);
    expect(noList.body).toEqual({ errcode: 'M_MISSING_PARAM', error: "Missing params: ['devices']" });
    const badList = await api(t, 'POST', `${base(k.userId)}/delete_devices`, { token: admin.accessToken, body: { devices: 'ABC' } });
    expect(badList.status).toBe(400);
    expect(badList.body.errcode).toBe('M_INVALID_PARAM');

    const remote = await api(t, 'GET', `${base('@kim:other.org')}/devices`, { token: admin.accessToken });
    expect(remote.status).toBe(400);
    expect(remote.body.error).toBe('Can only lookup local users');
    const unknown = await api(t, 'GET', `${base('@ghost:test.local')}/devices`, { token: admin.accessToken });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'Unknown user' });
    const unknownCreate = await api(t, 'POST', `${base('@ghost:test.local')}/devices`, { token: admin.accessToken, body: { device_id: 'A' } });
    expect(unknownCreate.status).toBe(404);
    expect(await deviceIds('@ghost:test.local')).toEqual([]);
  });

  it('deleting a device ends its session at once', async () => {
    const l = await createUser(t, 'lou');
    expect(await tokenWorks(t, l)).toBe(true);
    const res = await api(t, 'DELETE', `${base(l.userId)}/devices/${l.deviceId}`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(await tokenWorks(t, l)).toBe(false);
    expect(await deviceIds(l.userId)).toEqual([]);
    // Deleting a device that is not there succeeds, as in Synapse.
    expect((await api(t, 'DELETE', `${base(l.userId)}/devices/GONE`, { token: admin.accessToken })).status).toBe(200);
  });

  it('delete_devices deletes the listed devices only', async () => {
    const m = await createUser(t, 'max');
    const other = await t.server.ctx.services.auth.createSession(db(), { userId: m.userId, deviceId: 'KEEPME' });
    await api(t, 'POST', `${base(m.userId)}/devices`, { token: admin.accessToken, body: { device_id: 'SPARE' } });
    expect(await tokenWorks(t, m)).toBe(true);
    const res = await api(t, 'POST', `${base(m.userId)}/delete_devices`, { token: admin.accessToken, body: { devices: [m.deviceId, 'SPARE', 'UNKNOWN'] } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(await deviceIds(m.userId)).toEqual(['KEEPME']);
    expect(await tokenWorks(t, m)).toBe(false);
    expect(await tokenWorks(t, { ...m, accessToken: other.access_token })).toBe(true);
  });
});

describe('username_available', () => {
  const path = (u: string) => `/_synapse/admin/v1/username_available?username=${enc(u)}`;

  it('a free, valid username is available', async () => {
    const res = await api(t, 'GET', path('newbie'), { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ available: true });
  });

  it('taken 400 M_USER_IN_USE; invalid 400 M_INVALID_USERNAME; missing 400 M_MISSING_PARAM', async () => {
    const taken = await api(t, 'GET', path('alice'), { token: admin.accessToken });
    expect(taken.status).toBe(400);
    expect(taken.body).toEqual({ errcode: 'M_USER_IN_USE', error: 'User ID already taken.' });
    for (const name of ['Alice', 'has space', '_under', '12345', '']) {
      const res = await api(t, 'GET', path(name), { token: admin.accessToken });
      expect(res.status, name).toBe(400);
      expect(res.body.errcode, name).toBe('M_INVALID_USERNAME');
    }
    const missing = await api(t, 'GET', '/_synapse/admin/v1/username_available', { token: admin.accessToken });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ errcode: 'M_MISSING_PARAM', error: "Missing string query parameter 'username'" });
  });
});

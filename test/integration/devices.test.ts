/**
 * The devices API: list, get, rename, delete (UIA) one or several, over
 * HTTP against the real server.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest, eventually, login, passwordAuth } from '../helpers/sessions.js';
import { api, createUser } from '../helpers/users.js';

const t = useTestServer();

const db = () => t.server.ctx.database.db;
const V3 = '/_matrix/client/v3';
const whoami = (token: string) => api(t, 'GET', `${V3}/account/whoami`, { token });

describe('GET /devices and /devices/{deviceId}', () => {
  it('lists the user’s devices with where and when they were last seen', async () => {
    const u = await createUser(t, 'alice');
    const phone = await login(t, 'alice', u.password, { initial_device_display_name: 'Phone' });
    // Using a token records its address in the background.
    await api(t, 'GET', `${V3}/account/whoami`, { token: phone.body.access_token as string, headers: { 'x-forwarded-for': '203.0.113.9', 'user-agent': 'PhoneApp/1.0' } });
    await eventually(
      async () =>
        (
          await db()
            .selectFrom('devices')
            .select('last_seen_ts')
            .where('device_id', '=', phone.body.device_id as string)
            .executeTakeFirst()
        )?.last_seen_ts,
    );

    const res = await api(t, 'GET', `${V3}/devices`, { token: u.accessToken });
    expect(res.status).toBe(200);
    const devices = res.body.devices as Record<string, unknown>[];
    expect(devices.map((d) => d.device_id).sort()).toEqual([u.deviceId, phone.body.device_id].sort());
    const p = devices.find((d) => d.device_id === phone.body.device_id);
    expect(p).toMatchObject({ display_name: 'Phone', last_seen_ip: '203.0.113.9' });
    expect(p?.last_seen_ts).toBeGreaterThan(Date.now() - 60_000);
    // The user agent is for admins only.
    expect(p).not.toHaveProperty('last_seen_user_agent');

    const one = await api(t, 'GET', `/_matrix/client/r0/devices/${phone.body.device_id as string}`, { token: u.accessToken });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(p);
  });

  it('answers 404 M_NOT_FOUND for an unknown device or another user’s', async () => {
    const u = await createUser(t, 'bob');
    const v = await createUser(t, 'carol');
    for (const id of ['NOSUCHDEVICE', v.deviceId]) {
      const res = await api(t, 'GET', `${V3}/devices/${id}`, { token: u.accessToken });
      expect(res.status).toBe(404);
      expect(res.body.errcode).toBe('M_NOT_FOUND');
    }
  });

  it('needs a token; guests may list', async () => {
    expect((await api(t, 'GET', `${V3}/devices`)).body.errcode).toBe('M_MISSING_TOKEN');
    const g = await createGuest(t);
    const res = await api(t, 'GET', `${V3}/devices`, { token: g.accessToken });
    expect(res.status).toBe(200);
    expect((res.body.devices as { device_id: string }[]).map((d) => d.device_id)).toEqual([g.deviceId]);
  });
});

describe('PUT /devices/{deviceId}', () => {
  it('renames a device', async () => {
    const u = await createUser(t, 'dave');
    const res = await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { display_name: 'Laptop' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect((await api(t, 'GET', `${V3}/devices/${u.deviceId}`, { token: u.accessToken })).body.display_name).toBe('Laptop');
    // Without display_name (or null), nothing changes.
    expect((await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: {} })).status).toBe(200);
    expect((await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { display_name: null } })).status).toBe(200);
    const row = await db().selectFrom('devices').select('display_name').where('device_id', '=', u.deviceId).executeTakeFirstOrThrow();
    expect(row.display_name).toBe('Laptop');
  });

  it('refuses unknown devices and bad names', async () => {
    const u = await createUser(t, 'erin');
    const v = await createUser(t, 'frank');
    for (const id of ['NOSUCHDEVICE', v.deviceId]) {
      const res = await api(t, 'PUT', `${V3}/devices/${id}`, { token: u.accessToken, body: { display_name: 'x' } });
      expect(res.status).toBe(404);
      expect(res.body.errcode).toBe('M_NOT_FOUND');
    }
    const tooLong = await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { display_name: 'n'.repeat(101) } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errcode).toBe('M_TOO_LARGE');
    const nul = await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { display_name: 'a\u0000b' } });
    expect(nul.status).toBe(400);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await api(t, method, `${V3}/devices/A%00B`, { token: u.accessToken, body: method === 'PUT' ? { display_name: 'x' } : undefined });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
    const notString = await api(t, 'PUT', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { display_name: 5 } });
    expect(notString.status).toBe(400);
    expect(notString.body.errcode).toBe('M_BAD_JSON');
    const row = await db().selectFrom('devices').select('display_name').where('device_id', '=', v.deviceId).executeTakeFirstOrThrow();
    expect(row.display_name).toBe('test device');
  });

  it('lets guests rename their device', async () => {
    const g = await createGuest(t);
    const res = await api(t, 'PUT', `${V3}/devices/${g.deviceId}`, { token: g.accessToken, body: { display_name: 'Guest tab' } });
    expect(res.status).toBe(200);
  });
});

describe('DELETE /devices/{deviceId} and POST /delete_devices', () => {
  it('deletes one device behind UIA, ending its session at once', async () => {
    const u = await createUser(t, 'grace');
    const tablet = await login(t, 'grace', u.password, { refresh_token: true });
    const tabletToken = tablet.body.access_token as string;
    expect((await whoami(tabletToken)).status).toBe(200);
    const path = `${V3}/devices/${tablet.body.device_id as string}`;

    const first = await api(t, 'DELETE', path, { token: u.accessToken });
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect((await whoami(tabletToken)).status).toBe(200);

    const wrong = await api(t, 'DELETE', path, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string, 'wrong') } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');

    const done = await api(t, 'DELETE', path, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    expect((await whoami(tabletToken)).body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await api(t, 'POST', `${V3}/refresh`, { body: { refresh_token: tablet.body.refresh_token } })).status).toBe(401);
    expect((await api(t, 'GET', path, { token: u.accessToken })).status).toBe(404);
    expect(
      await db()
        .selectFrom('access_tokens')
        .select('id')
        .where('device_id', '=', tablet.body.device_id as string)
        .execute(),
    ).toHaveLength(0);
    expect((await whoami(u.accessToken)).status).toBe(200);
  });

  it('deletes several devices with /delete_devices', async () => {
    const u = await createUser(t, 'heidi');
    const a = await login(t, 'heidi', u.password);
    const b = await login(t, 'heidi', u.password);
    const keep = await login(t, 'heidi', u.password);
    const body = { devices: [a.body.device_id, b.body.device_id, 'NOT_A_DEVICE'] };
    const first = await api(t, 'POST', `${V3}/delete_devices`, { token: u.accessToken, body });
    expect(first.status).toBe(401);
    const done = await api(t, 'POST', `${V3}/delete_devices`, { token: u.accessToken, body: { ...body, auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    for (const s of [a, b]) expect((await whoami(s.body.access_token as string)).status).toBe(401);
    expect((await whoami(keep.body.access_token as string)).status).toBe(200);
    const left = await db().selectFrom('devices').select('device_id').where('user_id', '=', u.userId).execute();
    expect(left.map((d) => d.device_id).sort()).toEqual([u.deviceId, keep.body.device_id].sort());
  });

  it('can delete the caller’s own device', async () => {
    const u = await createUser(t, 'ivan');
    const first = await api(t, 'DELETE', `/_matrix/client/r0/devices/${u.deviceId}`, { token: u.accessToken, body: {} });
    const done = await api(t, 'DELETE', `/_matrix/client/r0/devices/${u.deviceId}`, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    expect((await whoami(u.accessToken)).status).toBe(401);
  });

  it('refuses bad input and guests', async () => {
    const u = await createUser(t, 'judy');
    const missing = await api(t, 'POST', `${V3}/delete_devices`, { token: u.accessToken, body: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const nul = await api(t, 'POST', `${V3}/delete_devices`, { token: u.accessToken, body: { devices: ['A\u0000'] } });
    expect(nul.status).toBe(400);
    const nulAuth = await api(t, 'DELETE', `${V3}/devices/${u.deviceId}`, { token: u.accessToken, body: { auth: { type: 'm.login.password', session: 'x\u0000' } } });
    expect(nulAuth.status).toBe(400);
    const wrongType = await api(t, 'POST', `${V3}/delete_devices`, { token: u.accessToken, body: { devices: [1, 2] } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errcode).toBe('M_BAD_JSON');
    const g = await createGuest(t);
    const del = await api(t, 'DELETE', `${V3}/devices/${g.deviceId}`, { token: g.accessToken });
    expect(del.status).toBe(403);
    expect(del.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    const bulk = await api(t, 'POST', `${V3}/delete_devices`, { token: g.accessToken, body: { devices: [g.deviceId] } });
    expect(bulk.status).toBe(403);
    expect((await whoami(g.accessToken)).status).toBe(200);
  });

  it('binds a UIA session to the request it began with', async () => {
    const u = await createUser(t, 'ken');
    const a = await login(t, 'ken', u.password);
    const b = await login(t, 'ken', u.password);
    const first = await api(t, 'DELETE', `${V3}/devices/${a.body.device_id as string}`, { token: u.accessToken });
    const swapped = await api(t, 'DELETE', `${V3}/devices/${b.body.device_id as string}`, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(swapped.status).toBe(403);
    expect((await whoami(b.body.access_token as string)).status).toBe(200);
  });
});

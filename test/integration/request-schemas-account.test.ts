/**
 * The UIA-protected account and device routes after their move into one
 * service call each: a password change still spans two UIA requests with
 * the new password given only in the first.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { login, passwordAuth } from '../helpers/sessions.js';
import { api, createUser } from '../helpers/users.js';

const t = useTestServer();
const V3 = '/_matrix/client/v3';

describe('POST /account/password across two UIA requests', () => {
  it('uses the new password from the first request when the last one omits it', async () => {
    const u = await createUser(t, 'pwtwostep');
    const first = await api(t, 'POST', `${V3}/account/password`, { token: u.accessToken, body: { new_password: 'two step password 1', logout_devices: false } });
    expect(first.status).toBe(401);
    const done = await api(t, 'POST', `${V3}/account/password`, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    expect((await login(t, 'pwtwostep', 'two step password 1')).status).toBe(200);
    expect((await login(t, 'pwtwostep', u.password)).status).toBe(403);
  });
});

describe('device route schemas', () => {
  it('refuses bad bodies with the spec errcodes', async () => {
    const u = await createUser(t, 'devschema');
    const cases: [string, string, unknown, string][] = [
      ['POST', `${V3}/delete_devices`, {}, 'M_MISSING_PARAM'],
      ['POST', `${V3}/delete_devices`, { devices: 'x' }, 'M_BAD_JSON'],
      ['POST', `${V3}/delete_devices`, { devices: [1] }, 'M_BAD_JSON'],
      ['PUT', `${V3}/devices/${u.deviceId}`, { display_name: 5 }, 'M_BAD_JSON'],
    ];
    for (const [method, path, body, errcode] of cases) {
      const res = await api(t, method, path, { token: u.accessToken, body });
      expect([res.status, res.body.errcode]).toEqual([400, errcode]);
    }
  });
});

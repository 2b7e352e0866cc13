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
      ['DELETE', `${V3}/devices/${u.deviceId}`, { auth: 'password' }, 'M_BAD_JSON'],
      ['POST', `${V3}/delete_devices`, { devices: [], auth: [] }, 'M_BAD_JSON'],
    ];
    for (const [method, path, body, errcode] of cases) {
      const res = await api(t, method, path, { token: u.accessToken, body });
      expect([res.status, res.body.errcode]).toEqual([400, errcode]);
    }
    // No body on DELETE is {}: UIA asks for its stages, the device stays.
    const none = await api(t, 'DELETE', `${V3}/devices/${u.deviceId}`, { token: u.accessToken });
    expect(none.status).toBe(401);
    expect(none.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect((await api(t, 'GET', `${V3}/devices/${u.deviceId}`, { token: u.accessToken })).status).toBe(200);
  });
});

describe('account route schemas', () => {
  it('checks /account/password and /account/deactivate bodies before the access token, with Synapse codes', async () => {
    const u = await createUser(t, 'acctschema');
    const cases: [string, unknown, string, string][] = [
      ['password', { new_password: 42 }, 'M_INVALID_PARAM', 'new_password must be a string'],
      ['password', { new_password: 'x'.repeat(513) }, 'M_BAD_JSON', 'new_password may not be longer than 512 characters'],
      ['password', { new_password: 'long enough password', logout_devices: 'no' }, 'M_BAD_JSON', 'logout_devices must be true or false'],
      ['password', { new_password: 'long enough password', auth: 'dummy' }, 'M_BAD_JSON', 'body.auth must be object'],
      ['deactivate', { erase: 'yes' }, 'M_BAD_JSON', 'erase must be true or false'],
      ['deactivate', { id_server: 7 }, 'M_INVALID_PARAM', 'id_server must be a string'],
      ['deactivate', { auth: [1] }, 'M_BAD_JSON', 'body.auth must be object'],
    ];
    for (const [route, body, errcode, error] of cases) {
      // With no token at all: Synapse reads these bodies first.
      const anon = await api(t, 'POST', `${V3}/account/${route}`, { body });
      expect([anon.status, anon.body]).toEqual([400, { errcode, error }]);
      const res = await api(t, 'POST', `${V3}/account/${route}`, { token: u.accessToken, body });
      expect([res.status, res.body.errcode]).toEqual([400, errcode]);
    }
    // null is "not given" for both optional strings: UIA starts.
    for (const [route, body] of [
      ['password', { new_password: null }],
      ['deactivate', { id_server: null }],
    ] as const) {
      const res = await api(t, 'POST', `${V3}/account/${route}`, { token: u.accessToken, body });
      expect(res.status).toBe(401);
      expect(typeof res.body.session).toBe('string');
    }
    expect((await login(t, 'acctschema', u.password)).status).toBe(200);
  });
});

/**
 * The route schemas of the session, sync, filter, keys, to-device, key
 * backup, account data and push routes: for each, a request the spec allows
 * succeeds, and a missing required field, a wrong type and a bad enum or
 * number are answered with Synapse's status and errcode.
 */
import { describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
const LOOSE = { per_second: 1000, burst_count: 1000 };

const { t, alice, bob } = useServerWith(
  {
    yaml: {
      enable_registration: true,
      enable_registration_without_verification: true,
      rc_login: { address: LOOSE, account: LOOSE, failed_attempts: LOOSE },
      rc_registration: LOOSE,
      rc_registration_token_validity: LOOSE,
    },
  },
  'alice',
  'bob',
);

type Answer = Awaited<ReturnType<typeof api>>;

/** Expects a 400 with this errcode. */
function refused(res: Answer, errcode: string): void {
  expect({ status: res.status, errcode: res.body.errcode }).toEqual({ status: 400, errcode });
}

const call = (method: string, path: string, body?: unknown, as: TestUser | null = alice) =>
  api(t, method, path, { token: as?.accessToken, ...(body !== undefined ? { body } : {}) });

describe('POST /login', () => {
  const login = (extra: Record<string, unknown>) =>
    call('POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password, ...extra }, null);

  it('logs in with the spec body; null names count as not given', async () => {
    expect((await login({ device_id: 'SCHEMADEV', initial_device_display_name: 'laptop' })).status).toBe(200);
    expect((await login({ device_id: null, initial_device_display_name: null, refresh_token: false })).status).toBe(200);
  });

  it('refuses a missing type (M_MISSING_PARAM) and wrong types (M_INVALID_PARAM)', async () => {
    refused(await call('POST', `${V3}/login`, { identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password }, null), 'M_MISSING_PARAM');
    refused(await login({ type: 5 }), 'M_INVALID_PARAM');
    refused(await login({ identifier: 'bob' }), 'M_INVALID_PARAM');
    refused(await login({ password: 5 }), 'M_INVALID_PARAM');
    refused(await login({ password: undefined }), 'M_INVALID_PARAM');
    refused(await login({ token: 5 }), 'M_INVALID_PARAM');
    refused(await login({ device_id: 5 }), 'M_INVALID_PARAM');
    refused(await login({ initial_device_display_name: ['x'] }), 'M_INVALID_PARAM');
    refused(await login({ refresh_token: 'yes' }), 'M_INVALID_PARAM');
  });

  it('keeps the checks a schema cannot make', async () => {
    expect((await login({ type: 'm.login.unknown' })).body.errcode).toBe('M_UNKNOWN');
    refused(await login({ device_id: 'D'.repeat(513) }), 'M_INVALID_PARAM');
    expect((await login({ initial_device_display_name: 'n'.repeat(101) })).body.errcode).toBe('M_TOO_LARGE');
  });
});

describe('POST /refresh', () => {
  it('rotates a refresh token; a missing one is M_MISSING_PARAM, a wrong type M_INVALID_PARAM', async () => {
    const session = await call(
      'POST',
      `${V3}/login`,
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: bob.password, refresh_token: true },
      null,
    );
    const token = session.body.refresh_token as string;
    expect(token).toMatch(/^syr_/);
    const res = await call('POST', `${V3}/refresh`, { refresh_token: token }, null);
    expect(res.status).toBe(200);
    expect(res.body.access_token).toEqual(expect.any(String));
    refused(await call('POST', `${V3}/refresh`, {}, null), 'M_MISSING_PARAM');
    refused(await call('POST', `${V3}/refresh`, { refresh_token: 5 }, null), 'M_INVALID_PARAM');
  });
});

describe('POST /register and its GET routes', () => {
  let n = 0;
  const register = (extra: Record<string, unknown>) =>
    call('POST', `${V3}/register`, { username: `schema${++n}`, password: 'a-long-password-1', auth: { type: 'm.login.dummy' }, ...extra }, null);

  it('registers with the spec body', async () => {
    const res = await register({ device_id: 'REGDEV', initial_device_display_name: 'phone', inhibit_login: false, refresh_token: false });
    expect(res.status).toBe(200);
    expect(res.body.device_id).toBe('REGDEV');
    const quiet = await register({ inhibit_login: true, initial_device_display_name: null });
    expect(quiet.status).toBe(200);
    expect(quiet.body).not.toHaveProperty('access_token');
  });

  it("refuses wrong types with Synapse's codes", async () => {
    refused(await register({ username: 5 }), 'M_INVALID_USERNAME');
    refused(await register({ password: 5 }), 'M_INVALID_PARAM');
    refused(await register({ device_id: 5 }), 'M_INVALID_PARAM');
    refused(await register({ initial_device_display_name: 5 }), 'M_INVALID_PARAM');
    refused(await register({ inhibit_login: 'yes' }), 'M_INVALID_PARAM');
    refused(await register({ refresh_token: 1 }), 'M_INVALID_PARAM');
    // The checks left to the service.
    refused(await register({ device_id: '' }), 'M_INVALID_PARAM');
    refused(await register({ password: 'p'.repeat(513) }), 'M_INVALID_PARAM');
  });

  it('GET /register/available takes username (required), the first when repeated', async () => {
    expect((await call('GET', `${V3}/register/available?username=freename`, undefined, null)).body).toEqual({ available: true });
    expect((await call('GET', `${V3}/register/available?username=other&username=alice`, undefined, null)).status).toBe(200);
    refused(await call('GET', `${V3}/register/available`, undefined, null), 'M_MISSING_PARAM');
  });

  it('GET registration token validity takes token (required)', async () => {
    const path = '/_matrix/client/v1/register/m.login.registration_token/validity';
    expect((await call('GET', `${path}?token=nosuchtoken`, undefined, null)).body).toEqual({ valid: false });
    refused(await call('GET', path, undefined, null), 'M_MISSING_PARAM');
  });
});

describe('GET /sync', () => {
  const sync = (query: string) => call('GET', `${V3}/sync?${query}`);

  it('takes the spec parameters', async () => {
    const first = await sync('timeout=0&full_state=true&set_presence=offline&filter=%7B%7D');
    expect(first.status).toBe(200);
    expect((await sync(`since=${enc(first.body.next_batch as string)}&timeout=0&full_state=false&set_presence=unavailable`)).status).toBe(200);
    // A negative timeout waits not at all; an empty one is 0.
    expect((await sync('timeout=-5')).status).toBe(200);
    expect((await sync('timeout=')).status).toBe(200);
  });

  it('refuses bad numbers, enums and repeated parameters with M_INVALID_PARAM, after the token', async () => {
    expect((await call('GET', `${V3}/sync?timeout=soon`, undefined, null)).body.errcode).toBe('M_MISSING_TOKEN');
    refused(await sync('timeout=soon'), 'M_INVALID_PARAM');
    refused(await sync('timeout=1.5'), 'M_INVALID_PARAM');
    refused(await sync('full_state=yes'), 'M_INVALID_PARAM');
    refused(await sync('set_presence=away'), 'M_INVALID_PARAM');
    refused(await sync('use_state_after=1'), 'M_INVALID_PARAM');
    refused(await sync('since=a&since=b'), 'M_INVALID_PARAM');
    refused(await sync('filter=1&filter=2'), 'M_INVALID_PARAM');
    refused(await sync('from=s1'), 'M_INVALID_PARAM');
  });
});

describe('POST /user/{userId}/filter', () => {
  it('takes an object and keeps the deep filter checks', async () => {
    const path = `${V3}/user/${enc(alice.userId)}/filter`;
    const ok = await call('POST', path, { room: { timeline: { limit: 5 } } });
    expect(ok.status).toBe(200);
    expect(ok.body.filter_id).toEqual(expect.any(String));
    refused(await call('POST', path, [1]), 'M_BAD_JSON');
    expect((await call('POST', path, { room: { timeline: { limit: 'ten' } } })).status).toBe(400);
  });
});

describe('POST /keys/upload, /keys/query, /keys/claim', () => {
  it('upload: the key maps are objects (null is not given)', async () => {
    const upload = (body: unknown) => call('POST', `${V3}/keys/upload`, body);
    expect((await upload({})).body).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
    expect((await upload({ device_keys: null, one_time_keys: null, fallback_keys: null })).status).toBe(200);
    refused(await upload({ device_keys: 'x' }), 'M_BAD_JSON');
    refused(await upload({ one_time_keys: [] }), 'M_BAD_JSON');
    refused(await upload({ fallback_keys: 5 }), 'M_BAD_JSON');
  });

  it('query: device_keys required and an object, timeout an integer', async () => {
    const query = (body: unknown) => call('POST', `${V3}/keys/query`, body);
    expect((await query({ device_keys: { [alice.userId]: [] }, timeout: 10000 })).status).toBe(200);
    refused(await query({}), 'M_MISSING_PARAM');
    refused(await query({ device_keys: [] }), 'M_BAD_JSON');
    refused(await query({ device_keys: {}, timeout: 'soon' }), 'M_BAD_JSON');
    refused(await query({ device_keys: {}, timeout: 1.5 }), 'M_BAD_JSON');
    refused(await query({ device_keys: { notauser: [] } }), 'M_INVALID_PARAM');
  });

  it('claim: one_time_keys required and an object, timeout an integer', async () => {
    const claim = (body: unknown) => call('POST', `${V3}/keys/claim`, body);
    expect((await claim({ one_time_keys: {}, timeout: 100 })).body).toMatchObject({ one_time_keys: {} });
    refused(await claim({}), 'M_MISSING_PARAM');
    refused(await claim({ one_time_keys: 'x' }), 'M_BAD_JSON');
    refused(await claim({ one_time_keys: {}, timeout: '5' }), 'M_BAD_JSON');
  });
});

describe('PUT /sendToDevice/{eventType}/{txnId}', () => {
  let n = 0;
  const send = (body: unknown) => call('PUT', `${V3}/sendToDevice/org.example.ping/schema${++n}`, body);

  it('takes messages (required, an object)', async () => {
    expect((await send({ messages: { [bob.userId]: { [bob.deviceId]: { text: 'ping' } } } })).status).toBe(200);
    refused(await send({}), 'M_MISSING_PARAM');
    refused(await send({ messages: ['x'] }), 'M_BAD_JSON');
    refused(await send({ messages: { [bob.userId]: 'x' } }), 'M_BAD_JSON');
  });
});

describe('POST and PUT /room_keys/version', () => {
  const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';

  it('takes algorithm (a non-empty string) and auth_data (an object), both required', async () => {
    const created = await call('POST', `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: 'k' } });
    expect(created.status).toBe(200);
    const version = created.body.version as string;
    for (const [method, path] of [
      ['POST', `${V3}/room_keys/version`],
      ['PUT', `${V3}/room_keys/version/${version}`],
    ] as const) {
      refused(await call(method, path, { auth_data: {} }), 'M_MISSING_PARAM');
      refused(await call(method, path, { algorithm: ALGORITHM }), 'M_MISSING_PARAM');
      refused(await call(method, path, { algorithm: 5, auth_data: {} }), 'M_BAD_JSON');
      refused(await call(method, path, { algorithm: '', auth_data: {} }), 'M_BAD_JSON');
      refused(await call(method, path, { algorithm: ALGORITHM, auth_data: 'x' }), 'M_BAD_JSON');
    }
    expect((await call('PUT', `${V3}/room_keys/version/${version}`, { algorithm: ALGORITHM, auth_data: { public_key: 'k2' } })).status).toBe(200);
  });
});

describe('PUT account data', () => {
  it('takes any object as content, globally and per room', async () => {
    const room = (await call('POST', `${V3}/createRoom`, {})).body.room_id as string;
    for (const path of [`${V3}/user/${enc(alice.userId)}/account_data/org.example.s`, `${V3}/user/${enc(alice.userId)}/rooms/${enc(room)}/account_data/org.example.s`]) {
      expect((await call('PUT', path, { any: ['thing'] })).status).toBe(200);
      refused(await call('PUT', path, ['x']), 'M_BAD_JSON');
      refused(await call('PUT', path, 'x'), 'M_BAD_JSON');
    }
  });
});

describe('push rules', () => {
  const rule = (id: string, tail = '') => `${V3}/pushrules/global/override/${id}${tail}`;

  it('PUT .../actions: actions required, a list', async () => {
    const path = `${V3}/pushrules/global/underride/.m.rule.message/actions`;
    expect((await call('PUT', path, { actions: ['notify'] })).status).toBe(200);
    refused(await call('PUT', path, {}), 'M_MISSING_PARAM');
    refused(await call('PUT', path, { actions: 'notify' }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, { actions: ['explode'] }), 'M_INVALID_PARAM');
  });

  it('PUT .../enabled: enabled required, a boolean; a bare boolean too', async () => {
    const path = rule('.m.rule.master', '/enabled');
    expect((await call('PUT', path, { enabled: false })).status).toBe(200);
    expect((await call('PUT', path, false)).status).toBe(200);
    refused(await call('PUT', path, {}), 'M_MISSING_PARAM');
    refused(await call('PUT', path, { enabled: 'no' }), 'M_INVALID_PARAM');
    refused(await call('PUT', path, 'no'), 'M_BAD_JSON');
  });

  it('PUT a rule: before and after given once', async () => {
    const body = { actions: ['notify'], conditions: [] };
    expect((await call('PUT', rule('org.example.a'), body)).status).toBe(200);
    expect((await call('PUT', `${rule('org.example.b')}?before=org.example.a`, body)).status).toBe(200);
    expect((await call('PUT', `${rule('org.example.c')}?after=`, body)).status).toBe(200);
    refused(await call('PUT', `${rule('org.example.d')}?before=org.example.a&before=org.example.b`, body), 'M_INVALID_PARAM');
    refused(await call('PUT', `${rule('org.example.d')}?after=x&after=y`, body), 'M_INVALID_PARAM');
  });
});

describe('POST /pushers/set', () => {
  const pusher = (extra: Record<string, unknown> = {}) => ({
    pushkey: 'schema-key',
    kind: 'http',
    app_id: 'org.example.app',
    app_display_name: 'App',
    device_display_name: 'Phone',
    lang: 'en',
    data: { url: 'https://push.example/_matrix/push/v1/notify' },
    ...extra,
  });
  const set = (body: unknown) => call('POST', `${V3}/pushers/set`, body);

  it('sets a pusher, and deletes one with kind null and only pushkey and app_id', async () => {
    expect((await set(pusher({ append: false, profile_tag: null }))).status).toBe(200);
    expect((await set({ kind: null, pushkey: 'schema-key', app_id: 'org.example.app' })).status).toBe(200);
    expect((await call('GET', `${V3}/pushers`)).body).toEqual({ pushers: [] });
  });

  it('names missing fields (M_MISSING_PARAM) and refuses wrong types (M_INVALID_PARAM)', async () => {
    refused(await set(pusher({ lang: undefined })), 'M_MISSING_PARAM');
    refused(await set(pusher({ data: null })), 'M_MISSING_PARAM');
    refused(await set({ kind: null, app_id: 'org.example.app' }), 'M_MISSING_PARAM');
    refused(await set(pusher({ kind: undefined })), 'M_MISSING_PARAM');
    refused(await set(pusher({ kind: 1 })), 'M_INVALID_PARAM');
    refused(await set(pusher({ app_id: 5 })), 'M_INVALID_PARAM');
    refused(await set(pusher({ pushkey: ['k'] })), 'M_INVALID_PARAM');
    refused(await set(pusher({ lang: true })), 'M_INVALID_PARAM');
    refused(await set(pusher({ data: [] })), 'M_INVALID_PARAM');
    refused(await set(pusher({ append: 'yes' })), 'M_INVALID_PARAM');
    refused(await set({ kind: null, app_id: 'org.example.app', pushkey: 9 }), 'M_INVALID_PARAM');
  });
});

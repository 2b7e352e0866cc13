/**
 * The route schemas of the Synapse admin API and the media routes: per
 * route a valid request that succeeds, then a missing required field, a
 * wrong type and a bad enum or number, each with its status and errcode.
 * Admin rights come before the schema: a non-admin with a bad query is 403.
 */
import { describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';
import { download, pngImage, rawRequest, thumbnail, upload } from '../helpers/media-http.js';

const { t, admin, bob } = useServerWith({ admins: ['admin'] }, 'admin', 'bob');

type Case = [what: string, status: number, errcode: string];

async function expectError(res: { status: number; body: Record<string, unknown> }, [what, status, errcode]: Case): Promise<void> {
  expect(res.status, what).toBe(status);
  expect(res.body.errcode, what).toBe(errcode);
}

describe('admin user list query', () => {
  it('a valid query succeeds', async () => {
    for (const v of ['v2', 'v3']) {
      const res = await api(t, 'GET', `/_synapse/admin/${v}/users?from=0&limit=10&guests=false&deactivated=true&order_by=name&dir=b&name=b`, {
        token: admin.accessToken,
      });
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body.users)).toBe(true);
    }
  });

  it.each([
    ['?limit=abc', 'M_INVALID_PARAM'],
    ['?from=-1', 'M_INVALID_PARAM'],
    ['?guests=yes', 'M_INVALID_PARAM'],
    ['?order_by=password_hash', 'M_INVALID_PARAM'],
    ['?dir=up', 'M_INVALID_PARAM'],
  ])('%s is 400 %s', async (q, errcode) => {
    const res = await api(t, 'GET', `/_synapse/admin/v2/users${q}`, { token: admin.accessToken });
    await expectError(res, [q, 400, errcode]);
  });

  it('a non-admin with a bad query is 403 M_FORBIDDEN first', async () => {
    const res = await api(t, 'GET', '/_synapse/admin/v2/users?limit=abc', { token: bob.accessToken });
    await expectError(res, ['non-admin', 403, 'M_FORBIDDEN']);
  });
});

describe('PUT /_synapse/admin/v2/users/{userId}', () => {
  const path = '/_synapse/admin/v2/users/@schemauser:test.local';

  it('a valid body succeeds', async () => {
    const res = await api(t, 'PUT', path, {
      token: admin.accessToken,
      body: { password: 'a long password', displayname: 'Schema', admin: false, deactivated: false, user_type: null, threepids: [], external_ids: [] },
    });
    expect(res.status).toBe(201);
    expect(res.body.displayname).toBe('Schema');
  });

  it.each<[unknown, string]>([
    [{ admin: 'yes' }, 'M_BAD_JSON'],
    [{ password: 5 }, 'M_UNKNOWN'],
    [{ deactivated: 'no' }, 'M_UNKNOWN'],
    [{ locked: 1 }, 'M_UNKNOWN'],
    [{ user_type: 3 }, 'M_UNKNOWN'],
    [{ displayname: 7 }, 'M_INVALID_PARAM'],
    [{ avatar_url: false }, 'M_INVALID_PARAM'],
    [{ threepids: 'x' }, 'M_INVALID_PARAM'],
    [{ threepids: ['x'] }, 'M_INVALID_PARAM'],
    [{ threepids: [{ medium: 'email' }] }, 'M_MISSING_PARAM'],
    [{ external_ids: [{ external_id: 'x' }] }, 'M_MISSING_PARAM'],
  ])('%j is 400 %s', async (body, errcode) => {
    const res = await api(t, 'PUT', path, { token: admin.accessToken, body });
    await expectError(res, [JSON.stringify(body), 400, errcode]);
  });

  it('a non-admin with a bad body is 403 M_FORBIDDEN', async () => {
    const res = await api(t, 'PUT', path, { token: bob.accessToken, body: { admin: 'yes' } });
    await expectError(res, ['non-admin', 403, 'M_FORBIDDEN']);
  });
});

describe('registration tokens', () => {
  const base = '/_synapse/admin/v1/registration_tokens';

  it('valid requests succeed', async () => {
    const made = await api(t, 'POST', `${base}/new`, { token: admin.accessToken, body: { token: 'schema-1', uses_allowed: 3, expiry_time: null } });
    expect(made.status).toBe(200);
    const random = await api(t, 'POST', `${base}/new`, { token: admin.accessToken, body: { length: 10, uses_allowed: null } });
    expect(random.status).toBe(200);
    expect(random.body.token).toHaveLength(10);
    // `length` is not read when a token is given, as Synapse.
    const both = await api(t, 'POST', `${base}/new`, { token: admin.accessToken, body: { token: 'schema-2', length: 0 } });
    expect(both.status).toBe(200);
    const updated = await api(t, 'PUT', `${base}/schema-1`, { token: admin.accessToken, body: { uses_allowed: 0 } });
    expect(updated.status).toBe(200);
    const listed = await api(t, 'GET', `${base}?valid=true`, { token: admin.accessToken });
    expect(listed.status).toBe(200);
  });

  it.each<[unknown, string]>([
    [{ token: 7 }, 'M_INVALID_PARAM'],
    [{ token: '' }, 'M_INVALID_PARAM'],
    [{ token: 'a/b' }, 'M_INVALID_PARAM'],
    [{ length: 65 }, 'M_INVALID_PARAM'],
    [{ length: '8' }, 'M_INVALID_PARAM'],
    [{ uses_allowed: -1 }, 'M_INVALID_PARAM'],
    [{ uses_allowed: 'many' }, 'M_INVALID_PARAM'],
    [{ expiry_time: 1.5 }, 'M_INVALID_PARAM'],
  ])('POST new %j is 400 %s', async (body, errcode) => {
    const res = await api(t, 'POST', `${base}/new`, { token: admin.accessToken, body });
    await expectError(res, [JSON.stringify(body), 400, errcode]);
  });

  it('PUT and the list check theirs', async () => {
    await expectError(await api(t, 'PUT', `${base}/schema-1`, { token: admin.accessToken, body: { uses_allowed: 1.5 } }), ['put', 400, 'M_INVALID_PARAM']);
    await expectError(await api(t, 'PUT', `${base}/schema-1`, { token: admin.accessToken, body: { expiry_time: 'soon' } }), ['put', 400, 'M_INVALID_PARAM']);
    await expectError(await api(t, 'GET', `${base}?valid=1`, { token: admin.accessToken }), ['list', 400, 'M_INVALID_PARAM']);
    await expectError(await api(t, 'GET', `${base}?valid=1`, { token: bob.accessToken }), ['list as non-admin', 403, 'M_FORBIDDEN']);
  });
});

describe('devices', () => {
  const base = () => `/_synapse/admin/v2/users/${encodeURIComponent(bob.userId)}`;

  it('valid requests succeed', async () => {
    expect((await api(t, 'POST', `${base()}/devices`, { token: admin.accessToken, body: { device_id: 'SCHEMA1' } })).status).toBe(201);
    expect((await api(t, 'PUT', `${base()}/devices/SCHEMA1`, { token: admin.accessToken, body: { display_name: 'phone' } })).status).toBe(200);
    expect((await api(t, 'POST', `${base()}/delete_devices`, { token: admin.accessToken, body: { devices: ['SCHEMA1'] } })).status).toBe(200);
  });

  it.each<[string, string, unknown, string]>([
    ['POST', 'devices', {}, 'M_MISSING_PARAM'],
    ['POST', 'devices', { device_id: '' }, 'M_MISSING_PARAM'],
    ['POST', 'devices', { device_id: null }, 'M_MISSING_PARAM'],
    ['POST', 'devices', { device_id: 5 }, 'M_INVALID_PARAM'],
    ['POST', 'delete_devices', {}, 'M_MISSING_PARAM'],
    ['POST', 'delete_devices', { devices: 'A' }, 'M_INVALID_PARAM'],
    ['POST', 'delete_devices', { devices: [1] }, 'M_INVALID_PARAM'],
    ['PUT', `devices/${'X'}`, { display_name: 3 }, 'M_INVALID_PARAM'],
  ])('%s %s %j is 400 %s', async (method, sub, body, errcode) => {
    const res = await api(t, method, `${base()}/${sub}`, { token: admin.accessToken, body });
    await expectError(res, [`${method} ${sub}`, 400, errcode]);
  });
});

describe('rate-limit override', () => {
  const path = () => `/_synapse/admin/v1/users/${encodeURIComponent(bob.userId)}/override_ratelimit`;

  it('a valid body succeeds', async () => {
    const res = await api(t, 'POST', path(), { token: admin.accessToken, body: { messages_per_second: 5, burst_count: 10 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ messages_per_second: 5, burst_count: 10 });
  });

  it.each<[unknown]>([[{ messages_per_second: -1 }], [{ burst_count: 1.5 }], [{ burst_count: true }], [{ messages_per_second: '5' }]])(
    '%j is 400 M_INVALID_PARAM',
    async (body) => {
      const res = await api(t, 'POST', path(), { token: admin.accessToken, body });
      await expectError(res, [JSON.stringify(body), 400, 'M_INVALID_PARAM']);
    },
  );
});

describe('admin media queries', () => {
  it('valid queries succeed', async () => {
    const user = encodeURIComponent(bob.userId);
    expect((await api(t, 'GET', `/_synapse/admin/v1/users/${user}/media?from=0&limit=5&order_by=media_length&dir=f`, { token: admin.accessToken })).status).toBe(200);
    const now = Date.now();
    expect((await api(t, 'POST', `/_synapse/admin/v1/media/delete?before_ts=${now}&size_gt=0&keep_profiles=true`, { token: admin.accessToken })).status).toBe(200);
    expect((await api(t, 'POST', `/_synapse/admin/v1/purge_media_cache?before_ts=${now}`, { token: admin.accessToken })).status).toBe(200);
  });

  it.each<[string, string, string]>([
    ['GET', `/users/@bob:test.local/media?limit=x`, 'M_INVALID_PARAM'],
    ['GET', `/users/@bob:test.local/media?order_by=owner`, 'M_INVALID_PARAM'],
    ['GET', `/users/@bob:test.local/media?dir=sideways`, 'M_INVALID_PARAM'],
    ['POST', '/media/delete', 'M_MISSING_PARAM'],
    ['POST', '/media/delete?before_ts=soon', 'M_INVALID_PARAM'],
    ['POST', `/media/delete?before_ts=${40_000_000_000}&keep_profiles=1`, 'M_INVALID_PARAM'],
    ['POST', '/purge_media_cache', 'M_MISSING_PARAM'],
  ])('%s %s is 400 %s', async (method, sub, errcode) => {
    const res = await api(t, method, `/_synapse/admin/v1${sub}`, { token: admin.accessToken });
    await expectError(res, [sub, 400, errcode]);
  });

  it('a non-admin with a bad query is 403 M_FORBIDDEN', async () => {
    await expectError(await api(t, 'POST', '/_synapse/admin/v1/media/delete', { token: bob.accessToken }), ['non-admin', 403, 'M_FORBIDDEN']);
  });
});

describe('media download and thumbnail queries', () => {
  let mediaId = '';
  const status = async (res: Promise<{ status: number; json: Record<string, unknown> }>) => {
    const r = await res;
    return { status: r.status, body: r.json };
  };

  it('valid queries succeed', async () => {
    mediaId = (await upload(t, bob.accessToken, await pngImage(64, 64), { contentType: 'image/png' })).mediaId;
    expect((await download(t, mediaId, { token: bob.accessToken, query: '?timeout_ms=100&allow_remote=false&allow_redirect=true' })).status).toBe(200);
    // Uploaded with authenticated media on, so the legacy paths refuse it, once the query has passed.
    expect((await download(t, mediaId, { legacy: true, query: '?allow_remote=true' })).status).toBe(404);
    expect((await thumbnail(t, mediaId, 'width=32&height=32&method=crop&animated=false', { token: bob.accessToken })).status).toBe(200);
    expect((await thumbnail(t, mediaId, 'width=32&height=32', { legacy: true })).status).toBe(404);
  });

  it.each<[string, string]>([
    ['height=32', 'M_MISSING_PARAM'],
    ['width=32', 'M_MISSING_PARAM'],
    ['width=0&height=32', 'M_INVALID_PARAM'],
    ['width=abc&height=32', 'M_INVALID_PARAM'],
    ['width=32&height=32&method=stretch', 'M_INVALID_PARAM'],
    ['width=32&height=32&animated=yes', 'M_INVALID_PARAM'],
    ['width=32&height=32&timeout_ms=-1', 'M_INVALID_PARAM'],
    ['width=32&height=32&allow_remote=maybe', 'M_INVALID_PARAM'],
    ['width=32&width=33&height=32', 'M_INVALID_PARAM'],
  ])('thumbnail ?%s is 400 %s (authenticated and legacy)', async (q, errcode) => {
    await expectError(await status(thumbnail(t, mediaId, q, { token: bob.accessToken })), [q, 400, errcode]);
    await expectError(await status(thumbnail(t, mediaId, q, { legacy: true })), [`legacy ${q}`, 400, errcode]);
  });

  it('download checks its query; a missing token is still 401 first', async () => {
    await expectError(await status(download(t, mediaId, { token: bob.accessToken, query: '?timeout_ms=soon' })), ['timeout_ms', 400, 'M_INVALID_PARAM']);
    await expectError(await status(download(t, mediaId, { legacy: true, query: '?allow_redirect=1' })), ['legacy allow_redirect', 400, 'M_INVALID_PARAM']);
    await expectError(await status(rawRequest(t, 'GET', `/_matrix/client/v1/media/thumbnail/test.local/${mediaId}?width=x`, {})), ['no token', 401, 'M_MISSING_TOKEN']);
  });
});

describe('URL preview query', () => {
  const { t: pt, carol } = useServerWith({ yaml: { url_preview_enabled: true, url_preview_ip_range_blacklist: ['127.0.0.0/8'] } }, 'carol');

  it('a valid query passes the schema (the blacklisted address is then refused)', async () => {
    const res = await api(pt, 'GET', `/_matrix/client/v1/media/preview_url?url=${encodeURIComponent('http://127.0.0.1/')}&ts=123`, { token: carol.accessToken });
    expect(res.status).toBe(403);
  });

  it.each<[string, string]>([
    ['', 'M_MISSING_PARAM'],
    ['?ts=123', 'M_MISSING_PARAM'],
    [`?url=${encodeURIComponent('http://127.0.0.1/')}&ts=yesterday`, 'M_INVALID_PARAM'],
  ])('preview_url%s is 400 %s', async (q, errcode) => {
    for (const p of ['/_matrix/client/v1/media/preview_url', '/_matrix/media/v3/preview_url']) {
      await expectError(await api(pt, 'GET', `${p}${q}`, { token: carol.accessToken }), [`${p}${q}`, 400, errcode]);
    }
  });
});

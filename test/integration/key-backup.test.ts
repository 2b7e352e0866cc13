/**
 * Server-side key backup (/room_keys) over HTTP against the real server:
 * the version lifecycle (numbers never reused, current = newest not
 * deleted), auth_data updates, storing, reading and deleting keys at the
 * three scopes, the keep-the-better-key rule, etag and count, and the
 * errors for wrong, unknown or missing versions and malformed bodies.
 */
import { describe, expect, it } from 'vitest';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';
// The spec's examples.
const AUTH_DATA = { public_key: 'abcdefg', signatures: { '@alice:example.org': { 'ed25519:deviceid': 'signature' } } };
const SESSION_DATA = { ephemeral: 'base64+ephemeral+key', ciphertext: 'base64+ciphertext+of+JSON+data', mac: 'base64+mac+of+ciphertext' };
const ROOM = '!roomid:example.org';

const t = useTestServer();

let users = 0;
const newUser = (): Promise<TestUser> => createUser(t, `kb${++users}`);

const call = (u: TestUser, method: string, path: string, body?: unknown) => api(t, method, `${V3}${path}`, { token: u.accessToken, body });

async function createVersion(u: TestUser, authData: Json = AUTH_DATA): Promise<string> {
  const res = await call(u, 'POST', '/room_keys/version', { algorithm: ALGORITHM, auth_data: authData });
  expect(res.status).toBe(200);
  expect(typeof res.body.version).toBe('string');
  return res.body.version as string;
}

const key = (first_message_index: number, forwarded_count: number, is_verified: boolean, session_data: Json = SESSION_DATA) => ({
  first_message_index,
  forwarded_count,
  is_verified,
  session_data,
});

function expectError(res: { status: number; body: Json }, status: number, errcode: string): void {
  expect(res.status).toBe(status);
  expect(res.body.errcode).toBe(errcode);
}

describe('backup versions', () => {
  it('no backup yet: 404 M_NOT_FOUND', async () => {
    const u = await newUser();
    expectError(await call(u, 'GET', '/room_keys/version'), 404, 'M_NOT_FOUND');
    expectError(await call(u, 'GET', '/room_keys/version/1'), 404, 'M_NOT_FOUND');
  });

  it('create, read, supersede, delete: numbers count up per user and are never reused', async () => {
    const u = await newUser();
    expect(await createVersion(u)).toBe('1');
    const info = await call(u, 'GET', '/room_keys/version');
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ algorithm: ALGORITHM, auth_data: AUTH_DATA, count: 0, etag: expect.any(String), version: '1' });
    expect((await call(u, 'GET', '/room_keys/version/1')).body).toEqual(info.body);

    expect(await createVersion(u, { public_key: 'second' })).toBe('2');
    expect((await call(u, 'GET', '/room_keys/version')).body).toMatchObject({ version: '2', auth_data: { public_key: 'second' } });
    // The older one can still be read.
    expect((await call(u, 'GET', '/room_keys/version/1')).body).toMatchObject({ version: '1', auth_data: AUTH_DATA });

    const del = await call(u, 'DELETE', '/room_keys/version/2');
    expect(del.status).toBe(200);
    expect(del.body).toEqual({});
    expect((await call(u, 'GET', '/room_keys/version')).body.version).toBe('1');
    expectError(await call(u, 'GET', '/room_keys/version/2'), 404, 'M_NOT_FOUND');
    // Deleting again succeeds, as the spec asks; a version never created is 404.
    expect((await call(u, 'DELETE', '/room_keys/version/2')).status).toBe(200);
    expectError(await call(u, 'DELETE', '/room_keys/version/3'), 404, 'M_NOT_FOUND');

    // Deleted numbers are not reused.
    expect(await createVersion(u)).toBe('3');
    expect((await call(u, 'DELETE', '/room_keys/version/3')).status).toBe(200);
    expect((await call(u, 'DELETE', '/room_keys/version/1')).status).toBe(200);
    expectError(await call(u, 'GET', '/room_keys/version'), 404, 'M_NOT_FOUND');
    expect(await createVersion(u)).toBe('4');

    // Another user's versions are their own.
    const v = await newUser();
    expectError(await call(v, 'GET', '/room_keys/version'), 404, 'M_NOT_FOUND');
    expectError(await call(v, 'GET', '/room_keys/version/4'), 404, 'M_NOT_FOUND');
    expectError(await call(v, 'DELETE', '/room_keys/version/4'), 404, 'M_NOT_FOUND');
    expect(await createVersion(v)).toBe('1');
    expect((await call(u, 'GET', '/room_keys/version')).body.version).toBe('4');
  });

  it('concurrent creations get distinct numbers', async () => {
    const u = await newUser();
    const versions = await Promise.all([0, 1, 2, 3, 4].map(() => createVersion(u)));
    expect([...versions].sort()).toEqual(['1', '2', '3', '4', '5']);
    expect((await call(u, 'GET', '/room_keys/version')).body.version).toBe('5');
  });

  it('versions that are not decimal numbers name nothing (404)', async () => {
    const u = await newUser();
    await createVersion(u);
    for (const v of ['abc', '01', '1.0', '-1', '0', '99999999999999999999']) {
      expectError(await call(u, 'GET', `/room_keys/version/${enc(v)}`), 404, 'M_NOT_FOUND');
      expectError(await call(u, 'DELETE', `/room_keys/version/${enc(v)}`), 404, 'M_NOT_FOUND');
      expectError(await call(u, 'GET', `/room_keys/keys?version=${enc(v)}`), 404, 'M_NOT_FOUND');
    }
  });

  it('PUT updates auth_data; the algorithm, and the version when given, must match', async () => {
    const u = await newUser();
    await createVersion(u);
    const ok = await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: { public_key: 'new' }, version: '1' });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({});
    expect((await call(u, 'GET', '/room_keys/version/1')).body).toMatchObject({ algorithm: ALGORITHM, auth_data: { public_key: 'new' }, version: '1' });
    // Without `version` in the body too.
    expect((await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: { public_key: 'newer' } })).status).toBe(200);
    expect((await call(u, 'GET', '/room_keys/version')).body.auth_data).toEqual({ public_key: 'newer' });

    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: {}, version: '2' }), 400, 'M_INVALID_PARAM');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: {}, version: 1 }), 400, 'M_INVALID_PARAM');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: 'org.example.other', auth_data: {} }), 400, 'M_INVALID_PARAM');
    expectError(await call(u, 'PUT', '/room_keys/version/7', { algorithm: ALGORITHM, auth_data: {} }), 404, 'M_NOT_FOUND');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM }), 400, 'M_MISSING_PARAM');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { auth_data: {} }), 400, 'M_MISSING_PARAM');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: 'x' }), 400, 'M_BAD_JSON');
    // Nothing of that changed it.
    expect((await call(u, 'GET', '/room_keys/version')).body.auth_data).toEqual({ public_key: 'newer' });
    // A deleted version cannot be updated.
    await call(u, 'DELETE', '/room_keys/version/1');
    expectError(await call(u, 'PUT', '/room_keys/version/1', { algorithm: ALGORITHM, auth_data: {} }), 404, 'M_NOT_FOUND');
  });

  it('refuses malformed version bodies', async () => {
    const u = await newUser();
    const bad: [unknown, string][] = [
      [{}, 'M_MISSING_PARAM'],
      [{ algorithm: ALGORITHM }, 'M_MISSING_PARAM'],
      [{ auth_data: {} }, 'M_MISSING_PARAM'],
      [{ algorithm: 5, auth_data: {} }, 'M_BAD_JSON'],
      [{ algorithm: '', auth_data: {} }, 'M_BAD_JSON'],
      [{ algorithm: ALGORITHM, auth_data: [] }, 'M_BAD_JSON'],
      [{ algorithm: ALGORITHM, auth_data: null }, 'M_BAD_JSON'],
      [{ algorithm: ALGORITHM, auth_data: { k: 'nul\u0000' } }, 'M_BAD_JSON'],
      [[], 'M_BAD_JSON'],
    ];
    for (const [body, errcode] of bad) expectError(await call(u, 'POST', '/room_keys/version', body), 400, errcode);
    expectError(await api(t, 'POST', `${V3}/room_keys/version`, { token: u.accessToken }), 400, 'M_NOT_JSON');
    expectError(await call(u, 'GET', '/room_keys/version'), 404, 'M_NOT_FOUND');
  });

  it('needs a signed-in user who is not a guest', async () => {
    expectError(await api(t, 'GET', `${V3}/room_keys/version`), 401, 'M_MISSING_TOKEN');
    expectError(await api(t, 'PUT', `${V3}/room_keys/keys?version=1`, { body: { rooms: {} } }), 401, 'M_MISSING_TOKEN');
    const g = await createGuest(t);
    expectError(await api(t, 'POST', `${V3}/room_keys/version`, { token: g.accessToken, body: { algorithm: ALGORITHM, auth_data: {} } }), 403, 'M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('backed-up keys', () => {
  it('stores, reads and deletes at each scope, with count and etag', async () => {
    const u = await newUser();
    const version = await createVersion(u);
    const q = `?version=${version}`;
    const etag0 = (await call(u, 'GET', '/room_keys/version')).body.etag as string;

    // One session (the spec's example).
    const one = await call(u, 'PUT', `/room_keys/keys/${enc(ROOM)}/sessionid1${q}`, key(1, 0, true));
    expect(one.status).toBe(200);
    expect(one.body).toEqual({ etag: expect.any(String), count: 1 });
    expect(one.body.etag).not.toBe(etag0);
    const single = await call(u, 'GET', `/room_keys/keys/${enc(ROOM)}/sessionid1${q}`);
    expect(single.status).toBe(200);
    expect(single.body).toEqual(key(1, 0, true));

    // A room's sessions, then several rooms at once.
    const room = await call(u, 'PUT', `/room_keys/keys/${enc(ROOM)}${q}`, { sessions: { sessionid2: key(0, 1, false, { n: 2 }) } });
    expect(room.body.count).toBe(2);
    expect(room.body.etag).not.toBe(one.body.etag);
    const all = await call(u, 'PUT', `/room_keys/keys${q}`, {
      rooms: { '!other:example.org': { sessions: { s3: key(5, 0, false, { n: 3 }), s4: key(6, 2, true, { n: 4 }) } }, [ROOM]: { sessions: {} } },
    });
    expect(all.body.count).toBe(4);

    const info = await call(u, 'GET', '/room_keys/version');
    expect(info.body).toMatchObject({ count: 4, etag: all.body.etag });

    expect((await call(u, 'GET', `/room_keys/keys/${enc(ROOM)}${q}`)).body).toEqual({ sessions: { sessionid1: key(1, 0, true), sessionid2: key(0, 1, false, { n: 2 }) } });
    expect((await call(u, 'GET', `/room_keys/keys${q}`)).body).toEqual({
      rooms: {
        [ROOM]: { sessions: { sessionid1: key(1, 0, true), sessionid2: key(0, 1, false, { n: 2 }) } },
        '!other:example.org': { sessions: { s3: key(5, 0, false, { n: 3 }), s4: key(6, 2, true, { n: 4 }) } },
      },
    });
    // Absent: one session is 404, a room or the whole backup is empty.
    expectError(await call(u, 'GET', `/room_keys/keys/${enc(ROOM)}/nosuch${q}`), 404, 'M_NOT_FOUND');
    expect((await call(u, 'GET', `/room_keys/keys/${enc('!empty:example.org')}${q}`)).body).toEqual({ sessions: {} });

    // Deleting: one session, a room, everything.
    const d1 = await call(u, 'DELETE', `/room_keys/keys/${enc(ROOM)}/sessionid1${q}`);
    expect(d1.status).toBe(200);
    expect(d1.body.count).toBe(3);
    expect(d1.body.etag).not.toBe(all.body.etag);
    // Deleting what is not there changes nothing.
    const d0 = await call(u, 'DELETE', `/room_keys/keys/${enc(ROOM)}/sessionid1${q}`);
    expect(d0.body).toEqual(d1.body);
    const d2 = await call(u, 'DELETE', `/room_keys/keys/${enc('!other:example.org')}${q}`);
    expect(d2.body.count).toBe(1);
    expect((await call(u, 'GET', `/room_keys/keys${q}`)).body).toEqual({ rooms: { [ROOM]: { sessions: { sessionid2: key(0, 1, false, { n: 2 }) } } } });
    const d3 = await call(u, 'DELETE', `/room_keys/keys${q}`);
    expect(d3.body.count).toBe(0);
    expect(d3.body.etag).not.toBe(d2.body.etag);
    expect((await call(u, 'GET', `/room_keys/keys${q}`)).body).toEqual({ rooms: {} });
    expect((await call(u, 'GET', '/room_keys/version')).body).toMatchObject({ count: 0, etag: d3.body.etag });
  });

  it('keeps the better key: verified first, then the lower first_message_index, then the lower forwarded_count', async () => {
    const u = await newUser();
    const version = await createVersion(u);
    const path = `/room_keys/keys/${enc(ROOM)}/s?version=${version}`;
    const put = async (k: Json) => {
      const res = await call(u, 'PUT', path, k);
      expect(res.status).toBe(200);
      return res.body;
    };
    const stored = async () => (await call(u, 'GET', path)).body;
    let last = await put(key(5, 3, false, { v: 'a' }));
    // [upload, kept?]
    const steps: [Json, boolean][] = [
      [key(0, 0, false, { v: 'lower index' }), true], // both unverified: the lower index replaces
      [key(1, 0, false, { v: 'b' }), false], // higher index: kept out
      [key(9, 9, true, { v: 'c' }), true], // verified beats unverified, whatever the index
      [key(0, 0, false, { v: 'd' }), false], // unverified never replaces verified
      [key(4, 9, true, { v: 'e' }), true], // lower index
      [key(4, 9, true, { v: 'f' }), false], // a tie keeps the stored key
      [key(4, 10, true, { v: 'g' }), false], // higher forwarded_count
      [key(4, 2, true, { v: 'h' }), true], // lower forwarded_count
      [key(5, 0, true, { v: 'i' }), false], // higher index, even with a lower count
    ];
    let expected = key(5, 3, false, { v: 'a' });
    for (const [k, replaces] of steps) {
      const res = await put(k);
      if (replaces) expected = k as ReturnType<typeof key>;
      expect(await stored(), JSON.stringify(k)).toEqual(expected);
      // The etag moves exactly when the stored key changed; the count stays 1.
      if (replaces) expect(res.etag, JSON.stringify(k)).not.toBe(last.etag);
      else expect(res.etag, JSON.stringify(k)).toBe(last.etag);
      expect(res.count).toBe(1);
      last = res;
    }
    expect(expected).toEqual(key(4, 2, true, { v: 'h' }));
  });

  it('writes only to the current version: 403 M_WRONG_ROOM_KEYS_VERSION for an older one, 404 for none', async () => {
    const u = await newUser();
    const body = { rooms: { [ROOM]: { sessions: { s: key(0, 0, false) } } } };
    // No backup at all.
    expectError(await call(u, 'PUT', '/room_keys/keys?version=1', body), 404, 'M_NOT_FOUND');
    await createVersion(u);
    await call(u, 'PUT', '/room_keys/keys?version=1', body);
    await createVersion(u);
    await createVersion(u);
    await call(u, 'DELETE', '/room_keys/version/3');
    // Current is 2: writing to 1 is refused with the current version.
    for (const path of ['/room_keys/keys?version=1', `/room_keys/keys/${enc(ROOM)}?version=1`, `/room_keys/keys/${enc(ROOM)}/s?version=1`]) {
      const b = path.includes('/s?') ? key(0, 0, true) : path.includes(enc(ROOM)) ? { sessions: { s: key(0, 0, true) } } : body;
      const res = await call(u, 'PUT', path, b);
      expectError(res, 403, 'M_WRONG_ROOM_KEYS_VERSION');
      expect(res.body.current_version).toBe('2');
    }
    // Deleted, never created, or not a number: 404.
    for (const v of ['3', '9', 'x']) expectError(await call(u, 'PUT', `/room_keys/keys?version=${v}`, body), 404, 'M_NOT_FOUND');
    // The old version can still be read and have keys deleted; the deleted one cannot.
    expect((await call(u, 'GET', '/room_keys/keys?version=1')).body).toEqual({ rooms: { [ROOM]: { sessions: { s: key(0, 0, false) } } } });
    expectError(await call(u, 'GET', '/room_keys/keys?version=3'), 404, 'M_NOT_FOUND');
    expectError(await call(u, 'DELETE', '/room_keys/keys?version=3'), 404, 'M_NOT_FOUND');
    expect((await call(u, 'DELETE', '/room_keys/keys?version=1')).body.count).toBe(0);
    // The current one takes keys.
    expect((await call(u, 'PUT', '/room_keys/keys?version=2', body)).body.count).toBe(1);
  });

  it('the version query parameter is required', async () => {
    const u = await newUser();
    await createVersion(u);
    expectError(await call(u, 'PUT', '/room_keys/keys', { rooms: {} }), 400, 'M_MISSING_PARAM');
    expectError(await call(u, 'GET', '/room_keys/keys'), 400, 'M_MISSING_PARAM');
    expectError(await call(u, 'DELETE', `/room_keys/keys/${enc(ROOM)}`), 400, 'M_MISSING_PARAM');
    expectError(await call(u, 'GET', `/room_keys/keys/${enc(ROOM)}/s`), 400, 'M_MISSING_PARAM');
  });

  it('deleting a version deletes its keys', async () => {
    const u = await newUser();
    await createVersion(u);
    await call(u, 'PUT', '/room_keys/keys?version=1', { rooms: { [ROOM]: { sessions: { a: key(0, 0, false), b: key(0, 0, false) } } } });
    await call(u, 'DELETE', '/room_keys/version/1');
    const rows = await t.server.ctx.database.db.selectFrom('e2e_room_keys').select('session_id').where('user_id', '=', u.userId).execute();
    expect(rows).toEqual([]);
    await createVersion(u);
    expect((await call(u, 'GET', '/room_keys/version')).body).toMatchObject({ version: '2', count: 0 });
  });

  it('refuses malformed key data with 400 and stores nothing of the request', async () => {
    const u = await newUser();
    await createVersion(u);
    const q = '?version=1';
    const good = key(0, 0, false);
    const badKeys: [unknown, string][] = [
      [{ ...good, first_message_index: '1' }, 'M_BAD_JSON'],
      [{ ...good, first_message_index: 1.5 }, 'M_BAD_JSON'],
      [{ ...good, first_message_index: -1 }, 'M_BAD_JSON'],
      [{ ...good, first_message_index: 2 ** 31 }, 'M_BAD_JSON'],
      [{ ...good, forwarded_count: null }, 'M_BAD_JSON'],
      [{ ...good, is_verified: 'true' }, 'M_BAD_JSON'],
      [{ ...good, session_data: [] }, 'M_BAD_JSON'],
      [{ ...good, session_data: 'x' }, 'M_BAD_JSON'],
      [{ ...good, session_data: { x: 'nul\u0000' } }, 'M_BAD_JSON'],
      [{ first_message_index: 0, forwarded_count: 0, is_verified: false }, 'M_BAD_JSON'],
    ];
    for (const [k, errcode] of badKeys) {
      expectError(await call(u, 'PUT', `/room_keys/keys/${enc(ROOM)}/s${q}`, k), 400, errcode);
      // In a bulk upload, one bad key refuses the whole request.
      expectError(await call(u, 'PUT', `/room_keys/keys${q}`, { rooms: { [ROOM]: { sessions: { ok: good, bad: k } } } }), 400, errcode);
    }
    const badBodies: [string, unknown, string][] = [
      ['/room_keys/keys', {}, 'M_MISSING_PARAM'],
      ['/room_keys/keys', { rooms: [] }, 'M_BAD_JSON'],
      ['/room_keys/keys', { rooms: { [ROOM]: [] } }, 'M_BAD_JSON'],
      ['/room_keys/keys', { rooms: { [ROOM]: {} } }, 'M_MISSING_PARAM'],
      ['/room_keys/keys', { rooms: { [ROOM]: { sessions: 'x' } } }, 'M_BAD_JSON'],
      [`/room_keys/keys/${enc(ROOM)}`, {}, 'M_MISSING_PARAM'],
      [`/room_keys/keys/${enc(ROOM)}`, { sessions: { s: 'x' } }, 'M_BAD_JSON'],
      [`/room_keys/keys/${enc(ROOM)}`, [], 'M_BAD_JSON'],
    ];
    for (const [path, body, errcode] of badBodies) expectError(await call(u, 'PUT', `${path}${q}`, body), 400, errcode);
    expectError(await call(u, 'PUT', `/room_keys/keys/${enc('!a\u0000b:x')}/s${q}`, good), 400, 'M_INVALID_PARAM');
    expect((await call(u, 'GET', '/room_keys/version')).body).toMatchObject({ count: 0 });
  });

  it('large uploads are stored in one request', async () => {
    const u = await newUser();
    await createVersion(u);
    const sessions: Json = {};
    for (let i = 0; i < 2500; i++) sessions[`session${i}`] = key(i, 0, i % 2 === 0, { i });
    const res = await call(u, 'PUT', '/room_keys/keys?version=1', { rooms: { [ROOM]: { sessions } } });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(2500);
    const back = await call(u, 'GET', `/room_keys/keys/${enc(ROOM)}?version=1`);
    expect(back.body.sessions).toEqual(sessions);
    // Uploading the same again changes nothing.
    const again = await call(u, 'PUT', '/room_keys/keys?version=1', { rooms: { [ROOM]: { sessions } } });
    expect(again.body).toEqual(res.body);
  });
});

/**
 * End-to-end keys over HTTP: /keys/upload (identity, one-time and fallback
 * keys), /keys/query, /keys/claim (each one-time key handed out once, even
 * to concurrent claims; then the fallback key), the key counts in /sync,
 * device deletion taking its keys along, and an encrypted DM created the
 * way Element creates one.
 */
import { describe, expect, it } from 'vitest';
import { deviceKeys, oneTimeKeys, sign, type TestDevice } from '../helpers/e2e-keys.js';
import { useTestServer } from '../helpers/rooms.js';
import { login, passwordAuth } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;

/** `api` with the body typed loosely, as these tests read deep into it. */
const call = (method: string, path: string, opts: Parameters<typeof api>[3] = {}) => api(t, method, path, opts) as Promise<{ status: number; body: Json; headers: Headers }>;
const t = useTestServer();

const V3 = '/_matrix/client/v3';
const db = () => t.server.ctx.database.db;
const enc = encodeURIComponent;

function upload(u: { accessToken: string }, body: unknown) {
  return call('POST', `${V3}/keys/upload`, { token: u.accessToken, body });
}
function query(u: { accessToken: string }, body: unknown) {
  return call('POST', `${V3}/keys/query`, { token: u.accessToken, body });
}
function claim(u: { accessToken: string }, body: unknown) {
  return call('POST', `${V3}/keys/claim`, { token: u.accessToken, body });
}

async function sync(u: TestUser, params: Record<string, string> = {}): Promise<Json> {
  const res = await call('GET', `${V3}/sync?${new URLSearchParams(params)}`, { token: u.accessToken });
  expect(res.status).toBe(200);
  return res.body;
}

/** A user with a device that has uploaded its identity keys. */
async function userWithKeys(localpart: string): Promise<{ u: TestUser; d: TestDevice }> {
  const u = await createUser(t, localpart);
  const d = deviceKeys(u.userId, u.deviceId);
  const res = await upload(u, { device_keys: d.deviceKeys });
  expect(res.status).toBe(200);
  return { u, d };
}

const streamRows = async (userId: string) => (await db().selectFrom('device_lists_stream').select('stream_id').where('user_id', '=', userId).execute()).length;

describe('POST /keys/upload', () => {
  it('stores device keys, which /keys/query returns with the device name; answers counts with signed_curve25519', async () => {
    const u = await createUser(t, 'up1');
    const d = deviceKeys(u.userId, u.deviceId);
    const res = await upload(u, { device_keys: d.deviceKeys });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
    const q = await query(u, { device_keys: { [u.userId]: [] } });
    expect(q.status).toBe(200);
    expect(q.body.device_keys).toEqual({ [u.userId]: { [u.deviceId]: { ...d.deviceKeys, unsigned: { device_display_name: 'test device' } } } });
    expect(q.body.failures).toEqual({});
    expect(await streamRows(u.userId)).toBe(1);
  });

  it('an identical re-upload changes nothing; changed keys replace the old and are announced', async () => {
    const { u, d } = await userWithKeys('up2');
    expect((await upload(u, { device_keys: d.deviceKeys })).status).toBe(200);
    expect(await streamRows(u.userId)).toBe(1);
    const again = deviceKeys(u.userId, u.deviceId);
    expect((await upload(u, { device_keys: again.deviceKeys })).status).toBe(200);
    expect(await streamRows(u.userId)).toBe(2);
    const q = await query(u, { device_keys: { [u.userId]: [u.deviceId] } });
    expect(q.body.device_keys[u.userId][u.deviceId].keys).toEqual(again.deviceKeys.keys);
  });

  it('refuses device keys for another user or device (M_INVALID_PARAM)', async () => {
    const u = await createUser(t, 'up3');
    const other = await createUser(t, 'up3other');
    for (const dk of [deviceKeys(other.userId, u.deviceId).deviceKeys, deviceKeys(u.userId, 'SOMEOTHERDEVICE').deviceKeys]) {
      const res = await upload(u, { device_keys: dk });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
    expect(await db().selectFrom('e2e_device_keys').select('device_id').where('user_id', '=', u.userId).execute()).toEqual([]);
  });

  it('refuses malformed bodies with M_BAD_JSON / M_INVALID_PARAM, writing nothing', async () => {
    const u = await createUser(t, 'up4');
    const d = deviceKeys(u.userId, u.deviceId);
    const dk = d.deviceKeys as Json;
    const cases: [unknown, string][] = [
      [[], 'M_BAD_JSON'],
      [{ device_keys: 'x' }, 'M_BAD_JSON'],
      [{ device_keys: { ...dk, algorithms: 'm.olm' } }, 'M_BAD_JSON'],
      [{ device_keys: { ...dk, keys: { a: 1 } } }, 'M_BAD_JSON'],
      [{ device_keys: { ...dk, signatures: { [u.userId]: 'sig' } } }, 'M_BAD_JSON'],
      [{ device_keys: { ...dk, user_id: undefined } }, 'M_BAD_JSON'],
      [{ device_keys: { ...dk, device_id: 5 } }, 'M_BAD_JSON'],
      [{ one_time_keys: [] }, 'M_BAD_JSON'],
      [{ one_time_keys: { 'signed_curve25519:A': 12 } }, 'M_BAD_JSON'],
      [{ one_time_keys: { nocolon: 'abc' } }, 'M_INVALID_PARAM'],
      [{ one_time_keys: { ':A': 'abc' } }, 'M_INVALID_PARAM'],
      [{ fallback_keys: 'x' }, 'M_BAD_JSON'],
      [{ one_time_keys: { 'signed_curve25519:A': 'a\u0000b' } }, 'M_BAD_JSON'],
      // A valid one-time key in a request with a bad part: nothing of it is kept.
      [{ one_time_keys: oneTimeKeys(d, 1), device_keys: { ...dk, algorithms: [1] } }, 'M_BAD_JSON'],
    ];
    for (const [body, errcode] of cases) {
      const res = await upload(u, body);
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status: 400, errcode });
    }
    expect((await upload(u, {})).body).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
    expect(await db().selectFrom('e2e_device_keys').select('device_id').where('user_id', '=', u.userId).execute()).toEqual([]);
  });

  it('needs an access token', async () => {
    const res = await call('POST', `${V3}/keys/upload`, { body: {} });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('counts one-time keys; the same key again is fine, another key under a stored id is refused (400) and nothing of that request is kept', async () => {
    const { u, d } = await userWithKeys('otk1');
    const keys = oneTimeKeys(d, 3);
    expect((await upload(u, { one_time_keys: keys })).body).toEqual({ one_time_key_counts: { signed_curve25519: 3 } });
    // Again, even with other signatures (Synapse compares keys without them).
    const [name, first] = Object.entries(keys)[0] as [string, Json];
    const resigned = { [name]: sign({ key: first.key }, u.userId, 'ed25519:OTHER', d.key) };
    expect((await upload(u, { one_time_keys: keys })).body.one_time_key_counts).toEqual({ signed_curve25519: 3 });
    expect((await upload(u, { one_time_keys: resigned })).body.one_time_key_counts).toEqual({ signed_curve25519: 3 });
    // Plain string keys of another algorithm are counted apart.
    expect((await upload(u, { one_time_keys: { 'curve25519:X1': 'abc', 'curve25519:X2': 'def' } })).body.one_time_key_counts).toEqual({
      signed_curve25519: 3,
      curve25519: 2,
    });
    const clash = await upload(u, {
      one_time_keys: { ...oneTimeKeys(d, 2), [name]: sign({ key: 'ZGlmZmVyZW50' }, u.userId, `ed25519:${u.deviceId}`, d.key) },
      fallback_keys: oneTimeKeys(d, 1, { fallback: true }),
    });
    expect(clash.status).toBe(400);
    expect(clash.body.errcode).toBe('M_UNKNOWN');
    expect((await upload(u, {})).body.one_time_key_counts).toEqual({ signed_curve25519: 3, curve25519: 2 });
    expect(await db().selectFrom('e2e_fallback_keys').select('key_id').where('user_id', '=', u.userId).execute()).toEqual([]);
  });

  it('keeps one fallback key per algorithm, reported unused in /sync until claimed; a new one replaces it (unstable name too)', async () => {
    const { u, d } = await userWithKeys('fb1');
    expect((await sync(u)).device_unused_fallback_key_types).toEqual([]);
    const fb1 = oneTimeKeys(d, 1, { fallback: true });
    expect((await upload(u, { fallback_keys: fb1 })).status).toBe(200);
    expect((await sync(u)).device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    const c = await claim(u, { one_time_keys: { [u.userId]: { [u.deviceId]: 'signed_curve25519' } } });
    expect(c.body.one_time_keys).toEqual({ [u.userId]: { [u.deviceId]: fb1 } });
    expect((await sync(u)).device_unused_fallback_key_types).toEqual([]);
    // The same key again stays used; a new one starts unused.
    expect((await upload(u, { fallback_keys: fb1 })).status).toBe(200);
    expect((await sync(u)).device_unused_fallback_key_types).toEqual([]);
    const fb2 = oneTimeKeys(d, 1, { fallback: true });
    expect((await upload(u, { 'org.matrix.msc2732.fallback_keys': fb2 })).status).toBe(200);
    expect((await sync(u)).device_unused_fallback_key_types).toEqual(['signed_curve25519']);
    const rows = await db().selectFrom('e2e_fallback_keys').select(['key_id', 'used']).where('user_id', '=', u.userId).execute();
    expect(rows).toEqual([{ key_id: Object.keys(fb2)[0]?.split(':')[1], used: false }]);
  });
});

describe('POST /keys/query', () => {
  it('answers all or some devices, {} for a user without keys, and remote users under failures', async () => {
    const { u, d } = await userWithKeys('q1');
    const second = await login(t, 'q1', u.password, { initial_device_display_name: 'Laptop' });
    const d2 = deviceKeys(u.userId, second.body.device_id as string);
    expect((await upload({ accessToken: second.body.access_token as string }, { device_keys: d2.deviceKeys })).status).toBe(200);
    const nokeys = await createUser(t, 'q1nokeys');
    const asker = await createUser(t, 'q1asker');

    const all = await query(asker, { device_keys: { [u.userId]: [], [nokeys.userId]: [], '@someone:localhost:1': [] }, timeout: 10000 });
    expect(all.status).toBe(200);
    expect(Object.keys(all.body.device_keys[u.userId]).sort()).toEqual([u.deviceId, d2.deviceId].sort());
    expect(all.body.device_keys[u.userId][d2.deviceId].unsigned).toEqual({ device_display_name: 'Laptop' });
    expect(all.body.device_keys[nokeys.userId]).toEqual({});
    expect(all.body.device_keys).not.toHaveProperty('@someone:localhost:1');
    expect(all.body.failures).toHaveProperty(['localhost:1']);
    expect(all.body.master_keys).toEqual({});
    expect(all.body.self_signing_keys).toEqual({});
    expect(all.body.user_signing_keys).toEqual({});

    const some = await query(asker, { device_keys: { [u.userId]: [d.deviceId, 'NOSUCHDEVICE'] } });
    expect(Object.keys(some.body.device_keys[u.userId])).toEqual([d.deviceId]);
  });

  it('refuses malformed queries', async () => {
    const u = await createUser(t, 'q2');
    const cases: [unknown, number, string][] = [
      [{}, 400, 'M_MISSING_PARAM'],
      [{ device_keys: [] }, 400, 'M_BAD_JSON'],
      [{ device_keys: { [u.userId]: 'all' } }, 400, 'M_BAD_JSON'],
      [{ device_keys: { [u.userId]: [1] } }, 400, 'M_BAD_JSON'],
      [{ device_keys: { notauser: [] } }, 400, 'M_INVALID_PARAM'],
      [{ device_keys: {}, timeout: 'soon' }, 400, 'M_BAD_JSON'],
      // More than 10,000 users and devices in one query.
      [{ device_keys: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`@u${i}:test.local`, []])) }, 400, 'M_INVALID_PARAM'],
      [{ device_keys: { [u.userId]: Array.from({ length: 10_000 }, (_, i) => `D${i}`) } }, 400, 'M_INVALID_PARAM'],
    ];
    for (const [body, status, errcode] of cases) {
      const res = await query(u, body);
      const what = JSON.stringify(body).slice(0, 100);
      expect({ what, status: res.status, errcode: res.body.errcode }).toEqual({ what, status, errcode });
    }
    expect((await call('POST', `${V3}/keys/query`, { body: { device_keys: {} } })).status).toBe(401);
  });
});

describe('POST /keys/claim', () => {
  it('hands out one-time keys in upload order, each once, then the fallback key; nothing when there is neither', async () => {
    const { u, d } = await userWithKeys('c1');
    const early = oneTimeKeys(d, 2);
    expect((await upload(u, { one_time_keys: early })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 5));
    const late = oneTimeKeys(d, 1);
    expect((await upload(u, { one_time_keys: late })).status).toBe(200);
    const claimer = await createUser(t, 'c1claimer');
    const body = { one_time_keys: { [u.userId]: { [u.deviceId]: 'signed_curve25519' } } };
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await claim(claimer, body);
      expect(res.status).toBe(200);
      expect(res.body.failures).toEqual({});
      const keys = res.body.one_time_keys[u.userId][u.deviceId] as Json;
      expect(Object.keys(keys)).toHaveLength(1);
      const [name, key] = Object.entries(keys)[0] as [string, Json];
      expect(key).toEqual({ ...early, ...late }[name]);
      got.push(name);
    }
    expect(new Set(got.slice(0, 2))).toEqual(new Set(Object.keys(early)));
    expect(got[2]).toBe(Object.keys(late)[0]);
    expect((await upload(u, {})).body.one_time_key_counts).toEqual({ signed_curve25519: 0 });
    // None left, no fallback key: nothing for that device.
    expect((await claim(claimer, body)).body).toEqual({ one_time_keys: {}, failures: {} });
    const fb = oneTimeKeys(d, 1, { fallback: true });
    await upload(u, { fallback_keys: fb });
    for (let i = 0; i < 2; i++) expect((await claim(claimer, body)).body.one_time_keys).toEqual({ [u.userId]: { [u.deviceId]: fb } });
  });

  it('gives each of 5 one-time keys to exactly one of 20 concurrent claims; the others get the fallback key', async () => {
    const { u, d } = await userWithKeys('c2');
    const keys = oneTimeKeys(d, 5);
    const fb = oneTimeKeys(d, 1, { fallback: true });
    await upload(u, { one_time_keys: keys, fallback_keys: fb });
    const claimers = await Promise.all(Array.from({ length: 4 }, (_, i) => createUser(t, `c2claimer${i}`)));
    const body = { one_time_keys: { [u.userId]: { [u.deviceId]: 'signed_curve25519' } } };
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(claimers[i % 4] as TestUser, body)));
    const names = results.map((r) => {
      expect(r.status).toBe(200);
      const got = Object.keys(r.body.one_time_keys[u.userId][u.deviceId]);
      expect(got).toHaveLength(1);
      return got[0] as string;
    });
    const fbName = Object.keys(fb)[0] as string;
    const otks = names.filter((n) => n !== fbName);
    expect(otks.sort()).toEqual(Object.keys(keys).sort());
    expect(names.filter((n) => n === fbName)).toHaveLength(15);
    expect((await upload(u, {})).body.one_time_key_counts).toEqual({ signed_curve25519: 0 });
  });

  it('without a fallback key, concurrent claims beyond the keys get nothing', async () => {
    const { u, d } = await userWithKeys('c3');
    const keys = oneTimeKeys(d, 5);
    await upload(u, { one_time_keys: keys });
    const body = { one_time_keys: { [u.userId]: { [u.deviceId]: 'signed_curve25519' } } };
    const results = await Promise.all(Array.from({ length: 20 }, () => claim(u, body)));
    const names = results.flatMap((r) => Object.keys(r.body.one_time_keys[u.userId]?.[u.deviceId] ?? {}));
    expect(names.sort()).toEqual(Object.keys(keys).sort());
  });

  it('claims for several devices at once; remote users go under failures; bad bodies are refused', async () => {
    const a = await userWithKeys('c4a');
    const b = await userWithKeys('c4b');
    const ka = oneTimeKeys(a.d, 1);
    const kb = oneTimeKeys(b.d, 1);
    await upload(a.u, { one_time_keys: ka });
    await upload(b.u, { one_time_keys: kb });
    const res = await claim(a.u, {
      one_time_keys: {
        [a.u.userId]: { [a.u.deviceId]: 'signed_curve25519' },
        [b.u.userId]: { [b.u.deviceId]: 'signed_curve25519', NODEVICE: 'signed_curve25519' },
        '@x:localhost:1': { D: 'signed_curve25519' },
      },
      timeout: 100,
    });
    expect(res.status).toBe(200);
    expect(res.body.one_time_keys).toEqual({ [a.u.userId]: { [a.u.deviceId]: ka }, [b.u.userId]: { [b.u.deviceId]: kb } });
    expect(Object.keys(res.body.failures)).toEqual(['localhost:1']);
    const cases: [unknown, string][] = [
      [{}, 'M_MISSING_PARAM'],
      [{ one_time_keys: [] }, 'M_BAD_JSON'],
      [{ one_time_keys: { [a.u.userId]: ['x'] } }, 'M_BAD_JSON'],
      [{ one_time_keys: { [a.u.userId]: { D: 5 } } }, 'M_BAD_JSON'],
      [{ one_time_keys: { bad: {} } }, 'M_INVALID_PARAM'],
      [{ one_time_keys: { [a.u.userId]: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`D${i}`, 'signed_curve25519'])) } }, 'M_INVALID_PARAM'],
    ];
    for (const [body, errcode] of cases) {
      const r = await claim(a.u, body);
      const what = JSON.stringify(body).slice(0, 100);
      expect({ what, status: r.status, errcode: r.body.errcode }).toEqual({ what, status: 400, errcode });
    }
  });
});

describe('key counts in /sync', () => {
  it('reports this device’s one-time key count (signed_curve25519 always) and follows claims', async () => {
    const { u, d } = await userWithKeys('s1');
    const first = await sync(u);
    expect(first.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    await upload(u, { one_time_keys: oneTimeKeys(d, 4) });
    const second = await sync(u, { since: first.next_batch as string, timeout: '0' });
    expect(second.device_one_time_keys_count).toEqual({ signed_curve25519: 4 });
    await claim(u, { one_time_keys: { [u.userId]: { [u.deviceId]: 'signed_curve25519' } } });
    // Nothing else changed: the response is empty but for the counts, which are current.
    const third = await sync(u, { since: second.next_batch as string, timeout: '0' });
    expect(third.device_one_time_keys_count).toEqual({ signed_curve25519: 3 });
    expect(third.next_batch).toBe(second.next_batch);
    expect(third.device_lists).toEqual({ changed: [], left: [] });
  });
});

describe('deleting a device', () => {
  it('removes its identity, one-time and fallback keys and records a device-list change, in the same transaction', async () => {
    const { u, d } = await userWithKeys('del1');
    const second = await login(t, 'del1', u.password);
    const token2 = second.body.access_token as string;
    const d2 = deviceKeys(u.userId, second.body.device_id as string);
    await upload({ accessToken: token2 }, { device_keys: d2.deviceKeys, one_time_keys: oneTimeKeys(d2, 3), fallback_keys: oneTimeKeys(d2, 1, { fallback: true }) });
    const before = await streamRows(u.userId);
    const path = `${V3}/devices/${enc(d2.deviceId)}`;
    const first = await call('DELETE', path, { token: u.accessToken, body: {} });
    expect(first.status).toBe(401);
    const done = await call('DELETE', path, { token: u.accessToken, body: { auth: passwordAuth(u, first.body.session as string) } });
    expect(done.status).toBe(200);
    for (const table of ['e2e_device_keys', 'e2e_one_time_keys', 'e2e_fallback_keys'] as const) {
      expect(await db().selectFrom(table).select('device_id').where('user_id', '=', u.userId).where('device_id', '=', d2.deviceId).execute()).toEqual([]);
    }
    const rows = await db().selectFrom('device_lists_stream').select('device_id').where('user_id', '=', u.userId).orderBy('stream_id').execute();
    expect(rows.length).toBe(before + 1);
    expect(rows.at(-1)?.device_id).toBe(d2.deviceId);
    const q = await query(u, { device_keys: { [u.userId]: [] } });
    expect(Object.keys(q.body.device_keys[u.userId])).toEqual([d.deviceId]);
  });

  it('logging out removes the device’s keys too', async () => {
    const { u } = await userWithKeys('del2');
    expect((await call('POST', `${V3}/logout`, { token: u.accessToken, body: {} })).status).toBe(200);
    expect(await db().selectFrom('e2e_device_keys').select('device_id').where('user_id', '=', u.userId).execute()).toEqual([]);
  });
});

describe('an encrypted DM as Element creates it', () => {
  it('createRoom with m.room.encryption in initial_state, trusted_private_chat, is_direct and an invite', async () => {
    const alice = await createUser(t, 'dm-alice');
    const bob = await createUser(t, 'dm-bob');
    const res = await call('POST', `${V3}/createRoom`, {
      token: alice.accessToken,
      body: {
        preset: 'trusted_private_chat',
        visibility: 'private',
        is_direct: true,
        invite: [bob.userId],
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      },
    });
    expect(res.status).toBe(200);
    const roomId = res.body.room_id as string;
    const state = await call('GET', `${V3}/rooms/${enc(roomId)}/state/m.room.encryption/`, { token: alice.accessToken });
    expect(state.body).toEqual({ algorithm: 'm.megolm.v1.aes-sha2' });
    const invite = (await sync(bob)).rooms.invite[roomId];
    const types = (invite.invite_state.events as Json[]).map((e) => e.type);
    expect(types).toContain('m.room.encryption');
    const own = (invite.invite_state.events as Json[]).find((e) => e.type === 'm.room.member' && e.state_key === bob.userId);
    expect(own?.content).toMatchObject({ membership: 'invite', is_direct: true });
    // Trusted private chat: the invitee gets the creator's power level.
    const pl = await call('GET', `${V3}/rooms/${enc(roomId)}/state/m.room.power_levels/`, { token: alice.accessToken });
    expect(pl.body.users).toMatchObject({ [alice.userId]: 100, [bob.userId]: 100 });
  });
});

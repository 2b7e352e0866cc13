/**
 * Cross-signing over HTTP: /keys/device_signing/upload (first upload and
 * identical re-uploads without UIA, replacement behind UIA, key and
 * signature checks) and /keys/signatures/upload (self-signing key over own
 * devices, devices over the master key, user-signing key over other users'
 * master keys; bad signatures in `failures`), with what /keys/query then
 * shows to whom, and the device-list changes they cause.
 */
import { describe, expect, it } from 'vitest';
import { crossSigning, crossSigningKey, deviceKeys, ed25519, sign, signingUpload, type CrossSigning, type TestDevice } from '../helpers/e2e-keys.js';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest, passwordAuth } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;

/** `api` with the body typed loosely, as these tests read deep into it. */
const call = (method: string, path: string, opts: Parameters<typeof api>[3] = {}) => api(t, method, path, opts) as Promise<{ status: number; body: Json; headers: Headers }>;
const t = useTestServer();

const V3 = '/_matrix/client/v3';
const db = () => t.server.ctx.database.db;

const signingUploadReq = (u: { accessToken: string }, body: unknown) => call('POST', `${V3}/keys/device_signing/upload`, { token: u.accessToken, body });
const signaturesReq = (u: { accessToken: string }, body: unknown) => call('POST', `${V3}/keys/signatures/upload`, { token: u.accessToken, body });
const query = (u: { accessToken: string }, users: string[]) =>
  call('POST', `${V3}/keys/query`, { token: u.accessToken, body: { device_keys: Object.fromEntries(users.map((x) => [x, []])) } });

/** A user whose device has keys and who has set up cross-signing (first upload, no UIA). */
async function crossSignedUser(localpart: string): Promise<{ u: TestUser; d: TestDevice; cs: CrossSigning }> {
  const u = await createUser(t, localpart);
  const d = deviceKeys(u.userId, u.deviceId);
  expect((await call('POST', `${V3}/keys/upload`, { token: u.accessToken, body: { device_keys: d.deviceKeys } })).status).toBe(200);
  const cs = crossSigning(u.userId);
  const res = await signingUploadReq(u, signingUpload(cs));
  expect(res.status).toBe(200);
  return { u, d, cs };
}

describe('POST /keys/device_signing/upload', () => {
  it('takes the first keys without UIA, and the very same keys again without UIA', async () => {
    const { u, cs } = await crossSignedUser('cs1');
    const again = await signingUploadReq(u, signingUpload(cs));
    expect(again.status).toBe(200);
    expect(again.body).toEqual({});
    // A subset of the stored keys is the same keys too.
    expect((await signingUploadReq(u, { master_key: cs.masterKey })).status).toBe(200);
    const rows = await db().selectFrom('e2e_cross_signing_keys').select('key_type').where('user_id', '=', u.userId).execute();
    expect(rows.map((r) => r.key_type).sort()).toEqual(['master', 'self_signing', 'user_signing']);
  });

  it('replaces keys only through UIA (m.login.password)', async () => {
    const { u } = await crossSignedUser('cs2');
    const next = crossSigning(u.userId);
    const first = await signingUploadReq(u, signingUpload(next));
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const session = first.body.session as string;
    const wrong = await signingUploadReq(u, { ...signingUpload(next), auth: passwordAuth(u, session, 'not-the-password') });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const done = await signingUploadReq(u, { ...signingUpload(next), auth: passwordAuth(u, session) });
    expect(done.status).toBe(200);
    const q = await query(u, [u.userId]);
    expect(q.body.master_keys[u.userId]).toEqual(next.masterKey);
    expect(q.body.self_signing_keys[u.userId]).toEqual(next.selfSigningKey);
    expect(q.body.user_signing_keys[u.userId]).toEqual(next.userSigningKey);
  });

  it('of two first uploads at once, one wins and the other then needs UIA', async () => {
    const u = await createUser(t, 'csrace');
    const a = crossSigning(u.userId);
    const b = crossSigning(u.userId);
    const [ra, rb] = await Promise.all([signingUploadReq(u, signingUpload(a)), signingUploadReq(u, signingUpload(b))]);
    expect([ra.status, rb.status].sort()).toEqual([200, 401]);
    const winner = ra.status === 200 ? a : b;
    expect((await query(u, [u.userId])).body.master_keys[u.userId]).toEqual(winner.masterKey);
  });

  it('checks that the self- and user-signing keys are signed by the master key (uploaded with them, or stored)', async () => {
    const u = await createUser(t, 'cs3');
    const cs = crossSigning(u.userId);
    const other = ed25519();
    const badSsk = sign(crossSigningKey(u.userId, 'self_signing', cs.selfSigning), u.userId, `ed25519:${cs.master.pub}`, other);
    const res = await signingUploadReq(u, { master_key: cs.masterKey, self_signing_key: badSsk });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_SIGNATURE');
    // Nothing was stored: the master key was refused along with it.
    expect(await db().selectFrom('e2e_cross_signing_keys').select('key_type').where('user_id', '=', u.userId).execute()).toEqual([]);
    // No master key at all.
    const none = await signingUploadReq(u, { self_signing_key: cs.selfSigningKey });
    expect(none.status).toBe(400);
    expect(none.body.errcode).toBe('M_MISSING_PARAM');
    // The master alone, then a self-signing key checked against the stored master (a change, so UIA).
    expect((await signingUploadReq(u, { master_key: cs.masterKey })).status).toBe(200);
    const first = await signingUploadReq(u, { self_signing_key: cs.selfSigningKey });
    expect(first.status).toBe(401);
    const ok = await signingUploadReq(u, { self_signing_key: cs.selfSigningKey, auth: passwordAuth(u, first.body.session as string) });
    expect(ok.status).toBe(200);
    expect((await query(u, [u.userId])).body.self_signing_keys[u.userId]).toEqual(cs.selfSigningKey);
  });

  it('refuses malformed keys', async () => {
    const u = await createUser(t, 'cs4');
    const other = await createUser(t, 'cs4other');
    const k = ed25519();
    const cases: [unknown, number, string][] = [
      [{ master_key: 'x' }, 400, 'M_BAD_JSON'],
      [{ master_key: crossSigningKey(other.userId, 'master', k) }, 400, 'M_INVALID_PARAM'],
      [{ master_key: crossSigningKey(u.userId, 'self_signing', k) }, 400, 'M_INVALID_PARAM'],
      [{ master_key: { user_id: u.userId, usage: ['master'], keys: {} } }, 400, 'M_INVALID_PARAM'],
      [{ master_key: { user_id: u.userId, usage: ['master'], keys: { [`ed25519:${k.pub}`]: k.pub, 'ed25519:x': 'x' } } }, 400, 'M_INVALID_PARAM'],
      [{ master_key: { user_id: u.userId, usage: ['master'], keys: { 'ed25519:other': k.pub } } }, 400, 'M_INVALID_PARAM'],
      [{ master_key: { user_id: u.userId, usage: ['master'], keys: { 'ed25519:abcd': 'abcd' } } }, 400, 'M_INVALID_PARAM'],
      [{ master_key: { ...crossSigningKey(u.userId, 'master', k), signatures: 'x' } }, 400, 'M_BAD_JSON'],
      [[], 400, 'M_BAD_JSON'],
    ];
    for (const [body, status, errcode] of cases) {
      const res = await signingUploadReq(u, body);
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status, errcode });
    }
    expect((await call('POST', `${V3}/keys/device_signing/upload`, { token: u.accessToken })).body.errcode).toBe('M_NOT_JSON');
  });

  it('refuses a key whose public key is one of the user’s device ids (403)', async () => {
    const u = await createUser(t, 'cs5');
    const k = ed25519();
    await t.server.ctx.services.auth.createSession(db(), { userId: u.userId, deviceId: k.pub });
    const res = await signingUploadReq(u, { master_key: crossSigningKey(u.userId, 'master', k) });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });

  it('is not for guests', async () => {
    const g = await createGuest(t);
    const res = await signingUploadReq(g, signingUpload(crossSigning(g.userId)));
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('POST /keys/query and cross-signing keys', () => {
  it('shows master and self-signing keys to everyone, the user-signing key only to its owner', async () => {
    const { u, cs } = await crossSignedUser('qcs1');
    const other = await createUser(t, 'qcs1other');
    const mine = await query(u, [u.userId]);
    expect(mine.body.master_keys).toEqual({ [u.userId]: cs.masterKey });
    expect(mine.body.self_signing_keys).toEqual({ [u.userId]: cs.selfSigningKey });
    expect(mine.body.user_signing_keys).toEqual({ [u.userId]: cs.userSigningKey });
    const theirs = await query(other, [u.userId]);
    expect(theirs.body.master_keys).toEqual({ [u.userId]: cs.masterKey });
    expect(theirs.body.self_signing_keys).toEqual({ [u.userId]: cs.selfSigningKey });
    expect(theirs.body.user_signing_keys).toEqual({});
  });
});

describe('POST /keys/signatures/upload', () => {
  it('stores a self-signing signature over an own device, merged into that device’s keys for everyone', async () => {
    const { u, d, cs } = await crossSignedUser('sig1');
    const sskId = `ed25519:${cs.selfSigning.pub}`;
    const signed = sign(d.deviceKeys, u.userId, sskId, cs.selfSigning);
    const res = await signaturesReq(u, { [u.userId]: { [u.deviceId]: signed } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ failures: {} });
    const other = await createUser(t, 'sig1other');
    for (const asker of [u, other]) {
      const dev = (await query(asker, [u.userId])).body.device_keys[u.userId][u.deviceId];
      expect(dev.signatures[u.userId]).toEqual({
        [`ed25519:${u.deviceId}`]: (d.deviceKeys as Json).signatures[u.userId][`ed25519:${u.deviceId}`],
        [sskId]: signed.signatures[u.userId]?.[sskId],
      });
    }
  });

  it('stores a device’s signature over the user’s master key', async () => {
    const { u, d, cs } = await crossSignedUser('sig2');
    const signed = sign(cs.masterKey, u.userId, `ed25519:${u.deviceId}`, d.key);
    const res = await signaturesReq(u, { [u.userId]: { [cs.master.pub]: signed } });
    expect(res.body).toEqual({ failures: {} });
    const other = await createUser(t, 'sig2other');
    expect((await query(other, [u.userId])).body.master_keys[u.userId]).toEqual(signed);
  });

  it('stores a user-signing signature over another user’s master key, visible only to the signer', async () => {
    const alice = await crossSignedUser('sig3alice');
    const bob = await crossSignedUser('sig3bob');
    const carol = await createUser(t, 'sig3carol');
    const uskId = `ed25519:${alice.cs.userSigning.pub}`;
    const signed = sign(bob.cs.masterKey, alice.u.userId, uskId, alice.cs.userSigning);
    const res = await signaturesReq(alice.u, { [bob.u.userId]: { [bob.cs.master.pub]: signed } });
    expect(res.body).toEqual({ failures: {} });
    expect((await query(alice.u, [bob.u.userId])).body.master_keys[bob.u.userId]).toEqual(signed);
    expect((await query(bob.u, [bob.u.userId])).body.master_keys[bob.u.userId]).toEqual(bob.cs.masterKey);
    expect((await query(carol, [bob.u.userId])).body.master_keys[bob.u.userId]).toEqual(bob.cs.masterKey);
  });

  it('reports bad signatures, unknown devices and mismatched keys in failures, storing the good ones', async () => {
    const alice = await crossSignedUser('sig4alice');
    const bob = await crossSignedUser('sig4bob');
    const { u, d, cs } = alice;
    const sskId = `ed25519:${cs.selfSigning.pub}`;
    const forged = sign(d.deviceKeys, u.userId, sskId, ed25519());
    const good = sign(bob.cs.masterKey, u.userId, `ed25519:${cs.userSigning.pub}`, cs.userSigning);
    const altered = sign({ ...(d.deviceKeys as Json), algorithms: ['m.olm.v1.curve25519-aes-sha2'] }, u.userId, sskId, cs.selfSigning);
    const res = await signaturesReq(u, {
      [u.userId]: {
        [u.deviceId]: forged,
        NOSUCHDEVICE: sign({ ...(d.deviceKeys as Json), device_id: 'NOSUCHDEVICE' }, u.userId, sskId, cs.selfSigning),
      },
      [bob.u.userId]: { [bob.cs.master.pub]: good, [bob.u.deviceId]: sign(bob.d.deviceKeys, u.userId, `ed25519:${cs.userSigning.pub}`, cs.userSigning) },
      '@x:remote.example': { KEY: { user_id: '@x:remote.example' } },
    });
    expect(res.status).toBe(200);
    const failures = res.body.failures as Json;
    expect(failures[u.userId][u.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    expect(failures[u.userId].NOSUCHDEVICE.errcode).toBe('M_NOT_FOUND');
    expect(failures[bob.u.userId][bob.u.deviceId].errcode).toBe('M_INVALID_PARAM');
    expect(failures[bob.u.userId]).not.toHaveProperty([bob.cs.master.pub]);
    expect(failures['@x:remote.example'].KEY.errcode).toBeTypeOf('string');
    for (const f of [failures[u.userId][u.deviceId], failures[u.userId].NOSUCHDEVICE]) expect(f.error).toBeTypeOf('string');
    // The good one was stored.
    expect((await query(u, [bob.u.userId])).body.master_keys[bob.u.userId]).toEqual(good);
    // A key that is not the stored one.
    const mismatch = await signaturesReq(u, { [u.userId]: { [u.deviceId]: altered } });
    expect(mismatch.body.failures[u.userId][u.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    // No signature at all.
    const unsigned = await signaturesReq(u, { [u.userId]: { [u.deviceId]: { ...(d.deviceKeys as Json), signatures: {} } } });
    expect(unsigned.body.failures[u.userId][u.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    // Nothing from these reached the device's keys.
    const dev = (await query(bob.u, [u.userId])).body.device_keys[u.userId][u.deviceId];
    expect(Object.keys(dev.signatures[u.userId])).toEqual([`ed25519:${u.deviceId}`]);
  });

  it('without a self-signing or user-signing key, signatures fail with M_NOT_FOUND', async () => {
    const u = await createUser(t, 'sig5');
    const d = deviceKeys(u.userId, u.deviceId);
    await call('POST', `${V3}/keys/upload`, { token: u.accessToken, body: { device_keys: d.deviceKeys } });
    const bob = await crossSignedUser('sig5bob');
    const k = ed25519();
    const res = await signaturesReq(u, {
      [u.userId]: { [u.deviceId]: sign(d.deviceKeys, u.userId, `ed25519:${k.pub}`, k) },
      [bob.u.userId]: { [bob.cs.master.pub]: sign(bob.cs.masterKey, u.userId, `ed25519:${k.pub}`, k) },
    });
    expect(res.body.failures[u.userId][u.deviceId].errcode).toBe('M_NOT_FOUND');
    expect(res.body.failures[bob.u.userId][bob.cs.master.pub].errcode).toBe('M_NOT_FOUND');
  });

  it('refuses malformed bodies', async () => {
    const u = await createUser(t, 'sig6');
    for (const body of [[], { [u.userId]: 'x' }, { [u.userId]: { DEV: 'x' } }]) {
      const res = await signaturesReq(u, body);
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status: 400, errcode: 'M_BAD_JSON' });
    }
    const res = await signaturesReq(u, { notauser: {} });
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('device-list changes from cross-signing', () => {
  it('a key upload or a signature over a user’s keys shows them in the /sync device_lists of those who share a room', async () => {
    const watcher = await createUser(t, 'dlcs-watcher');
    const owner = await createUser(t, 'dlcs-owner');
    const room = await call('POST', `${V3}/createRoom`, { token: watcher.accessToken, body: { preset: 'public_chat' } });
    const roomId = room.body.room_id as string;
    expect((await call('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/join`, { token: owner.accessToken, body: {} })).status).toBe(200);
    const s0 = await call('GET', `${V3}/sync`, { token: watcher.accessToken });
    const d = deviceKeys(owner.userId, owner.deviceId);
    await call('POST', `${V3}/keys/upload`, { token: owner.accessToken, body: { device_keys: d.deviceKeys } });
    const s1 = await call('GET', `${V3}/sync?since=${s0.body.next_batch as string}&timeout=0`, { token: watcher.accessToken });
    expect(s1.body.device_lists.changed).toEqual([owner.userId]);

    const cs = crossSigning(owner.userId);
    expect((await signingUploadReq(owner, signingUpload(cs))).status).toBe(200);
    const s2 = await call('GET', `${V3}/sync?since=${s1.body.next_batch as string}&timeout=0`, { token: watcher.accessToken });
    expect(s2.body.device_lists.changed).toEqual([owner.userId]);

    const signed = sign(d.deviceKeys, owner.userId, `ed25519:${cs.selfSigning.pub}`, cs.selfSigning);
    expect((await signaturesReq(owner, { [owner.userId]: { [owner.deviceId]: signed } })).body).toEqual({ failures: {} });
    const s3 = await call('GET', `${V3}/sync?since=${s2.body.next_batch as string}&timeout=0`, { token: watcher.accessToken });
    expect(s3.body.device_lists.changed).toEqual([owner.userId]);
    // Nothing more since.
    const s4 = await call('GET', `${V3}/sync?since=${s3.body.next_batch as string}&timeout=0`, { token: watcher.accessToken });
    expect(s4.body.device_lists).toEqual({ changed: [], left: [] });
  });
});

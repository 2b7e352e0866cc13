/**
 * Cross-signing between two Axon servers over HTTPS on the loopback: alice
 * on A sees bob's (B) master and self-signing keys and his device signed by
 * them, never his user-signing key; alice's user-signing key can sign bob's
 * master key (A asks B for it, as Synapse does), and that signature is seen
 * by alice alone and stays on A; when bob replaces his keys, alice's sync
 * names him in `device_lists.changed` and she gets the new ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossSigning, sign, signingUpload, deviceKeys, ed25519, type CrossSigning, type TestDevice } from '../helpers/e2e-keys.js';
import { createRoomOn, membersOn, startFederationPair, type FederationPair, type FederationServer } from '../helpers/federation.js';
import { passwordAuth } from '../helpers/sessions.js';
import { until } from '../helpers/until.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

let p: FederationPair;
let bobDevice: TestDevice;
let bobCs: CrossSigning;
let aliceCs: CrossSigning;

const query = async (t: FederationServer, u: TestUser, users: string[]): Promise<Json> => {
  const res = await api(t.test, 'POST', `${V3}/keys/query`, { token: u.accessToken, body: { device_keys: Object.fromEntries(users.map((x) => [x, []])) } });
  expect(res.status).toBe(200);
  return res.body as Json;
};

async function crossSign(t: FederationServer, u: TestUser): Promise<{ d: TestDevice; cs: CrossSigning }> {
  const d = deviceKeys(u.userId, u.deviceId);
  expect((await api(t.test, 'POST', `${V3}/keys/upload`, { token: u.accessToken, body: { device_keys: d.deviceKeys } })).status).toBe(200);
  const cs = crossSigning(u.userId);
  expect((await api(t.test, 'POST', `${V3}/keys/device_signing/upload`, { token: u.accessToken, body: signingUpload(cs) })).status).toBe(200);
  return { d, cs };
}

beforeAll(async () => {
  p = await startFederationPair();
  const roomId = await createRoomOn(p.a, p.alice, { preset: 'public_chat' });
  expect((await api(p.b.test, 'POST', `${V3}/join/${enc(roomId)}`, { token: p.bob.accessToken, body: {} })).status).toBe(200);
  await until(async () => (await membersOn(p.a, p.alice, roomId))[p.bob.userId] === 'join');
  ({ d: bobDevice, cs: bobCs } = await crossSign(p.b, p.bob));
  // Bob signs his own device with his self-signing key.
  const signed = sign(bobDevice.deviceKeys, p.bob.userId, `ed25519:${bobCs.selfSigning.pub}`, bobCs.selfSigning);
  const up = await api(p.b.test, 'POST', `${V3}/keys/signatures/upload`, { token: p.bob.accessToken, body: { [p.bob.userId]: { [p.bob.deviceId]: signed } } });
  expect(up.body).toEqual({ failures: {} });
  ({ cs: aliceCs } = await crossSign(p.a, p.alice));
}, 90_000);

afterAll(async () => {
  await p?.close();
});

describe('another server’s cross-signing keys', () => {
  it('are seen with the device signed by the self-signing key, and without the user-signing key', async () => {
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.failures).toEqual({});
    expect(q.master_keys[p.bob.userId]).toEqual(bobCs.masterKey);
    expect(q.self_signing_keys[p.bob.userId]).toEqual(bobCs.selfSigningKey);
    expect(q.user_signing_keys?.[p.bob.userId]).toBeUndefined();
    const dev = q.device_keys[p.bob.userId][p.bob.deviceId];
    expect(dev.keys).toEqual(bobDevice.deviceKeys.keys);
    expect(Object.keys(dev.signatures[p.bob.userId]).sort()).toEqual([`ed25519:${bobCs.selfSigning.pub}`, `ed25519:${p.bob.deviceId}`].sort());
  });

  it('take alice’s signature over bob’s master key, shown to alice only and kept on her server', async () => {
    const uskId = `ed25519:${aliceCs.userSigning.pub}`;
    const signed = sign(structuredClone(bobCs.masterKey), p.alice.userId, uskId, aliceCs.userSigning);
    const res = await api(p.a.test, 'POST', `${V3}/keys/signatures/upload`, { token: p.alice.accessToken, body: { [p.bob.userId]: { [bobCs.master.pub]: signed } } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ failures: {} });

    const hers = await query(p.a, p.alice, [p.bob.userId]);
    expect(hers.master_keys[p.bob.userId].signatures[p.alice.userId]).toEqual({ [uskId]: (signed.signatures as Json)[p.alice.userId][uskId] });
    // Another user of A, and bob on B, see bob's master key without it.
    const carol = await createUser(p.a.test, 'carol');
    expect((await query(p.a, carol, [p.bob.userId])).master_keys[p.bob.userId]).toEqual(bobCs.masterKey);
    expect((await query(p.b, p.bob, [p.bob.userId])).master_keys[p.bob.userId]).toEqual(bobCs.masterKey);
  });

  it('refuse a signature that does not verify, or over a key bob does not have', async () => {
    const uskId = `ed25519:${aliceCs.userSigning.pub}`;
    const forged = sign(structuredClone(bobCs.masterKey), p.alice.userId, uskId, ed25519());
    const wrongKey = ed25519().pub;
    const res = await api(p.a.test, 'POST', `${V3}/keys/signatures/upload`, {
      token: p.alice.accessToken,
      body: {
        [p.bob.userId]: {
          [bobCs.master.pub]: forged,
          [wrongKey]: sign({ ...bobCs.masterKey, keys: { [`ed25519:${wrongKey}`]: wrongKey } }, p.alice.userId, uskId, aliceCs.userSigning),
        },
      },
    });
    expect(res.status).toBe(200);
    const failures = (res.body as Json).failures;
    expect(failures[p.bob.userId][bobCs.master.pub].errcode).toBe('M_INVALID_SIGNATURE');
    expect(failures[p.bob.userId][wrongKey].errcode).toBe('M_INVALID_PARAM');
  });

  it('when replaced, name bob in alice’s device_lists.changed, and the new keys are seen', async () => {
    const since = (await api(p.a.test, 'GET', `${V3}/sync?timeout=0`, { token: p.alice.accessToken })).body.next_batch as string;
    const next = crossSigning(p.bob.userId);
    const first = await api(p.b.test, 'POST', `${V3}/keys/device_signing/upload`, { token: p.bob.accessToken, body: signingUpload(next) });
    expect(first.status).toBe(401);
    const done = await api(p.b.test, 'POST', `${V3}/keys/device_signing/upload`, {
      token: p.bob.accessToken,
      body: { ...signingUpload(next), auth: passwordAuth(p.bob, first.body.session as string) },
    });
    expect(done.status).toBe(200);
    await until(async () => {
      const s = await api(p.a.test, 'GET', `${V3}/sync?timeout=0&since=${enc(since)}`, { token: p.alice.accessToken });
      return (((s.body as Json).device_lists?.changed ?? []) as string[]).includes(p.bob.userId);
    });
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.master_keys[p.bob.userId]).toEqual(next.masterKey);
    expect(q.self_signing_keys[p.bob.userId]).toEqual(next.selfSigningKey);
  });
});

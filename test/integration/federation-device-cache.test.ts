/**
 * The cache of another server's users' device lists, between two Axon
 * servers over HTTPS on the loopback: alice (A) shares a room with bob
 * (B). A's first /keys/query for bob fetches his whole list
 * (/user/devices) and keeps it; the next ones ask B nothing. Bob's new
 * device, and his self-signing key's signature over it, reach A's cache
 * through B's m.device_list_update (applied in place, no fetch); an update whose prev_id A does not hold marks the list
 * stale and A fetches it again; his new cross-signing keys come with
 * m.signing_key_update. With B down, A still answers bob's keys from the
 * cache; once no user of A shares a room with bob, A forgets his list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestDeviceListChange } from '../../src/storage/device-lists.js';
import { cachedRemoteKeys, cachedRemoteUsers } from '../../src/storage/remote-device-cache.js';
import { crossSigning, deviceKeys, sign, signingUpload, type CrossSigning, type TestDevice } from '../helpers/e2e-keys.js';
import { createRoomOn, membersOn, signedFederationRequest, startFederationPair, type FederationPair, type FederationServer } from '../helpers/federation.js';
import { signIn } from '../helpers/rooms.js';
import { passwordAuth } from '../helpers/sessions.js';
import { until } from '../helpers/until.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

let p: FederationPair;
let roomId: string;
let bobDevice: TestDevice;
let bobCs: CrossSigning;
let bob2: TestUser;

const query = async (t: FederationServer, u: TestUser, users: string[]): Promise<Json> => {
  const res = await api(t.test, 'POST', `${V3}/keys/query`, { token: u.accessToken, body: { device_keys: Object.fromEntries(users.map((x) => [x, []])) } });
  expect(res.status).toBe(200);
  return res.body as Json;
};
const cache = () => p.a.test.server.ctx.services.remoteDevices;
const aDb = () => p.a.test.server.ctx.database.db;
const held = async () => (await cachedRemoteUsers(aDb(), [p.bob.userId])).get(p.bob.userId);

async function upload(u: TestUser): Promise<TestDevice> {
  const d = deviceKeys(u.userId, u.deviceId);
  expect((await api(p.b.test, 'POST', `${V3}/keys/upload`, { token: u.accessToken, body: { device_keys: d.deviceKeys } })).status).toBe(200);
  return d;
}

beforeAll(async () => {
  p = await startFederationPair();
  roomId = await createRoomOn(p.a, p.alice, { preset: 'public_chat' });
  expect((await api(p.b.test, 'POST', `${V3}/join/${enc(roomId)}`, { token: p.bob.accessToken, body: {} })).status).toBe(200);
  await until(async () => (await membersOn(p.a, p.alice, roomId))[p.bob.userId] === 'join');
  bobDevice = await upload(p.bob);
  bobCs = crossSigning(p.bob.userId);
  expect((await api(p.b.test, 'POST', `${V3}/keys/device_signing/upload`, { token: p.bob.accessToken, body: signingUpload(bobCs) })).status).toBe(200);
  const signed = sign(bobDevice.deviceKeys, p.bob.userId, `ed25519:${bobCs.selfSigning.pub}`, bobCs.selfSigning);
  const up = await api(p.b.test, 'POST', `${V3}/keys/signatures/upload`, { token: p.bob.accessToken, body: { [p.bob.userId]: { [p.bob.deviceId]: signed } } });
  expect(up.body).toEqual({ failures: {} });
  // A second device, without keys yet.
  bob2 = await signIn(p.b.test, p.bob);
}, 90_000);

afterAll(async () => {
  await p?.close();
});

describe('the remote device-list cache', () => {
  it('is filled by the first query (from /user/devices), and the next query asks B nothing', async () => {
    expect(await held()).toBeUndefined();
    const before = { ...cache().counts };
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.failures).toEqual({});
    expect(Object.keys(q.device_keys[p.bob.userId])).toEqual([p.bob.deviceId]);
    const dev = q.device_keys[p.bob.userId][p.bob.deviceId];
    expect(dev.keys).toEqual(bobDevice.deviceKeys.keys);
    expect(Object.keys(dev.signatures[p.bob.userId]).sort()).toEqual([`ed25519:${bobCs.selfSigning.pub}`, `ed25519:${p.bob.deviceId}`].sort());
    expect(q.master_keys[p.bob.userId]).toEqual(bobCs.masterKey);
    expect(q.self_signing_keys[p.bob.userId]).toEqual(bobCs.selfSigningKey);
    expect(cache().counts.fetched).toBe(before.fetched + 1);

    const row = await held();
    expect(row).toMatchObject({ stale: false, stream_id: await latestDeviceListChange(p.b.test.server.ctx.database.db, p.bob.userId) });
    const { devices } = await cachedRemoteKeys(aDb(), [p.bob.userId]);
    expect(devices.map((d) => d.device_id).sort()).toEqual([p.bob.deviceId, bob2.deviceId].sort());

    expect(await query(p.a, p.alice, [p.bob.userId])).toEqual(q);
    expect(cache().counts.fetched).toBe(before.fetched + 1);
    expect(cache().counts.fetchFailed).toBe(before.fetchFailed);
  });

  it('does not cache a user who shares no room with A’s users: they are asked live', async () => {
    const carol = await createUser(p.b.test, 'carol');
    const d = deviceKeys(carol.userId, carol.deviceId);
    expect((await api(p.b.test, 'POST', `${V3}/keys/upload`, { token: carol.accessToken, body: { device_keys: d.deviceKeys } })).status).toBe(200);
    const before = { ...cache().counts };
    const q = await query(p.a, p.alice, [carol.userId]);
    expect(q.failures).toEqual({});
    expect(q.device_keys[carol.userId][carol.deviceId].keys).toEqual(d.deviceKeys.keys);
    expect((await cachedRemoteUsers(aDb(), [carol.userId])).size).toBe(0);
    expect(cache().counts).toEqual(before);
  });

  it('takes bob’s new device keys from his server’s m.device_list_update, in place', async () => {
    const before = { ...cache().counts };
    const d2 = await upload(bob2);
    await until(async () => (await query(p.a, p.alice, [p.bob.userId])).device_keys[p.bob.userId][bob2.deviceId] !== undefined);
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.device_keys[p.bob.userId][bob2.deviceId].keys).toEqual(d2.deviceKeys.keys);
    expect(cache().counts.applied).toBe(before.applied + 1);
    expect(cache().counts.fetched).toBe(before.fetched);
    expect(cache().counts.resyncs).toBe(before.resyncs);
    expect(await held()).toMatchObject({ stale: false, stream_id: await latestDeviceListChange(p.b.test.server.ctx.database.db, p.bob.userId) });
  });

  it('takes bob’s self-signing signature over his new device from the update B sends for that device', async () => {
    const before = { ...cache().counts };
    const d2 = (await query(p.a, p.alice, [p.bob.userId])).device_keys[p.bob.userId][bob2.deviceId] as Json;
    const { unsigned: _u, ...keys } = d2;
    const sskId = `ed25519:${bobCs.selfSigning.pub}`;
    const signed = sign(keys, p.bob.userId, sskId, bobCs.selfSigning);
    const up = await api(p.b.test, 'POST', `${V3}/keys/signatures/upload`, { token: p.bob.accessToken, body: { [p.bob.userId]: { [bob2.deviceId]: signed } } });
    expect(up.body).toEqual({ failures: {} });
    await until(async () => (await query(p.a, p.alice, [p.bob.userId])).device_keys[p.bob.userId][bob2.deviceId].signatures[p.bob.userId][sskId] !== undefined);
    expect(cache().counts.applied).toBe(before.applied + 1);
    expect(cache().counts.fetched).toBe(before.fetched);
  });

  it('marks the list stale at an update whose prev_id it does not hold, and fetches it again', async () => {
    const before = { ...cache().counts };
    const at = (await held())!.stream_id;
    const fake = deviceKeys(p.bob.userId, 'FAKEDEVICE');
    const edu = {
      edu_type: 'm.device_list_update',
      content: { user_id: p.bob.userId, device_id: 'FAKEDEVICE', stream_id: at + 1000, prev_id: [at + 999], deleted: false, keys: fake.deviceKeys },
    };
    const res = await signedFederationRequest(p.agent, p.b, p.a, 'PUT', `/_matrix/federation/v1/send/gap${Date.now()}`, {
      origin: p.b.serverName,
      origin_server_ts: Date.now(),
      pdus: [],
      edus: [edu],
    });
    expect(res.status).toBe(200);
    await until(async () => cache().counts.fetched > before.fetched && (await held())?.stale === false);
    expect(cache().counts.resyncs).toBe(before.resyncs + 1);
    expect(cache().counts.applied).toBe(before.applied);
    // What B really holds replaced the list: no fake device, B's position.
    expect(await held()).toMatchObject({ stale: false, stream_id: at });
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(Object.keys(q.device_keys[p.bob.userId]).sort()).toEqual([p.bob.deviceId, bob2.deviceId].sort());
  });

  it('takes bob’s new cross-signing keys from m.signing_key_update', async () => {
    const before = { ...cache().counts };
    const next = crossSigning(p.bob.userId);
    const first = await api(p.b.test, 'POST', `${V3}/keys/device_signing/upload`, { token: p.bob.accessToken, body: signingUpload(next) });
    expect(first.status).toBe(401);
    const done = await api(p.b.test, 'POST', `${V3}/keys/device_signing/upload`, {
      token: p.bob.accessToken,
      body: { ...signingUpload(next), auth: passwordAuth(p.bob, first.body.session as string) },
    });
    expect(done.status).toBe(200);
    await until(async () =>
      (await cachedRemoteKeys(aDb(), [p.bob.userId])).crossSigning.some((k) => k.key_type === 'master' && (k.key_json as Json)['keys'][`ed25519:${next.master.pub}`] !== undefined),
    );
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.master_keys[p.bob.userId]).toEqual(next.masterKey);
    expect(q.self_signing_keys[p.bob.userId]).toEqual(next.selfSigningKey);
    expect(cache().counts.fetched).toBe(before.fetched);
    expect(cache().counts.applied).toBe(before.applied + 1);
    bobCs = next;
  });

  it('answers from the cache while B is down', async () => {
    await p.b.test.server.close();
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.failures).toEqual({});
    expect(Object.keys(q.device_keys[p.bob.userId]).sort()).toEqual([p.bob.deviceId, bob2.deviceId].sort());
    expect(q.device_keys[p.bob.userId][p.bob.deviceId].keys).toEqual(bobDevice.deviceKeys.keys);
    expect(q.master_keys[p.bob.userId]).toEqual(bobCs.masterKey);
  });

  it('forgets bob once no user of A shares a room with him (then B is asked, and is down)', async () => {
    expect((await api(p.a.test, 'POST', `${V3}/rooms/${enc(roomId)}/leave`, { token: p.alice.accessToken, body: {} })).status).toBe(200);
    expect(await held()).toBeUndefined();
    expect((await cachedRemoteKeys(aDb(), [p.bob.userId])).devices).toEqual([]);
    const q = await query(p.a, p.alice, [p.bob.userId]);
    expect(q.failures[p.b.serverName]).toBeDefined();
    expect(q.device_keys[p.bob.userId] ?? {}).toEqual({});
  });
});

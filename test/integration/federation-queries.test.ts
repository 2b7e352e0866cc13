/**
 * Two Axon servers over HTTPS on the loopback (`localhost:PORT`, test-CA
 * certificates): the client API asks the other server for its users'
 * profiles and its aliases through the federation query API, signed with
 * X-Matrix and checked against keys the other side fetches itself; and the
 * query API refuses requests that are not signed right.
 */
import { type Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, type SigningKey } from '../../src/core/signing.js';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { startFederationServer, startFederationServers, type FederationServer } from '../helpers/federation.js';
import { deviceKeys, oneTimeKeys } from '../helpers/e2e-keys.js';
import { testCaAgent } from '../helpers/test-ca.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let a: FederationServer;
let b: FederationServer;
let bob: TestUser;
let agent: Agent;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  agent = testCaAgent();
  bob = await createUser(b.test, 'bob');
  await api(b.test, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { token: bob.accessToken, body: { displayname: 'Bob on B' } });
  await api(b.test, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/avatar_url`, { token: bob.accessToken, body: { avatar_url: 'mxc://b/avatar' } });
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await Promise.all([a?.close(), b?.close()]);
});

/** A request to `to`'s federation API, signed as `from` would sign it (or with the key and destination given). */
async function signedGet(
  to: FederationServer,
  uri: string,
  opts: { origin?: string; destination?: string; key?: Pick<SigningKey, 'keyId' | 'privateKey'>; signedUri?: string; auth?: string | null } = {},
) {
  const origin = opts.origin ?? a.serverName;
  const key = opts.key ?? a.test.server.ctx.keys.current;
  const header =
    opts.auth === null
      ? undefined
      : (opts.auth ?? xMatrixAuthorization({ method: 'GET', uri: opts.signedUri ?? uri, origin, destination: opts.destination ?? to.serverName }, key));
  const res = await request(`${to.url}${uri}`, { dispatcher: agent, headers: header === undefined ? {} : { authorization: header } });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describe('the client API asks other servers', () => {
  let alice: TestUser;
  beforeAll(async () => {
    alice = await createUser(a.test, 'alice');
  });

  it("GET /profile of a user on another server answers that server's profile", async () => {
    const res = await api(a.test, 'GET', `/_matrix/client/v3/profile/${enc(bob.userId)}`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ displayname: 'Bob on B', avatar_url: 'mxc://b/avatar' });
    const name = await api(a.test, 'GET', `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { token: alice.accessToken });
    expect(name.body).toEqual({ displayname: 'Bob on B' });
    // B checked A's signature with A's key, which it fetched from A and stored.
    const stored = await b.test.server.ctx.services.keyring.verifyKey(a.serverName, a.test.server.ctx.keys.current.keyId);
    expect(Buffer.from(stored as Uint8Array).equals(Buffer.from(a.test.server.ctx.keys.current.publicKey))).toBe(true);
  });

  it('a user the other server does not have is 404, a server that cannot be reached 502', async () => {
    const missing = await api(a.test, 'GET', `/_matrix/client/v3/profile/${enc(`@nobody:${b.serverName}`)}`, { token: alice.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body['errcode']).toBe('M_NOT_FOUND');
    const down = await api(a.test, 'GET', `/_matrix/client/v3/profile/${enc('@carol:localhost:1')}`, { token: alice.accessToken });
    expect(down.status).toBe(502);
    expect(down.body).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch profile' });
  });

  it("GET /directory/room/{alias} of another server's alias answers its room and servers", async () => {
    const created = await api(b.test, 'POST', '/_matrix/client/v3/createRoom', { token: bob.accessToken, body: { room_alias_name: 'hall', preset: 'public_chat' } });
    expect(created.status).toBe(200);
    const alias = `#hall:${b.serverName}`;
    const res = await api(a.test, 'GET', `/_matrix/client/v3/directory/room/${enc(alias)}`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ room_id: created.body['room_id'], servers: [b.serverName] });
    const missing = await api(a.test, 'GET', `/_matrix/client/v3/directory/room/${enc(`#nope:${b.serverName}`)}`, { token: alice.accessToken });
    expect(missing.status).toBe(404);
    expect(missing.body['errcode']).toBe('M_NOT_FOUND');
  });
});

describe('the query API checks who asks', () => {
  const profileUri = () => `/_matrix/federation/v1/query/profile?user_id=${enc(bob.userId)}`;

  it('answers a request signed by the origin', async () => {
    const res = await signedGet(b, profileUri());
    expect(res).toEqual({ status: 200, body: { displayname: 'Bob on B', avatar_url: 'mxc://b/avatar' } });
    const one = await signedGet(b, `${profileUri()}&field=displayname`);
    expect(one.body).toEqual({ displayname: 'Bob on B' });
  });

  it('refuses a request without an X-Matrix header', async () => {
    const res = await signedGet(b, profileUri(), { auth: null });
    expect(res.status).toBe(401);
    expect(res.body['errcode']).toBe('M_UNAUTHORIZED');
    const bearer = await signedGet(b, profileUri(), { auth: 'Bearer abc' });
    expect(bearer.status).toBe(401);
  });

  it('refuses a signature by a key the origin does not have', async () => {
    const forged = { ...generateSigningKey(), keyId: a.test.server.ctx.keys.current.keyId };
    const res = await signedGet(b, profileUri(), { key: forged });
    expect(res.status).toBe(401);
    expect(res.body['errcode']).toBe('M_UNAUTHORIZED');
  });

  it('refuses a signature over another request, or for another destination', async () => {
    const otherUri = await signedGet(b, profileUri(), { signedUri: `/_matrix/federation/v1/query/profile?user_id=${enc(`@other:${b.serverName}`)}` });
    expect(otherUri.status).toBe(401);
    const otherDest = await signedGet(b, profileUri(), { destination: a.serverName });
    expect(otherDest.status).toBe(401);
    expect(otherDest.body['errcode']).toBe('M_UNAUTHORIZED');
  });

  it('refuses an origin whose keys cannot be had, and a malformed header', async () => {
    const unknown = await signedGet(b, profileUri(), { origin: 'localhost:1' });
    expect(unknown.status).toBe(401);
    expect(unknown.body['errcode']).toBe('M_UNAUTHORIZED');
    const malformed = await signedGet(b, profileUri(), { auth: 'X-Matrix origin=' });
    expect(malformed.status).toBe(401);
  });

  it('checks the query after the signature: a missing user_id is M_MISSING_PARAM, a user of another server 400', async () => {
    const missing = await signedGet(b, '/_matrix/federation/v1/query/profile');
    expect(missing.status).toBe(400);
    expect(missing.body['errcode']).toBe('M_MISSING_PARAM');
    const unsigned = await signedGet(b, '/_matrix/federation/v1/query/profile', { auth: null });
    expect(unsigned.status).toBe(401);
    const foreign = await signedGet(b, `/_matrix/federation/v1/query/profile?user_id=${enc(`@x:${a.serverName}`)}`);
    expect(foreign.status).toBe(400);
    expect(foreign.body['errcode']).toBe('M_INVALID_PARAM');
  });

  it('directory queries answer local aliases only', async () => {
    const res = await signedGet(b, `/_matrix/federation/v1/query/directory?room_alias=${enc(`#hall:${b.serverName}`)}`);
    expect(res.status).toBe(200);
    expect(res.body['servers']).toEqual([b.serverName]);
    const missing = await signedGet(b, `/_matrix/federation/v1/query/directory?room_alias=${enc(`#gone:${b.serverName}`)}`);
    expect(missing.status).toBe(404);
  });
});

/** A POST to `to`'s federation API with a JSON body, signed by A (the body is part of what is signed). */
async function signedPost(to: FederationServer, uri: string, body: Record<string, unknown>, opts: { unsigned?: boolean; signedBody?: Record<string, unknown> } = {}) {
  const key = a.test.server.ctx.keys.current;
  const header = xMatrixAuthorization({ method: 'POST', uri, origin: a.serverName, destination: to.serverName, content: opts.signedBody ?? body }, key);
  const res = await request(`${to.url}${uri}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...(opts.unsigned ? {} : { authorization: header }) },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describe('the user keys API', () => {
  it("answers our users' device keys to a signed query, without display names or other servers' users", async () => {
    const dev = deviceKeys(bob.userId, bob.deviceId);
    const up = await api(b.test, 'POST', '/_matrix/client/v3/keys/upload', { token: bob.accessToken, body: { device_keys: dev.deviceKeys, one_time_keys: oneTimeKeys(dev, 2) } });
    expect(up.status).toBe(200);
    const query = { device_keys: { [bob.userId]: [], [`@x:${a.serverName}`]: [] } };
    const res = await signedPost(b, '/_matrix/federation/v1/user/keys/query', query);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ device_keys: { [bob.userId]: { [bob.deviceId]: { ...dev.deviceKeys, unsigned: {} } } }, master_keys: {}, self_signing_keys: {} });
    // The body is signed: a different one is refused.
    const tampered = await signedPost(b, '/_matrix/federation/v1/user/keys/query', query, { signedBody: { device_keys: {} } });
    expect(tampered.status).toBe(401);
    expect((await signedPost(b, '/_matrix/federation/v1/user/keys/query', query, { unsigned: true })).status).toBe(401);
  });

  it("lists a user's devices with their keys and the latest change's stream_id", async () => {
    const res = await signedGet(b, `/_matrix/federation/v1/user/devices/${enc(bob.userId)}`);
    expect(res.status).toBe(200);
    const stored = await api(b.test, 'POST', '/_matrix/client/v3/keys/query', { token: bob.accessToken, body: { device_keys: { [bob.userId]: [] } } });
    const { unsigned: _u, ...keys } = (stored.body['device_keys'] as Record<string, Record<string, Record<string, unknown>>>)[bob.userId]?.[bob.deviceId] ?? {};
    expect(res.body['user_id']).toBe(bob.userId);
    expect(res.body['stream_id']).toBeGreaterThan(0);
    // No device_display_name: allow_device_name_lookup_over_federation is off by default.
    expect(res.body['devices']).toEqual([{ device_id: bob.deviceId, keys: { ...keys, unsigned: {} } }]);
    const foreign = await signedGet(b, `/_matrix/federation/v1/user/devices/${enc(`@x:${a.serverName}`)}`);
    expect(foreign.status).toBe(400);
    expect((await signedGet(b, `/_matrix/federation/v1/user/devices/${enc(bob.userId)}`, { auth: null })).status).toBe(401);
  });

  it('hands out each one-time key once, then nothing more', async () => {
    const claim = { one_time_keys: { [bob.userId]: { [bob.deviceId]: 'signed_curve25519' } } };
    const seen = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const res = await signedPost(b, '/_matrix/federation/v1/user/keys/claim', claim);
      expect(res.status).toBe(200);
      const got = (res.body['one_time_keys'] as Record<string, Record<string, Record<string, unknown>>>)[bob.userId]?.[bob.deviceId] ?? {};
      expect(Object.keys(got)).toHaveLength(1);
      for (const k of Object.keys(got)) seen.add(k);
    }
    expect(seen.size).toBe(2);
    const none = await signedPost(b, '/_matrix/federation/v1/user/keys/claim', claim);
    expect(none.body).toEqual({ one_time_keys: {} });
  });
});

describe("the client API's /keys/query and /keys/claim ask other servers", () => {
  it("answers a remote user's device keys and claims their one-time keys through their server", async () => {
    const carol = await createUser(b.test, 'carol');
    const dev = deviceKeys(carol.userId, carol.deviceId);
    const otks = oneTimeKeys(dev, 1);
    expect((await api(b.test, 'POST', '/_matrix/client/v3/keys/upload', { token: carol.accessToken, body: { device_keys: dev.deviceKeys, one_time_keys: otks } })).status).toBe(
      200,
    );
    const dave = await createUser(a.test, 'dave');
    const q = await api(a.test, 'POST', '/_matrix/client/v3/keys/query', { token: dave.accessToken, body: { device_keys: { [carol.userId]: [], [dave.userId]: [] } } });
    expect(q.status).toBe(200);
    expect(q.body['failures']).toEqual({});
    const got = (q.body['device_keys'] as Record<string, Record<string, Record<string, unknown>>>)[carol.userId];
    expect(Object.keys(got ?? {})).toEqual([carol.deviceId]);
    const { unsigned: _u, ...keys } = got?.[carol.deviceId] ?? {};
    expect(keys).toEqual(dev.deviceKeys);
    expect((q.body['device_keys'] as Record<string, unknown>)[dave.userId]).toEqual({});

    const c = await api(a.test, 'POST', '/_matrix/client/v3/keys/claim', {
      token: dave.accessToken,
      body: { one_time_keys: { [carol.userId]: { [carol.deviceId]: 'signed_curve25519' } } },
    });
    expect(c.status).toBe(200);
    expect(c.body).toEqual({ one_time_keys: { [carol.userId]: { [carol.deviceId]: otks } }, failures: {} });
  });
});

describe('publicRooms over federation', () => {
  it('is 403 unless allow_public_rooms_over_federation, then lists the published rooms (GET and POST with a filter)', async () => {
    expect((await signedGet(b, '/_matrix/federation/v1/publicRooms')).status).toBe(403);
    const d = await startFederationServer({ yaml: { allow_public_rooms_over_federation: true } });
    try {
      const admin = await createUser(d.test, 'admin', { admin: true });
      const made = await api(d.test, 'POST', '/_matrix/client/v3/createRoom', {
        token: admin.accessToken,
        body: { preset: 'public_chat', visibility: 'public', name: 'Town square' },
      });
      expect(made.status).toBe(200);
      const res = await signedGet(d, '/_matrix/federation/v1/publicRooms?limit=10');
      expect(res.status).toBe(200);
      expect((res.body['chunk'] as { room_id: string; name?: string }[]).map((r) => [r.room_id, r.name])).toEqual([[made.body['room_id'], 'Town square']]);
      const found = await signedPost(d, '/_matrix/federation/v1/publicRooms', { filter: { generic_search_term: 'town' } });
      expect((found.body['chunk'] as unknown[]).length).toBe(1);
      const none = await signedPost(d, '/_matrix/federation/v1/publicRooms', { filter: { generic_search_term: 'harbour' } });
      expect(none.body['chunk']).toEqual([]);
      expect((await signedGet(d, '/_matrix/federation/v1/publicRooms', { auth: null })).status).toBe(401);
      // A's users see D's list through /publicRooms?server=, filtered by POST.
      const alice = await createUser(a.test, 'dirreader');
      const listed = await api(a.test, 'GET', `/_matrix/client/v3/publicRooms?server=${enc(d.serverName)}`, { token: alice.accessToken });
      expect(listed.status).toBe(200);
      expect((listed.body['chunk'] as { room_id: string }[]).map((r) => r.room_id)).toEqual([made.body['room_id']]);
      const filtered = await api(a.test, 'POST', `/_matrix/client/v3/publicRooms?server=${enc(d.serverName)}`, {
        token: alice.accessToken,
        body: { filter: { generic_search_term: 'harbour' } },
      });
      expect(filtered.status).toBe(200);
      expect(filtered.body['chunk']).toEqual([]);
    } finally {
      await d.close();
    }
  });
});

describe('federation_domain_whitelist', () => {
  it('refuses origins not listed with 403 M_FORBIDDEN, without fetching their keys', async () => {
    const c = await startFederationServer({ yaml: { federation_domain_whitelist: ['elsewhere.example'] } });
    try {
      const carol = await createUser(c.test, 'carol');
      const uri = `/_matrix/federation/v1/query/profile?user_id=${enc(carol.userId)}`;
      const res = await signedGet(c, uri);
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ errcode: 'M_FORBIDDEN', error: `Federation denied with ${a.serverName}.` });
      // And it asks no server outside the list.
      const out = await api(c.test, 'GET', `/_matrix/client/v3/profile/${enc(bob.userId)}`, { token: carol.accessToken });
      expect(out.status).toBe(502);
    } finally {
      await c.close();
    }
  });
});

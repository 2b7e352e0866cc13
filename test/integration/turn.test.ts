/**
 * GET /_matrix/client/{r0,v3}/voip/turnServer: coturn's REST credentials
 * from a shared secret, the static username/password alternative, guests
 * and turn_allow_guests, and `{}` when TURN is not configured.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnCredentials } from '../../src/services/turn.js';
import { useServerWith } from '../helpers/rooms.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const SECRET = 'turn-shared-secret-for-tests';
const URIS = ['turn:turn.test.local:3478?transport=udp', 'turn:turn.test.local:3478?transport=tcp', 'turns:turn.test.local:5349?transport=tcp'];

/** A guest account with a signed-in device, made the way guest registration would. */
async function createGuest(t: TestServer, localpart: string): Promise<{ userId: string; accessToken: string }> {
  const { accounts, auth } = t.server.ctx.services;
  const db = t.server.ctx.database.db;
  if (!(await accounts.createUser(db, { localpart, isGuest: true }))) throw new Error('guest exists');
  const userId = accounts.userId(localpart);
  const session = await auth.createSession(db, { userId });
  return { userId, accessToken: session.access_token };
}

/** An independent HMAC-SHA1 over the username, as coturn computes it. */
const hmacB64 = (secret: string, username: string) => createHmac('sha1', Buffer.from(secret, 'utf8')).update(Buffer.from(username, 'utf8')).digest().toString('base64');

describe('voip/turnServer with a shared secret (read from turn_shared_secret_path)', () => {
  let t: TestServer;
  let alice: TestUser;
  let secretDir: string;

  beforeAll(async () => {
    secretDir = mkdtempSync(join(tmpdir(), 'axon-turn-secret-'));
    // Synapse trims the file; a trailing newline must not become part of the key.
    writeFileSync(join(secretDir, 'turn.secret'), `${SECRET}\n`);
    t = await startTestServer({
      yaml: { turn_uris: URIS, turn_shared_secret_path: join(secretDir, 'turn.secret'), turn_user_lifetime: '1d' },
    });
    alice = await createUser(t, 'alice');
  });
  afterAll(async () => {
    await t?.close();
    if (secretDir) rmSync(secretDir, { recursive: true, force: true });
  });

  it.each(['r0', 'v3'])('mints REST credentials on %s', async (v) => {
    const before = Math.floor(Date.now() / 1000);
    const res = await api(t, 'GET', `/_matrix/client/${v}/voip/turnServer`, { token: alice.accessToken });
    const after = Math.ceil(Date.now() / 1000);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['password', 'ttl', 'uris', 'username']);
    expect(res.body.uris).toEqual(URIS);
    expect(res.body.ttl).toBe(86400);
    const username = res.body.username as string;
    const m = /^(\d+):(@alice:test\.local)$/.exec(username);
    expect(m).not.toBeNull();
    const expiry = Number(m![1]);
    expect(expiry).toBeGreaterThanOrEqual(before + 86400 - 1);
    expect(expiry).toBeLessThanOrEqual(after + 86400);
    // Standard padded base64 of a 20-byte MAC: 28 characters ending in '='.
    expect(res.body.password).toMatch(/^[A-Za-z0-9+/]{27}=$/);
    expect(res.body.password).toBe(hmacB64(SECRET, username));
    expect(res.body.password).not.toBe(hmacB64(`${SECRET}\n`, username));
  });

  it("serves Synapse's legacy api/v1 path too", async () => {
    const res = await api(t, 'GET', '/_matrix/client/api/v1/voip/turnServer', { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.password).toBe(hmacB64(SECRET, res.body.username as string));
  });

  it('accepts the access_token query parameter', async () => {
    const res = await api(t, 'GET', `/_matrix/client/v3/voip/turnServer?access_token=${encodeURIComponent(alice.accessToken)}`);
    expect(res.status).toBe(200);
    expect(res.body.username).toMatch(/^\d+:@alice:test\.local$/);
  });

  it('names the caller in the username, so each user gets their own password', async () => {
    const bob = await createUser(t, 'bob');
    const a = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: alice.accessToken });
    const b = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: bob.accessToken });
    expect(b.body.username).toMatch(/^\d+:@bob:test\.local$/);
    expect(b.body.password).toBe(hmacB64(SECRET, b.body.username as string));
    expect(b.body.password).not.toBe(a.body.password);
  });

  it('gives guests credentials too (turn_allow_guests defaults to true)', async () => {
    expect(t.config.turn_allow_guests).toBe(true);
    const guest = await createGuest(t, '1001');
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: guest.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.username).toMatch(/^\d+:@1001:test\.local$/);
    expect(res.body.password).toBe(hmacB64(SECRET, res.body.username as string));
  });

  it('needs an access token', async () => {
    const none = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
    const bad = await api(t, 'GET', '/_matrix/client/r0/voip/turnServer', { token: 'syt_not_a_real_token' });
    expect(bad.status).toBe(401);
    expect(bad.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('stops answering once the session is signed out', async () => {
    const carol = await createUser(t, 'carol');
    expect((await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: carol.accessToken })).status).toBe(200);
    await t.server.ctx.services.auth.signOut(t.server.ctx.database.db, carol.userId);
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: carol.accessToken });
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('answers other methods with 405 M_UNRECOGNIZED', async () => {
    const res = await api(t, 'POST', '/_matrix/client/v3/voip/turnServer', { token: alice.accessToken, body: {} });
    expect(res.status).toBe(405);
    expect(res.body.errcode).toBe('M_UNRECOGNIZED');
  });
});

describe('voip/turnServer with a static username and password, guests refused', () => {
  const { t, alice } = useServerWith(
    {
      yaml: { turn_uris: [URIS[0]], turn_username: 'turnuser', turn_password: 'turnpass', turn_allow_guests: false, turn_user_lifetime: '90s' },
    },
    'alice',
  );

  it('hands out the static pair with the configured lifetime', async () => {
    const res = await api(t, 'GET', '/_matrix/client/r0/voip/turnServer', { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ username: 'turnuser', password: 'turnpass', ttl: 90, uris: [URIS[0]] });
  });

  it('refuses guests with 403 M_GUEST_ACCESS_FORBIDDEN, as Synapse does', async () => {
    const guest = await createGuest(t, '2002');
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer', { token: guest.accessToken });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    expect(res.body).not.toHaveProperty('username');
  });
});

describe('voip/turnServer when TURN is not configured', () => {
  // turn_uris missing: a shared secret alone is not a TURN setup.
  const { t, alice } = useServerWith({ yaml: { turn_shared_secret: SECRET } }, 'alice');

  it('answers {} on r0 and v3', async () => {
    for (const v of ['r0', 'v3']) {
      const res = await api(t, 'GET', `/_matrix/client/${v}/voip/turnServer`, { token: alice.accessToken });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
    }
  });

  it('still needs an access token', async () => {
    const res = await api(t, 'GET', '/_matrix/client/v3/voip/turnServer');
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('covers every incomplete setup (the rules the endpoint applies)', () => {
    const base = { ...t.config, turn_uris: URIS, turn_user_lifetime_ms: 3_600_000, turn_shared_secret: undefined, turn_username: undefined, turn_password: undefined };
    const now = 1_700_000_000_500;
    // URIs but no credentials, or only half of the static pair.
    expect(turnCredentials(base, '@a:test.local', now)).toBeNull();
    expect(turnCredentials({ ...base, turn_username: 'u' }, '@a:test.local', now)).toBeNull();
    expect(turnCredentials({ ...base, turn_password: 'p' }, '@a:test.local', now)).toBeNull();
    expect(turnCredentials({ ...base, turn_username: '', turn_password: 'p' }, '@a:test.local', now)).toBeNull();
    // Credentials but no URIs.
    expect(turnCredentials({ ...base, turn_uris: [], turn_shared_secret: SECRET }, '@a:test.local', now)).toBeNull();
    // A zero lifetime turns TURN off, as in Synapse.
    expect(turnCredentials({ ...base, turn_user_lifetime_ms: 0, turn_shared_secret: SECRET }, '@a:test.local', now)).toBeNull();
    // The shared secret wins over a static pair; the expiry is whole seconds, rounded down.
    const both = turnCredentials({ ...base, turn_shared_secret: SECRET, turn_username: 'u', turn_password: 'p', turn_user_lifetime_ms: 1_999 }, '@a:test.local', now);
    expect(both).toEqual({ username: '1700000002:@a:test.local', password: hmacB64(SECRET, '1700000002:@a:test.local'), ttl: 1, uris: URIS });
  });
});

/**
 * Shared-secret registration (/_synapse/admin/v1/register) as Synapse's
 * docs/admin_api/register_api.md describes it: nonces, the HMAC, Synapse's
 * errors, and the account it makes — with enable_registration off.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedSecretMac } from '../../src/services/shared-secret-mac.js';
import { useTestServer } from '../helpers/rooms.js';
import { api, createUser } from '../helpers/users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const URL_PATH = '/_synapse/admin/v1/register';
const SECRET = 'a shared secret: ünïcödé too';

/** The MAC as the docs' Python example builds it, written out independently of the server's code. */
function mac(secret: string, nonce: string, user: string, password: string, admin: boolean, userType?: string): string {
  const parts = [nonce, user, password, admin ? 'admin' : 'notadmin'];
  if (userType) parts.push(userType);
  return createHmac('sha1', secret).update(parts.join('\u0000'), 'utf8').digest('hex');
}

async function nonceOf(t: TestServer): Promise<string> {
  const res = await api(t, 'GET', URL_PATH);
  expect(res.status).toBe(200);
  return res.body.nonce as string;
}

const dbOf = (t: TestServer) => t.server.ctx.database.db;
const userRow = (t: TestServer, userId: string) => dbOf(t).selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();

describe('the MAC', () => {
  it("matches the docs' openssl recipe", () => {
    // printf '%s\0%s\0%s\0%s' thisisanonce pepper_roni pizza admin | openssl sha1 -hmac shared_secret
    expect(sharedSecretMac('shared_secret', { nonce: 'thisisanonce', username: 'pepper_roni', password: 'pizza', admin: true })).toBe('48715842ad67d5dc9a9ee938a3bda4fcfae8d7c7');
    // ... with notadmin and a user_type: printf '%s\0%s\0%s\0%s\0%s' ... notadmin bot
    expect(sharedSecretMac('shared_secret', { nonce: 'thisisanonce', username: 'pepper_roni', password: 'pizza', admin: false, userType: 'bot' })).toBe(
      'b269635cb53e1adc15073ae7ffbd000b836b3105',
    );
  });
});

describe('with registration_shared_secret (and enable_registration off)', () => {
  const t = useTestServer({ yaml: { registration_shared_secret: SECRET, user_types: { extra_user_types: ['bridge'] } } });

  it('GET hands out fresh 128-hex-digit nonces', async () => {
    const a = await nonceOf(t);
    const b = await nonceOf(t);
    expect(a).toMatch(/^[0-9a-f]{128}$/);
    expect(b).not.toBe(a);
  });

  it('registers an admin with a display name, and answers as the docs show', async () => {
    const nonce = await nonceOf(t);
    const res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'pepper_roni', displayname: 'Pepper Roni', password: 'pizza', admin: true, mac: mac(SECRET, nonce, 'pepper_roni', 'pizza', true) },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['access_token', 'device_id', 'home_server', 'user_id']);
    expect(res.body).toMatchObject({ user_id: '@pepper_roni:test.local', home_server: 'test.local' });

    const user = await userRow(t, '@pepper_roni:test.local');
    expect(user).toMatchObject({ admin: true, is_guest: false, user_type: null });
    const profile = await dbOf(t).selectFrom('profiles').selectAll().where('user_id', '=', '@pepper_roni:test.local').executeTakeFirstOrThrow();
    expect(profile.displayname).toBe('Pepper Roni');
    expect(await t.server.ctx.services.accounts.checkPassword('@pepper_roni:test.local', 'pizza')).toBe(true);
    const requester = await t.server.ctx.services.auth.authenticate(res.body.access_token as string, '127.0.0.1', 'test');
    expect(requester).toMatchObject({ userId: '@pepper_roni:test.local', isAdmin: true, deviceId: res.body.device_id });
  });

  it('registers a non-admin, lower-casing the username (the MAC covers it as sent); display name defaults to the localpart', async () => {
    const nonce = await nonceOf(t);
    const res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'Mixed.Case', password: 'pw', admin: false, mac: mac(SECRET, nonce, 'Mixed.Case', 'pw', false) },
    });
    expect(res.status).toBe(200);
    expect(res.body.user_id).toBe('@mixed.case:test.local');
    expect(await userRow(t, '@mixed.case:test.local')).toMatchObject({ admin: false });
    const profile = await dbOf(t).selectFrom('profiles').selectAll().where('user_id', '=', '@mixed.case:test.local').executeTakeFirstOrThrow();
    expect(profile.displayname).toBe('mixed.case');
  });

  it('admin is optional (false by default)', async () => {
    const nonce = await nonceOf(t);
    const res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'plain', password: 'pw', mac: mac(SECRET, nonce, 'plain', 'pw', false) } });
    expect(res.status).toBe(200);
    expect(await userRow(t, '@plain:test.local')).toMatchObject({ admin: false });
  });

  it('user_type is covered by the MAC and must be a known type', async () => {
    let nonce = await nonceOf(t);
    let res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'botty', password: 'pw', admin: false, user_type: 'bot', mac: mac(SECRET, nonce, 'botty', 'pw', false, 'bot') },
    });
    expect(res.status).toBe(200);
    expect(await userRow(t, '@botty:test.local')).toMatchObject({ user_type: 'bot' });

    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'bridgey', password: 'pw', user_type: 'bridge', mac: mac(SECRET, nonce, 'bridgey', 'pw', false, 'bridge') },
    });
    expect(res.status).toBe(200);
    expect(await userRow(t, '@bridgey:test.local')).toMatchObject({ user_type: 'bridge' });

    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'weird', password: 'pw', user_type: 'wizard', mac: mac(SECRET, nonce, 'weird', 'pw', false, 'wizard') },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error: 'Invalid user type' });

    // A MAC made without the user_type does not cover a request that has one.
    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'sneaky', password: 'pw', user_type: 'support', mac: mac(SECRET, nonce, 'sneaky', 'pw', false) },
    });
    expect(res.status).toBe(403);
    expect(await userRow(t, '@sneaky:test.local')).toBeUndefined();
  });

  it('a wrong HMAC is 403 "HMAC incorrect", and the nonce is spent', async () => {
    const nonce = await nonceOf(t);
    let res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'mallory', password: 'pw', admin: true, mac: mac('wrong secret', nonce, 'mallory', 'pw', true) },
    });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error: 'HMAC incorrect' });
    // Claiming admin with a notadmin MAC fails too.
    const n2 = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, { body: { nonce: n2, username: 'mallory', password: 'pw', admin: true, mac: mac(SECRET, n2, 'mallory', 'pw', false) } });
    expect(res.status).toBe(403);
    // The first nonce cannot be retried with the right MAC.
    res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'mallory', password: 'pw', admin: true, mac: mac(SECRET, nonce, 'mallory', 'pw', true) } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error: 'unrecognised nonce' });
    expect(await userRow(t, '@mallory:test.local')).toBeUndefined();
    // A MAC that is not even a string is just as wrong.
    const n3 = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, { body: { nonce: n3, username: 'mallory', password: 'pw', mac: 12 } });
    expect(res.status).toBe(403);
  });

  it('a nonce is single-use', async () => {
    const nonce = await nonceOf(t);
    const body = { nonce, username: 'once', password: 'pw', mac: mac(SECRET, nonce, 'once', 'pw', false) };
    expect((await api(t, 'POST', URL_PATH, { body })).status).toBe(200);
    const again = await api(t, 'POST', URL_PATH, { body: { ...body, username: 'once' } });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('unrecognised nonce');
  });

  it('an unknown nonce, or one older than 60 s, is "unrecognised nonce"', async () => {
    let res = await api(t, 'POST', URL_PATH, { body: { nonce: 'made-up', username: 'x', password: 'pw', mac: mac(SECRET, 'made-up', 'x', 'pw', false) } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error: 'unrecognised nonce' });

    const { nonce } = t.server.ctx.services.registration.newNonce(Date.now() - 61_000);
    res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'late', password: 'pw', mac: mac(SECRET, nonce, 'late', 'pw', false) } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unrecognised nonce');
    expect(await userRow(t, '@late:test.local')).toBeUndefined();
  });

  it.each([
    ['nonce', 'nonce must be specified'],
    ['username', 'username must be specified'],
    ['password', 'password must be specified'],
    ['mac', 'mac must be specified'],
  ])('a missing %s is 400 M_BAD_JSON', async (field, error) => {
    const nonce = await nonceOf(t);
    const body: Record<string, unknown> = { nonce, username: 'partial', password: 'pw', mac: mac(SECRET, nonce, 'partial', 'pw', false) };
    delete body[field];
    const res = await api(t, 'POST', URL_PATH, { body });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_BAD_JSON', error });
  });

  it('a username or password that is not a string, too long, or has a NUL is 400', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ username: 5 }, 'Invalid username'],
      [{ username: 'a'.repeat(513) }, 'Invalid username'],
      [{ username: 'nul\u0000name' }, 'Invalid username'],
      [{ password: null }, 'Invalid password'],
      [{ password: 'p'.repeat(513) }, 'Invalid password'],
      [{ password: 'nul\u0000pw' }, 'Invalid password'],
    ];
    for (const [override, error] of cases) {
      const nonce = await nonceOf(t);
      const res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'fine', password: 'pw', mac: 'x', ...override } });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error });
    }
  });

  it('a taken username is 400 M_USER_IN_USE; a bad one M_INVALID_USERNAME', async () => {
    await createUser(t, 'taken');
    for (const [username, errcode] of [
      ['taken', 'M_USER_IN_USE'],
      ['TAKEN', 'M_USER_IN_USE'],
      ['has space', 'M_INVALID_USERNAME'],
      ['4242', 'M_INVALID_USERNAME'],
      ['_bridge_user', 'M_INVALID_USERNAME'],
    ]) {
      const nonce = await nonceOf(t);
      const res = await api(t, 'POST', URL_PATH, { body: { nonce, username, password: 'pw', mac: mac(SECRET, nonce, username as string, 'pw', false) } });
      expect(res.status).toBe(400);
      expect(res.body.errcode).toBe(errcode);
    }
  });

  it('honours inhibit_login, device_id and refresh_token', async () => {
    let nonce = await nonceOf(t);
    let res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'silent', password: 'pw', inhibit_login: true, mac: mac(SECRET, nonce, 'silent', 'pw', false) },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: '@silent:test.local', home_server: 'test.local' });

    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'devvy', password: 'pw', device_id: 'MYDEVICE', refresh_token: true, mac: mac(SECRET, nonce, 'devvy', 'pw', false) },
    });
    expect(res.status).toBe(200);
    expect(res.body.device_id).toBe('MYDEVICE');
    expect(res.body.refresh_token).toMatch(/^syr_/);

    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, {
      body: { nonce, username: 'badrefresh', password: 'pw', refresh_token: 'yes', mac: mac(SECRET, nonce, 'badrefresh', 'pw', false) },
    });
    expect(res.status).toBe(400);
    expect(await userRow(t, '@badrefresh:test.local')).toBeUndefined();
  });

  it('JSON that is not an object is 400 M_BAD_JSON; no body or not JSON is M_NOT_JSON (as Synapse)', async () => {
    for (const [body, errcode] of [
      ['"just a string"', 'M_BAD_JSON'],
      ['null', 'M_BAD_JSON'],
      ['[]', 'M_BAD_JSON'],
      ['', 'M_NOT_JSON'],
      ['{', 'M_NOT_JSON'],
    ] as const) {
      const res = await fetch(`${t.url}${URL_PATH}`, { method: 'POST', body });
      expect({ body, status: res.status, errcode: ((await res.json()) as { errcode: string }).errcode }).toEqual({ body, status: 400, errcode });
    }
  });

  it('the client registration endpoint stays closed meanwhile', async () => {
    const res = await api(t, 'POST', '/_matrix/client/v3/register', { body: { username: 'door', password: 'pw' } });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });
});

describe('with registration_shared_secret_path', () => {
  let t: TestServer;
  let dir: string;
  const fileSecret = 'secret-from-a-file';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'axon-rss-'));
    const path = join(dir, 'registration_secret');
    writeFileSync(path, `${fileSecret}\n`);
    t = await startTestServer({ yaml: { registration_shared_secret_path: path } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("uses the file's contents (trimmed) as the secret", async () => {
    let nonce = await nonceOf(t);
    let res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'fromfile', password: 'pw', mac: mac(fileSecret, nonce, 'fromfile', 'pw', false) } });
    expect(res.status).toBe(200);
    nonce = await nonceOf(t);
    res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'newline', password: 'pw', mac: mac(`${fileSecret}\n`, nonce, 'newline', 'pw', false) } });
    expect(res.status).toBe(403);
  });
});

describe('without a shared secret', () => {
  const t = useTestServer();

  it('POST is 400 "Shared secret registration is not enabled"', async () => {
    const nonce = await nonceOf(t);
    const res = await api(t, 'POST', URL_PATH, { body: { nonce, username: 'nobody', password: 'pw', mac: mac('', nonce, 'nobody', 'pw', false) } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN', error: 'Shared secret registration is not enabled' });
    expect(await userRow(t, '@nobody:test.local')).toBeUndefined();
  });
});

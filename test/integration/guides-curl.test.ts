/**
 * The curl commands that the usual "Synapse on a VPS" guides and Synapse's
 * own docs give, run with the real `curl` binary against a running server,
 * written as the guides write them (no Content-Type on `-d` bodies, the
 * r0 paths, `--header "Authorization: Bearer …"`). Each command is split
 * into arguments like a shell would and run without a shell; only the host
 * (localhost:8008 → the test port) differs, plus `-sS` and a `--write-out`
 * that prints the status after the body.
 */
import { createHmac } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { createUser } from '../helpers/users.js';

const TURN_SECRET = 'guides-turn-secret';
const ADMIN_PW = 'Admin-pw-1234';
const NEW_PW = 'NewUser-pw-5678';

function curlAvailable(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const hasCurl = curlAvailable();
if (!hasCurl) process.stderr.write('skipping the guides curl test: curl is not installed\n');

/** Splits a command line as sh would for the quoting guides use: '…', "…" (with \" and \\), and bare words. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unbalanced ' in ${line}`);
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\' || line[i + 1] === '$')) i++;
        cur += line[i];
      }
      if (i >= line.length) throw new Error(`unbalanced " in ${line}`);
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

interface CurlResult {
  status: number;
  body: Record<string, unknown>;
  text: string;
}

describe.skipIf(!hasCurl)("the guides' curl commands", () => {
  let t: TestServer;
  let base = '';
  let adminToken = '';
  let regToken = '';
  let newUserToken = '';
  let newUserDevice = '';

  /** Runs a guide's curl command line, with `localhost:8008` pointing at the test server. */
  function curl(line: string): Promise<CurlResult> {
    const words = shellWords(line.replaceAll('http://localhost:8008', base));
    if (words[0] !== 'curl') throw new Error(`not a curl command: ${line}`);
    const args = ['-sS', '--max-time', '20', '--write-out', '\n%{http_code}', ...words.slice(1)];
    return new Promise((resolve, reject) => {
      execFile('curl', args, { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${line}\n${stderr}`));
        const nl = stdout.lastIndexOf('\n');
        const text = stdout.slice(0, nl);
        let body: Record<string, unknown> = {};
        try {
          body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
        } catch {
          body = { raw: text };
        }
        resolve({ status: Number(stdout.slice(nl + 1)), body, text });
      });
    });
  }

  const db = () => t.server.ctx.database.db;

  beforeAll(async () => {
    t = await startTestServer({
      yaml: {
        enable_registration: true,
        registration_requires_token: true,
        turn_uris: ['turn:turn.test.local:3478?transport=udp', 'turn:turn.test.local:3478?transport=tcp'],
        turn_shared_secret: TURN_SECRET,
        turn_user_lifetime: '1h',
      },
    });
    // The guides use localhost; the test server listens on 127.0.0.1 only, which curl falls back to.
    base = t.url.replace('127.0.0.1', 'localhost').replace(/\/$/, '');
    // The admin the guides made with register_new_matrix_user.
    await createUser(t, 'admin', { admin: true, password: ADMIN_PW });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('curl http://localhost:8008/_matrix/client/versions', async () => {
    const res = await curl('curl http://localhost:8008/_matrix/client/versions');
    expect(res.status).toBe(200);
    expect(res.body.versions).toEqual(expect.arrayContaining(['r0.6.1', 'v1.1']));
  });

  it('curl -s http://localhost:8008/_matrix/key/v2/server', async () => {
    const res = await curl('curl -s http://localhost:8008/_matrix/key/v2/server');
    expect(res.status).toBe(200);
    expect(res.body.server_name).toBe('test.local');
    expect(Object.keys(res.body.verify_keys as object)[0]).toMatch(/^ed25519:/);
    expect(Object.keys(res.body.signatures as object)).toEqual(['test.local']);
  });

  it('curl http://localhost:8008/.well-known/matrix/client', async () => {
    const res = await curl('curl http://localhost:8008/.well-known/matrix/client');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ 'm.homeserver': { base_url: 'https://test.local/' } });
  });

  it('curl http://localhost:8008/_matrix/client/r0/login (the flows)', async () => {
    const res = await curl('curl http://localhost:8008/_matrix/client/r0/login');
    expect(res.status).toBe(200);
    expect(res.body.flows).toEqual(expect.arrayContaining([{ type: 'm.login.password' }]));
  });

  it('logs in with the legacy "user" field and no Content-Type', async () => {
    const res = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"admin", "password":"${ADMIN_PW}"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe('@admin:test.local');
    expect(res.body.access_token).toEqual(expect.any(String));
    expect(res.body.device_id).toEqual(expect.any(String));
    adminToken = res.body.access_token as string;
  });

  it('logs in with an m.id.user identifier (full user id), with and without Content-Type', async () => {
    const withType = await curl(
      `curl -X POST -H "Content-Type: application/json" -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"@admin:test.local"},"password":"${ADMIN_PW}"}' http://localhost:8008/_matrix/client/v3/login`,
    );
    expect(withType.status, withType.text).toBe(200);
    expect(withType.body.user_id).toBe('@admin:test.local');
    const bare = await curl(
      `curl -XPOST -d '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"admin"},"password":"${ADMIN_PW}","initial_device_display_name":"curl"}' http://localhost:8008/_matrix/client/r0/login`,
    );
    expect(bare.status, bare.text).toBe(200);
    expect(bare.body.access_token).not.toBe(withType.body.access_token);
  });

  it('refuses a wrong password with 403 M_FORBIDDEN', async () => {
    const res = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"admin", "password":"wrong"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });

  it('checks the token with account/whoami', async () => {
    const res = await curl(`curl -H "Authorization: Bearer ${adminToken}" http://localhost:8008/_matrix/client/v3/account/whoami`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.user_id).toBe('@admin:test.local');
  });

  it('curl http://localhost:8008/_synapse/admin/v1/server_version', async () => {
    const res = await curl(`curl --header "Authorization: Bearer ${adminToken}" http://localhost:8008/_synapse/admin/v1/server_version`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.server_version).toEqual(expect.any(String));
    expect(res.body.server_version).not.toBe('');
  });

  it('creates a registration token: POST /_synapse/admin/v1/registration_tokens/new -d \'{"uses_allowed": 1}\'', async () => {
    const res = await curl(`curl --header "Authorization: Bearer ${adminToken}" -X POST http://localhost:8008/_synapse/admin/v1/registration_tokens/new -d '{"uses_allowed": 1}'`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ uses_allowed: 1, pending: 0, completed: 0, expiry_time: null });
    regToken = res.body.token as string;
    expect(regToken).toMatch(/^[A-Za-z0-9._~-]{16}$/);
    const row = await db().selectFrom('registration_tokens').selectAll().where('token', '=', regToken).executeTakeFirst();
    expect(row).toMatchObject({ token: regToken, uses_allowed: 1, expiry_time: null });
  });

  it('refuses the admin API to a non-admin (403 M_FORBIDDEN) and to no token (401 M_MISSING_TOKEN)', async () => {
    const user = await createUser(t, 'plainuser');
    const res = await curl(`curl --header "Authorization: Bearer ${user.accessToken}" -X POST http://localhost:8008/_synapse/admin/v1/registration_tokens/new -d '{}'`);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    const none = await curl('curl http://localhost:8008/_synapse/admin/v1/registration_tokens');
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('lists the registration tokens', async () => {
    const res = await curl(`curl --header "Authorization: Bearer ${adminToken}" http://localhost:8008/_synapse/admin/v1/registration_tokens`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.registration_tokens).toEqual([{ token: regToken, uses_allowed: 1, pending: 0, completed: 0, expiry_time: null }]);
    const valid = await curl(`curl --header "Authorization: Bearer ${adminToken}" "http://localhost:8008/_synapse/admin/v1/registration_tokens?valid=true"`);
    expect((valid.body.registration_tokens as { token: string }[]).map((r) => r.token)).toEqual([regToken]);
  });

  it('checks the token the way Element does (v1 validity)', async () => {
    const ok = await curl(`curl "http://localhost:8008/_matrix/client/v1/register/m.login.registration_token/validity?token=${regToken}"`);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toEqual({ valid: true });
    const bad = await curl('curl "http://localhost:8008/_matrix/client/v1/register/m.login.registration_token/validity?token=nosuchtoken"');
    expect(bad.body).toEqual({ valid: false });
  });

  it('registers with the token through the UIA curl dance, then logs in', async () => {
    // 1. Username and password: 401 with a session and the flows.
    const first = await curl(`curl -XPOST -d '{"username":"newuser", "password":"${NEW_PW}"}' http://localhost:8008/_matrix/client/r0/register`);
    expect(first.status, first.text).toBe(401);
    const session = first.body.session as string;
    expect(session).toEqual(expect.any(String));
    const flows = first.body.flows as { stages: string[] }[];
    // registration_requires_token puts the token stage before Synapse's dummy flow (no email or captcha configured).
    expect(flows).toEqual([{ stages: ['m.login.registration_token', 'm.login.dummy'] }]);
    expect(await db().selectFrom('users').select('user_id').where('user_id', '=', '@newuser:test.local').executeTakeFirst()).toBeUndefined();

    // 2. The registration token.
    const second = await curl(
      `curl -XPOST -d '{"username":"newuser", "password":"${NEW_PW}", "auth": {"type": "m.login.registration_token", "token": "${regToken}", "session": "${session}"}}' http://localhost:8008/_matrix/client/r0/register`,
    );
    // Synapse's flow is token then dummy, so a further stage is asked: m.login.dummy, as the guides show.
    expect(second.status, second.text).toBe(401);
    expect(second.body.completed).toEqual(['m.login.registration_token']);
    expect(second.body.session).toBe(session);
    // The token is now pending for this session (Synapse's accounting).
    const pending = await curl(`curl --header "Authorization: Bearer ${adminToken}" http://localhost:8008/_synapse/admin/v1/registration_tokens/${regToken}`);
    expect(pending.body).toMatchObject({ token: regToken, pending: 1, completed: 0 });
    // 3. The dummy stage; the body from the first request is remembered by the session.
    const final = await curl(`curl -XPOST -d '{"auth": {"type": "m.login.dummy", "session": "${session}"}}' http://localhost:8008/_matrix/client/r0/register`);
    expect(final.status, final.text).toBe(200);
    expect(final.body.user_id).toBe('@newuser:test.local');
    expect(final.body.access_token).toEqual(expect.any(String));
    expect(final.body.device_id).toEqual(expect.any(String));

    const user = await db().selectFrom('users').selectAll().where('user_id', '=', '@newuser:test.local').executeTakeFirstOrThrow();
    expect(user.admin).toBe(false);
    expect(user.is_guest).toBe(false);
    const tok = await db().selectFrom('registration_tokens').selectAll().where('token', '=', regToken).executeTakeFirstOrThrow();
    expect(tok).toMatchObject({ uses_allowed: 1, pending: 0, completed: 1 });

    const login = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"newuser", "password":"${NEW_PW}"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(login.status, login.text).toBe(200);
    expect(login.body.user_id).toBe('@newuser:test.local');
    newUserToken = login.body.access_token as string;
    newUserDevice = login.body.device_id as string;
  });

  it('refuses a used-up token, and registration without one', async () => {
    const first = await curl(`curl -XPOST -d '{"username":"second", "password":"${NEW_PW}"}' http://localhost:8008/_matrix/client/r0/register`);
    expect(first.status).toBe(401);
    const session = first.body.session as string;
    const used = await curl(
      `curl -XPOST -d '{"username":"second", "password":"${NEW_PW}", "auth": {"type": "m.login.registration_token", "token": "${regToken}", "session": "${session}"}}' http://localhost:8008/_matrix/client/r0/register`,
    );
    expect(used.status).toBe(401);
    expect(used.body.errcode).toBe('M_UNAUTHORIZED');
    expect(used.body.completed ?? []).not.toContain('m.login.registration_token');
    // Skipping the token stage does not complete any flow.
    const dummy = await curl(
      `curl -XPOST -d '{"username":"second", "password":"${NEW_PW}", "auth": {"type": "m.login.dummy", "session": "${session}"}}' http://localhost:8008/_matrix/client/r0/register`,
    );
    expect(dummy.status).toBe(401);
    expect(await db().selectFrom('users').select('user_id').where('user_id', '=', '@second:test.local').executeTakeFirst()).toBeUndefined();
    // The exhausted token is listed as invalid.
    const invalid = await curl(`curl --header "Authorization: Bearer ${adminToken}" "http://localhost:8008/_synapse/admin/v1/registration_tokens?valid=false"`);
    expect((invalid.body.registration_tokens as { token: string }[]).map((r) => r.token)).toEqual([regToken]);
  });

  it('lists accounts: /_synapse/admin/v2/users?from=0&limit=10&guests=false', async () => {
    const { accounts, auth } = t.server.ctx.services;
    await accounts.createUser(db(), { localpart: '4242', isGuest: true });
    await auth.createSession(db(), { userId: '@4242:test.local' });
    const res = await curl(`curl --header "Authorization: Bearer ${adminToken}" "http://localhost:8008/_synapse/admin/v2/users?from=0&limit=10&guests=false"`);
    expect(res.status, res.text).toBe(200);
    const users = res.body.users as { name: string; admin: boolean; is_guest: boolean; deactivated: boolean }[];
    expect(users.map((u) => u.name)).toEqual(['@admin:test.local', '@newuser:test.local', '@plainuser:test.local']);
    expect(users[0]).toMatchObject({ name: '@admin:test.local', admin: true, is_guest: false, deactivated: false });
    expect(res.body.total).toBe(3);
    expect(res.body).not.toHaveProperty('next_token');
    // With guests (the default) the guest shows up too; a page of 2 hands out next_token.
    const page = await curl(`curl --header "Authorization: Bearer ${adminToken}" "http://localhost:8008/_synapse/admin/v2/users?from=0&limit=2"`);
    expect(page.body.total).toBe(4);
    expect((page.body.users as unknown[]).length).toBe(2);
    expect(page.body.next_token).toBe('2');
    // The deprecated query-string token works too, as in older guides.
    const q = await curl(`curl "http://localhost:8008/_synapse/admin/v2/users?access_token=${adminToken}&guests=false"`);
    expect(q.status).toBe(200);
    expect(q.body.total).toBe(3);
  });

  it("curl /_synapse/admin/v1/whois/@newuser:test.local shows curl's connection", async () => {
    // Use the new user's token once so that there is a connection to see.
    await curl(`curl -H "Authorization: Bearer ${newUserToken}" http://localhost:8008/_matrix/client/v3/account/whoami`);
    let res: CurlResult | undefined;
    type Devices = Record<string, { sessions: { connections: { ip: string; last_seen: number; user_agent: string }[] }[] }>;
    for (let i = 0; i < 30; i++) {
      res = await curl(`curl --header "Authorization: Bearer ${adminToken}" http://localhost:8008/_synapse/admin/v1/whois/@newuser:test.local`);
      if (res.status === 200 && (res.body.devices as Devices | undefined)?.[newUserDevice]) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(res!.status, res!.text).toBe(200);
    expect(res!.body.user_id).toBe('@newuser:test.local');
    const devices = res!.body.devices as Devices;
    const conns = devices[newUserDevice]!.sessions.flatMap((s) => s.connections);
    expect(conns.some((c) => c.ip === '127.0.0.1' && c.user_agent.startsWith('curl/') && typeof c.last_seen === 'number')).toBe(true);
  });

  it('curl /_matrix/client/r0/voip/turnServer with the token', async () => {
    const res = await curl(`curl --header "Authorization: Bearer ${newUserToken}" http://localhost:8008/_matrix/client/r0/voip/turnServer`);
    expect(res.status).toBe(200);
    expect(res.body.uris).toEqual(['turn:turn.test.local:3478?transport=udp', 'turn:turn.test.local:3478?transport=tcp']);
    expect(res.body.ttl).toBe(3600);
    const username = res.body.username as string;
    expect(username).toMatch(/^\d+:@newuser:test\.local$/);
    expect(res.body.password).toBe(createHmac('sha1', TURN_SECRET).update(username).digest('base64'));
    const anon = await curl('curl http://localhost:8008/_matrix/client/r0/voip/turnServer');
    expect(anon.status).toBe(401);
    expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('queries, creates and modifies accounts: GET and PUT /_synapse/admin/v2/users/<user_id>', async () => {
    const q = await curl(`curl --header "Authorization: Bearer ${adminToken}" -X GET http://localhost:8008/_synapse/admin/v2/users/@newuser:test.local`);
    expect(q.status, q.text).toBe(200);
    expect(q.body).toMatchObject({ name: '@newuser:test.local', admin: false, deactivated: false, is_guest: false, displayname: 'newuser' });
    expect(q.body.creation_ts).toEqual(expect.any(Number));

    const made = await curl(
      `curl --header "Authorization: Bearer ${adminToken}" -X PUT http://localhost:8008/_synapse/admin/v2/users/@made:test.local -d '{"password": "Made-pw-1111", "displayname": "Made By Admin", "admin": false}'`,
    );
    expect(made.status, made.text).toBe(201);
    expect(made.body).toMatchObject({ name: '@made:test.local', displayname: 'Made By Admin', admin: false });
    const login = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"made", "password":"Made-pw-1111"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(login.status, login.text).toBe(200);

    const promoted = await curl(`curl --header "Authorization: Bearer ${adminToken}" -X PUT http://localhost:8008/_synapse/admin/v2/users/@made:test.local -d '{"admin": true}'`);
    expect(promoted.status, promoted.text).toBe(200);
    expect(promoted.body.admin).toBe(true);
    const row = await db().selectFrom('users').select(['admin']).where('user_id', '=', '@made:test.local').executeTakeFirstOrThrow();
    expect(row.admin).toBe(true);
  });

  it('resets a password: POST /_synapse/admin/v1/reset_password/<user_id>', async () => {
    const res = await curl(
      `curl --header "Authorization: Bearer ${adminToken}" -X POST http://localhost:8008/_synapse/admin/v1/reset_password/@made:test.local -d '{"new_password": "Made-pw-2222", "logout_devices": true}'`,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({});
    const old = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"made", "password":"Made-pw-1111"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(old.status).toBe(403);
    const fresh = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"made", "password":"Made-pw-2222"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(fresh.status, fresh.text).toBe(200);
  });

  it('deactivates an account: POST /_synapse/admin/v1/deactivate/<user_id> -d \'{"erase": true}\'', async () => {
    const res = await curl(`curl --header "Authorization: Bearer ${adminToken}" -X POST http://localhost:8008/_synapse/admin/v1/deactivate/@made:test.local -d '{"erase": true}'`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ id_server_unbind_result: 'success' });
    const row = await db().selectFrom('users').select(['deactivated', 'erased']).where('user_id', '=', '@made:test.local').executeTakeFirstOrThrow();
    expect(row).toEqual({ deactivated: true, erased: true });
    const login = await curl(`curl -XPOST -d '{"type":"m.login.password", "user":"made", "password":"Made-pw-2222"}' "http://localhost:8008/_matrix/client/r0/login"`);
    expect(login.status).toBe(403);
  });

  it('logs out: curl -X POST -H "Authorization: Bearer …" /_matrix/client/v3/logout', async () => {
    const res = await curl(`curl -X POST -H "Authorization: Bearer ${newUserToken}" http://localhost:8008/_matrix/client/v3/logout`);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({});
    const after = await curl(`curl -H "Authorization: Bearer ${newUserToken}" http://localhost:8008/_matrix/client/r0/voip/turnServer`);
    expect(after.status).toBe(401);
    expect(after.body.errcode).toBe('M_UNKNOWN_TOKEN');
  });
});

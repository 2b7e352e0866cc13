/**
 * register_new_matrix_user as an operator runs it: the built script
 * (dist/src/cli/register-new-matrix-user.js) as a child process against a
 * server started here, answers piped on stdin as a script would.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../helpers/ports.js';
import { api } from '../helpers/users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const CLI_JS = fileURLToPath(new URL('../../dist/src/cli/register-new-matrix-user.js', import.meta.url));
const SECRET = 'cli-test-shared-secret';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  output: string;
}

function runCli(args: string[], stdin = ''): Promise<Run> {
  if (!existsSync(CLI_JS)) throw new Error(`${CLI_JS} is missing: run 'npm run build' (npm test does it first)`);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI_JS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env } });
    let stdout = '';
    let stderr = '';
    let output = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      output += d.toString('utf8');
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      output += d.toString('utf8');
    });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`register_new_matrix_user timed out; output:\n${output}`));
    }, 30_000);
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, output });
    });
    proc.stdin.end(stdin);
  });
}

let t: TestServer;
let dir: string;
let configPath: string;

const userRow = (userId: string) => t.server.ctx.database.db.selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();

async function canLogIn(user: string, password: string): Promise<boolean> {
  const res = await api(t, 'POST', '/_matrix/client/v3/login', {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password },
  });
  return res.status === 200 && typeof res.body.access_token === 'string';
}

beforeAll(async () => {
  t = await startTestServer({ yaml: { registration_shared_secret: SECRET } });
  dir = mkdtempSync(join(tmpdir(), 'axon-rnmu-'));
  // The server's own homeserver.yaml, as an operator passes it with -c.
  configPath = join(t.dir, 'homeserver.yaml');
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('register_new_matrix_user', () => {
  it("prompts for what is missing (the guides' transcript) and makes an admin who can log in", async () => {
    const run = await runCli(['-c', configPath, t.url], 'registration-bot\nbot password\nbot password\nyes\n');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n').map((l) => l.trim());
    expect(lines).toEqual([
      `New user localpart [${userInfo().username}]:`,
      'Password:',
      'Confirm password:',
      'Make admin [no]:',
      'Sending registration request...',
      'Success!',
      '',
    ]);
    expect(run.stdout).not.toContain('bot password');
    const user = await userRow('@registration-bot:test.local');
    expect(user).toMatchObject({ admin: true, deactivated: false });
    expect(await t.server.ctx.services.accounts.checkPassword('@registration-bot:test.local', 'bot password')).toBe(true);
    expect(await canLogIn('registration-bot', 'bot password')).toBe(true);
  });

  it('takes the OS user name as the default localpart and "no" as the default for admin', async () => {
    const me = userInfo().username.toLowerCase();
    const run = await runCli(['-k', SECRET, t.url], '\npw1\npw1\n\n');
    if (!/^[a-z0-9._=\-/+]+$/.test(me) || /^\d+$/.test(me)) {
      // An OS user name the server would refuse as a localpart: the server's error is shown.
      expect(run.code).toBe(1);
      return;
    }
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Success!');
    expect(await userRow(`@${me}:test.local`)).toMatchObject({ admin: false });
  });

  it('asks nothing when the flags say it all (-u -p -a -k)', async () => {
    const run = await runCli(['-u', 'flagged', '-p', 'flag pass', '-a', '-k', SECRET, t.url]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('Sending registration request...\nSuccess!\n');
    expect(await userRow('@flagged:test.local')).toMatchObject({ admin: true });
    expect(await canLogIn('flagged', 'flag pass')).toBe(true);
  });

  it('accepts --user=, --password-file, --no-admin, -t user_type and registration_shared_secret_path in the config', async () => {
    const secretFile = join(dir, 'rss');
    writeFileSync(secretFile, 'secret-via-path\n');
    const pwFile = join(dir, 'pw');
    writeFileSync(pwFile, 'from a file\n');
    const cfg = join(dir, 'path-secret.yaml');
    writeFileSync(cfg, stringify({ server_name: 'test.local', registration_shared_secret_path: secretFile }));
    // The server checks against its own secret; the CLI must have read the file's.
    const other = await startTestServer({ yaml: { registration_shared_secret: 'secret-via-path' } });
    try {
      const run = await runCli(['--user=botuser', '--password-file', pwFile, '--no-admin', '-t', 'bot', '-c', cfg, other.url]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Success!');
      const row = await other.server.ctx.database.db.selectFrom('users').selectAll().where('user_id', '=', '@botuser:test.local').executeTakeFirst();
      expect(row).toMatchObject({ admin: false, user_type: 'bot' });
      expect(await other.server.ctx.services.accounts.checkPassword('@botuser:test.local', 'from a file')).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('finds the server URL from the client listener in the config when none is given', async () => {
    const port = new URL(t.url).port;
    const cfg = join(dir, 'listener.yaml');
    writeFileSync(
      cfg,
      stringify({
        registration_shared_secret: SECRET,
        listeners: [{ port: Number(port), type: 'http', tls: false, bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] }],
      }),
    );
    const run = await runCli(['-u', 'vialistener', '-p', 'pw', '--no-admin', '-c', cfg]);
    expect(run.output).toContain('Success!');
    expect(run.code).toBe(0);
    expect(await userRow('@vialistener:test.local')).toBeDefined();
  });

  it('stops when the passwords do not match, creating nothing', async () => {
    const run = await runCli(['-c', configPath, t.url], 'mismatch\none\ntwo\n');
    expect(run.code).toBe(1);
    expect(run.output).toContain('Passwords do not match');
    expect(run.output).not.toContain('Sending registration request');
    expect(await userRow('@mismatch:test.local')).toBeUndefined();
  });

  it('refuses a blank password', async () => {
    const run = await runCli(['-u', 'blank', '-k', SECRET, t.url], '\n');
    expect(run.code).toBe(1);
    expect(run.output).toContain('Password cannot be blank.');
  });

  it("shows the server's error for a taken user, unless --exists-ok", async () => {
    const run = await runCli(['-u', 'flagged', '-p', 'x', '--no-admin', '-k', SECRET, t.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERROR! Received 400 Bad Request');
    expect(run.stderr).toContain('User ID already taken.');

    const ok = await runCli(['-u', 'flagged', '-p', 'x', '--no-admin', '--exists-ok', '-k', SECRET, t.url]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('User already exists. Skipping.');
  });

  it('reports a wrong shared secret (403 HMAC incorrect)', async () => {
    const run = await runCli(['-u', 'intruder', '-p', 'x', '-a', '-k', 'not the secret', t.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ERROR! Received 403 Forbidden');
    expect(run.stderr).toContain('HMAC incorrect');
    expect(await userRow('@intruder:test.local')).toBeUndefined();
  });

  it('reports a server that cannot be reached', async () => {
    const port = await freePort();
    const run = await runCli(['-u', 'lost', '-p', 'x', '--no-admin', '-k', SECRET, `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`ERROR! Could not reach http://127.0.0.1:${port}/_synapse/admin/v1/register`);
    expect(run.stderr).toMatch(/ECONNREFUSED/);
  });

  it('needs -c or -k (usage error, exit 2), and not -a with --no-admin', async () => {
    let run = await runCli(['-u', 'x', '-p', 'y', t.url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('one of the arguments -c/--config -k/--shared-secret is required');
    run = await runCli(['-a', '--no-admin', '-k', SECRET, t.url]);
    expect(run.code).toBe(2);
    run = await runCli(['--bogus', '-k', SECRET]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('unrecognized arguments: --bogus');
  });

  it('explains a config without a shared secret', async () => {
    const cfg = join(dir, 'nosecret.yaml');
    writeFileSync(cfg, stringify({ server_name: 'test.local' }));
    const run = await runCli(['-u', 'x', '-p', 'y', '-c', cfg, t.url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config.");
  });

  it('prints help', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('usage: register_new_matrix_user');
    expect(run.stdout).toContain('--shared-secret');
  });
});

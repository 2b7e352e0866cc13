/**
 * The command line as a user runs it: `node dist/src/main.js` (what
 * `npm start` runs) with Synapse's arguments, as a real child process.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseSigningKeyFile } from '../../src/core/signing.js';
import { createTestDatabase, testDatabaseKind } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { listeningUrl, runMain } from '../helpers/process.js';

const dirs: string[] = [];
const drops: (() => Promise<void>)[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'axon-cli-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const drop of drops) await drop();
});

/** Database settings for a child process: a fresh PostgreSQL database when the tests use one. */
async function databaseYaml(dir: string): Promise<Record<string, unknown>> {
  if ((await testDatabaseKind()) === 'postgres') {
    const db = await createTestDatabase();
    drops.push(db.drop);
    return { name: 'psycopg2', args: { user: 'postgres', database: db.name, host: '127.0.0.1', port: 5432, cp_min: 1, cp_max: 3 } };
  }
  return { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } };
}

describe('--generate-config', () => {
  it('writes a Synapse-style config and signing key, and never overwrites them', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'homeserver.yaml');
    const args = ['--server-name', 'example.org', '--config-path', cfg, '--generate-config', '--report-stats=no'];
    const first = runMain(args, { cwd: dir });
    expect(await first.exited).toBe(0);
    const text = readFileSync(cfg, 'utf8');
    const yaml = parse(text) as Record<string, unknown>;
    expect(yaml.server_name).toBe('example.org');
    expect(yaml.report_stats).toBe(false);
    for (const k of ['registration_shared_secret', 'macaroon_secret_key', 'form_secret']) {
      expect(typeof yaml[k]).toBe('string');
      expect((yaml[k] as string).length).toBeGreaterThanOrEqual(32);
    }
    expect(text).toMatch(/^#/m); // commented, as Synapse's is
    const keyPath = yaml.signing_key_path as string;
    const keyText = readFileSync(keyPath, 'utf8');
    expect(keyText).toMatch(/^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n$/);
    expect(parseSigningKeyFile(keyText)).toHaveLength(1);

    const second = runMain(args, { cwd: dir });
    expect(await second.exited).toBe(0);
    expect(readFileSync(cfg, 'utf8')).toBe(text);
    expect(readFileSync(keyPath, 'utf8')).toBe(keyText);
    expect(second.output()).toMatch(/already exists/);
  });

  it('asks for a server name, as Synapse does', async () => {
    const dir = tempDir();
    const child = runMain(['-c', join(dir, 'h.yaml'), '--generate-config'], { cwd: dir });
    expect(await child.exited).toBe(2);
    expect(child.output()).toMatch(/--server-name/);
  });
});

describe('npm start with no arguments (the embedded default)', () => {
  it('generates a config for localhost, runs on the embedded database, stops cleanly on SIGTERM, and restarts on the same data', async () => {
    const dir = tempDir();
    const child = runMain([], { cwd: dir, env: { DATABASE_URL: '' } });
    const url = (await listeningUrl(child)).replace('[::1]', '127.0.0.1');
    expect(child.output()).toMatch(/embedded PostgreSQL \(PGlite/);
    expect(child.output()).toMatch(/how|README|psycopg2/);
    const health = await fetch(`${url}/health`);
    expect(await health.text()).toBe('OK');
    const keyDoc = (await (await fetch(`${url}/_matrix/key/v2/server`)).json()) as { server_name: string; verify_keys: object };
    expect(keyDoc.server_name).toBe('localhost');
    const keyText = readFileSync(join(dir, 'localhost.signing.key'), 'utf8');

    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(child.output()).toMatch(/shut down cleanly/);

    // Same directory again: same key, migrations already recorded, database intact.
    const again = runMain([], { cwd: dir, env: { DATABASE_URL: '' } });
    const url2 = (await listeningUrl(again)).replace('[::1]', '127.0.0.1');
    const keyDoc2 = (await (await fetch(`${url2}/_matrix/key/v2/server`)).json()) as { verify_keys: object };
    expect(keyDoc2.verify_keys).toEqual(keyDoc.verify_keys);
    expect(readFileSync(join(dir, 'localhost.signing.key'), 'utf8')).toBe(keyText);
    expect(again.output()).not.toMatch(/applied database migrations/);
    again.proc.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});

describe('-c with a conf.d directory and several paths', () => {
  it('merges files in order, later ones overriding, and serves what they say', async () => {
    const dir = tempDir();
    const port = await freePort();
    const confd = join(dir, 'conf.d');
    mkdirSync(confd);
    const gen = runMain(['-H', 'first.example', '-c', join(dir, 'homeserver.yaml'), '--generate-config', '--report-stats=no'], { cwd: dir });
    expect(await gen.exited).toBe(0);
    // Debian's layout: the main file, then conf.d/*.yaml in name order.
    writeFileSync(join(confd, '00-server_name.yaml'), 'server_name: merged.example\n');
    writeFileSync(join(confd, '10-database.yaml'), stringify({ database: await databaseYaml(dir) }));
    writeFileSync(
      join(confd, '20-listeners.yaml'),
      stringify({ listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], x_forwarded: true, resources: [{ names: ['client', 'federation'] }] }] }),
    );
    const extra = join(dir, 'wellknown.yaml');
    writeFileSync(extra, 'serve_server_wellknown: true\npublic_baseurl: https://matrix.merged.example/\n');

    const child = runMain(['-c', join(dir, 'homeserver.yaml'), '-c', confd, '--config-path', extra], { cwd: dir });
    const url = await listeningUrl(child);
    expect(url).toBe(`http://127.0.0.1:${port}`);
    const keyDoc = (await (await fetch(`${url}/_matrix/key/v2/server`)).json()) as { server_name: string };
    expect(keyDoc.server_name).toBe('merged.example');
    const wk = await (await fetch(`${url}/.well-known/matrix/server`)).json();
    expect(wk).toEqual({ 'm.server': 'matrix.merged.example:443' });
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });
});

describe('start-up refusals', () => {
  it('stops with a message naming the key and the file for a bad value', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'homeserver.yaml');
    writeFileSync(cfg, 'server_name: bad.example\nlisteners:\n  - port: abc\n    type: http\n    resources: [{names: [client]}]\n');
    const child = runMain(['-c', cfg], { cwd: dir });
    expect(await child.exited).toBe(1);
    expect(child.output()).toMatch(/homeserver\.yaml/);
    expect(child.output()).toMatch(/listeners\[0\]\.port/);
    expect(child.output()).not.toMatch(/\n\s+at /); // no stack trace for an operator's mistake
  });

  it('refuses to run a database under a different server_name', async () => {
    const dir = tempDir();
    const port = await freePort();
    const db = await databaseYaml(dir);
    const write = (name: string) => {
      const gen = join(dir, `${name}.yaml`);
      writeFileSync(
        gen,
        stringify({
          server_name: name,
          signing_key_path: join(dir, 'k.key'),
          database: db,
          listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] }],
        }),
      );
      return gen;
    };
    const keygen = runMain(['-c', write('one.example'), '--generate-keys'], { cwd: dir });
    expect(await keygen.exited).toBe(0);
    const first = runMain(['-c', write('one.example')], { cwd: dir });
    await listeningUrl(first);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const second = runMain(['-c', write('two.example')], { cwd: dir });
    expect(await second.exited).toBe(1);
    // One line (log lines aside), no stack trace: an operator's mistake, not a bug.
    const lines = second
      .output()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{'));
    expect(lines).toEqual([expect.stringMatching(/^axon: the database was created for server_name 'one\.example', but the configuration says 'two\.example'/)]);
    expect(second.output()).not.toMatch(/^\s+at /m);
  });
});

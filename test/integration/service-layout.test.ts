/**
 * The production layout the README sets up, run as a system service would
 * be: the config and signing key in a root-owned directory the server cannot
 * write (/etc/axon), its data in a directory its own user owns
 * (/var/lib/axon), and the server running as that unprivileged user. Here
 * the user is `nobody`, so this needs root (it is skipped otherwise).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createTestDatabase, testDatabaseKind } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { type Child, MAIN_JS, listeningUrl, runMain } from '../helpers/process.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const REGISTER_JS = fileURLToPath(new URL('../../dist/src/cli/register-new-matrix-user.js', import.meta.url));

const roots: string[] = [];
const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
  for (const drop of drops) await drop();
});

interface Layout {
  etc: string;
  data: string;
  config: string;
  confd: string;
  port: number;
}

/**
 * The README's "Configure" commands, as written, with /etc/axon and
 * /var/lib/axon moved under a temporary root, `nobody` standing in for the
 * axon user, and the built main.js for the globally installed `axon`.
 */
function readmeConfigureCommands(): string[] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const step = readme.slice(readme.indexOf('3. **Configure.**'), readme.indexOf('4. **systemd.**'));
  const block = /```sh\n([\s\S]*?)```/.exec(step)?.[1];
  if (!block) throw new Error('README: no commands in the Configure step');
  return block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** /etc/axon and /var/lib/axon in miniature, set up by the README's own commands (as root). */
async function makeLayout(edit: (command: string) => string = (c) => c): Promise<Layout> {
  const root = mkdtempSync(join(tmpdir(), 'axon-layout-'));
  roots.push(root);
  chmodSync(root, 0o755);
  const etc = join(root, 'etc', 'axon');
  const data = join(root, 'var', 'lib', 'axon');
  mkdirSync(join(root, 'etc'), { mode: 0o755 });
  mkdirSync(join(root, 'var', 'lib'), { recursive: true, mode: 0o755 });
  const commands = readmeConfigureCommands();
  expect(commands.some((c) => c.startsWith('axon --generate-config') && c.includes('--data-directory /var/lib/axon'))).toBe(true);
  for (const command of commands) {
    if (command.startsWith('useradd ')) continue; // `nobody` is the service user here
    const local = edit(command)
      .replaceAll('/etc/axon', etc)
      .replaceAll('/var/lib/axon', data)
      .replaceAll('example.com', 'layout.test')
      .replace(/-o axon -g axon/g, `-o ${NOBODY} -g ${NOBODY}`)
      .replace(/-g axon/g, `-g ${NOBODY}`)
      .replace(/^chgrp axon/, `chgrp ${NOBODY}`)
      .replace(/^axon /, `${process.execPath} ${MAIN_JS} `);
    execFileSync('sh', ['-c', local], { cwd: root, stdio: 'pipe' });
  }
  const config = join(etc, 'homeserver.yaml');
  const confd = join(etc, 'conf.d');
  const port = await freePort();
  const override: Record<string, unknown> = {
    listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], x_forwarded: true, tls: false, resources: [{ names: ['client', 'federation'] }] }],
    bcrypt_rounds: 4,
  };
  if ((await testDatabaseKind()) === 'postgres') {
    const db = await createTestDatabase();
    drops.push(db.drop);
    override.database = { name: 'psycopg2', args: { user: 'postgres', database: db.name, host: '127.0.0.1', port: 5432, cp_min: 1, cp_max: 3 } };
  }
  writeFileSync(join(confd, 'test.yaml'), stringify(override), { mode: 0o644 });
  return { etc, data, config, confd, port };
}

function startAsNobody(l: Layout): Child {
  return runMain(['-c', l.config, '-c', l.confd], { cwd: '/', uid: NOBODY, gid: NOBODY, env: { DATABASE_URL: '' } });
}

describe.skipIf(!asRoot)('the service layout: config in a root-owned directory, data in the service user’s', () => {
  it('places data under --data-directory and keys and log config under the config directory', async () => {
    const l = await makeLayout();
    const yaml = parse(readFileSync(l.config, 'utf8')) as Record<string, unknown>;
    expect(yaml.pid_file).toBe(join(l.data, 'homeserver.pid'));
    expect(yaml.media_store_path).toBe(join(l.data, 'media_store'));
    expect((yaml.database as { args: { database: string } }).args.database).toBe(join(l.data, 'homeserver.db'));
    expect(yaml.signing_key_path).toBe(join(l.etc, 'layout.test.signing.key'));
    expect(yaml.log_config).toBe(join(l.etc, 'layout.test.log.config'));
    expect(existsSync(yaml.signing_key_path as string)).toBe(true);
    expect(existsSync(yaml.log_config as string)).toBe(true);
  });

  it('--config-directory puts the signing key and log config there, as Synapse does', async () => {
    const l = await makeLayout((c) =>
      c.startsWith('axon --generate-config')
        ? `${c} --config-directory /etc/axon/keys`
        : c.replace(/\/etc\/axon\/layout\.test|\/etc\/axon\/example\.com/g, '/etc/axon/keys/example.com'),
    );
    const yaml = parse(readFileSync(l.config, 'utf8')) as Record<string, unknown>;
    expect(yaml.signing_key_path).toBe(join(l.etc, 'keys', 'layout.test.signing.key'));
    expect(yaml.log_config).toBe(join(l.etc, 'keys', 'layout.test.log.config'));
  });

  it('runs as the service user: uploads work, and SIGTERM during a long-poll answers it, removes the pid file and exits 0', async () => {
    const l = await makeLayout();
    const child = startAsNobody(l);
    try {
      const url = await listeningUrl(child);
      const pidFile = join(l.data, 'homeserver.pid');
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(child.proc.pid));

      // The first admin, made with the real register_new_matrix_user (as root, reading the config).
      execFileSync(process.execPath, [REGISTER_JS, '-c', l.config, '-u', 'admin', '-p', 'a-long-password', '-a', url], { stdio: 'pipe' });
      const login = await fetch(`${url}/_matrix/client/v3/login`, {
        method: 'POST',
        body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'admin' }, password: 'a-long-password' }),
      });
      expect(login.status).toBe(200);
      const token = ((await login.json()) as { access_token: string }).access_token;
      const auth = { authorization: `Bearer ${token}` };

      const upload = await fetch(`${url}/_matrix/media/v3/upload?filename=a.txt`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'text/plain' },
        body: 'hello from the service user',
      });
      expect(upload.status).toBe(200);
      const mxc = ((await upload.json()) as { content_uri: string }).content_uri;
      const mediaId = mxc.split('/').pop() as string;
      const stored = join(l.data, 'media_store', 'local_content', mediaId.slice(0, 2), mediaId.slice(2, 4), mediaId.slice(4));
      expect(readFileSync(stored, 'utf8')).toBe('hello from the service user');

      const first = await fetch(`${url}/_matrix/client/v3/sync?timeout=0`, { headers: auth });
      const since = ((await first.json()) as { next_batch: string }).next_batch;
      // A poll that would wait the server's longest (far beyond any shutdown grace) unless shutdown ends it.
      const poll = fetch(`${url}/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=3600000`, { headers: auth });
      await new Promise((r) => setTimeout(r, 300));
      child.proc.kill('SIGTERM');
      const polled = await poll;
      expect(polled.status).toBe(200);
      expect(((await polled.json()) as { next_batch: string }).next_batch).toBeTypeOf('string');
      expect(await child.exited).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
      expect(child.output()).not.toMatch(/EACCES|EPERM/);
    } finally {
      if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
    }
  });

  it('a config generated without --data-directory in the config directory: refused before listening, naming each key and path', async () => {
    const l = await makeLayout((c) => c.replace(' --data-directory /var/lib/axon', ''));
    const child = startAsNobody(l);
    expect(await child.exited).toBe(1);
    const out = child.output();
    expect(out).toContain(`pid_file: cannot write ${join(l.etc, 'homeserver.pid')}`);
    expect(out).toContain(`media_store_path: cannot write ${join(l.etc, 'media_store')}`);
    expect(out).toMatch(/--data-directory/);
    expect(out).not.toMatch(/listening|running/i);
    expect(out).not.toMatch(/^\s+at /m);
    // Nothing was left behind in the config directory, and nothing listened.
    expect(existsSync(join(l.etc, 'homeserver.pid'))).toBe(false);
    await expect(fetch(`http://127.0.0.1:${l.port}/health`)).rejects.toThrow();
  });
});

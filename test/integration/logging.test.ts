/**
 * Logging as an operator sees it, from real starts of `node dist/src/main.js`:
 * a root at WARNING prints no info line at all (the first one included);
 * Synapse's default layout (buffer → TimedRotatingFileHandler) gets every
 * line by shutdown; the access log has Synapse's shape, per listener, with
 * tokens redacted; `synapse.storage.SQL: DEBUG` shows SQL, never parameters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../helpers/ports.js';
import { type Child, runMain } from '../helpers/process.js';
import { baseTestYaml } from '../helpers/server.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function serverDir(extra: (dir: string) => Record<string, unknown>): Promise<{ dir: string; config: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'axon-logging-'));
  const base = await baseTestYaml(dir, 'logs.test');
  cleanups.push(async () => {
    await base.dropDb?.();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = join(dir, 'homeserver.yaml');
  writeFileSync(config, stringify({ ...base.yaml, ...extra(dir) }));
  return { dir, config };
}

function listener(port: number): Record<string, unknown> {
  return { port, type: 'http', bind_addresses: ['127.0.0.1'], x_forwarded: true, resources: [{ names: ['client'] }] };
}

async function healthy(child: Child, port: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.proc.exitCode !== null) throw new Error(`server exited: ${child.output()}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not answer: ${child.output()}`);
}

async function stop(child: Child): Promise<void> {
  child.proc.kill('SIGTERM');
  expect(await child.exited).toBe(0);
}

describe('a root at WARNING', () => {
  it('prints no info line at all, from the first one on (log_config on the console)', async () => {
    const port = await freePort();
    const { dir, config } = await serverDir((d) => ({
      listeners: [listener(port)],
      log_config: join(d, 'log.yaml'),
      // A Synapse setting Axon ignores: the loader says so at INFO, before logging is configured.
      enable_metrics: true,
    }));
    writeFileSync(
      join(dir, 'log.yaml'),
      "version: 1\nformatters:\n  precise: {format: '%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s'}\nhandlers:\n  console: {class: logging.StreamHandler, formatter: precise, stream: ext://sys.stdout}\nroot: {level: WARNING, handlers: [console]}\n",
    );
    const child = runMain(['-c', config], { cwd: dir, env: { AXON_LOG_LEVEL: '' } });
    await healthy(child, port);
    await fetch(`http://127.0.0.1:${port}/_matrix/client/versions`);
    await stop(child);
    expect(child.output()).not.toMatch(/INFO/);
    expect(child.output()).not.toMatch(/Axon is running|ignores|Processed request/);
  });

  it('the same without log_config: log_level: warn keeps every info JSON line out', async () => {
    const port = await freePort();
    const { dir, config } = await serverDir(() => ({ listeners: [listener(port)], log_level: 'WARNING', enable_metrics: true }));
    const child = runMain(['-c', config], { cwd: dir, env: { AXON_LOG_LEVEL: '' } });
    await healthy(child, port);
    await stop(child);
    expect(child.output()).not.toMatch(/"level":(10|20|30)\b/);
  });
});

describe('a broken log config', () => {
  it('stops the start with one line naming the file and the key, no stack trace; the lines before it are on stderr', async () => {
    const { dir, config } = await serverDir((d) => ({ listeners: [listener(8008)], log_config: join(d, 'log.yaml'), enable_metrics: true }));
    writeFileSync(join(dir, 'log.yaml'), 'version: 1\nhandlers:\n  console: {class: logging.StreamHandler}\nroot: {level: LOUD, handlers: [console]}\n');
    const child = runMain(['-c', config], { cwd: dir, env: { AXON_LOG_LEVEL: '' } });
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain(`axon: log_config ${join(dir, 'log.yaml')}: root.level: unknown level "LOUD"`);
    expect(child.output()).toContain('Synapse settings Axon does not act on (ignored): enable_metrics');
    expect(child.output()).not.toMatch(/\n\s+at /);
  });
});

describe("Synapse's default layout: buffer → TimedRotatingFileHandler", () => {
  it('access lines in Synapse’s shape, per-listener levels, SQL at DEBUG, tokens redacted, everything written by shutdown', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const { dir, config } = await serverDir((d) => ({
      listeners: [listener(a), listener(b)],
      log_config: join(d, 'log.config'),
      enable_registration: true,
      enable_registration_without_verification: true,
    }));
    writeFileSync(
      join(dir, 'log.config'),
      `version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.handlers.TimedRotatingFileHandler
    formatter: precise
    filename: ${dir}/homeserver.log
    when: midnight
    backupCount: 3
    encoding: utf8
  buffer:
    class: synapse.logging.handlers.PeriodicallyFlushingMemoryHandler
    target: file
    capacity: 10
    flushLevel: 30
    period: 5
loggers:
  synapse.storage.SQL:
    level: DEBUG
  synapse.access.http.${b}:
    level: WARNING
root:
  level: INFO
  handlers: [buffer]
disable_existing_loggers: false
`,
    );
    const child = runMain(['-c', config], { cwd: dir, env: { AXON_LOG_LEVEL: '' } });
    await healthy(child, a);
    const reg = await fetch(`http://127.0.0.1:${a}/_matrix/client/v3/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'a-long-password-1', auth: { type: 'm.login.dummy' } }),
    });
    expect(reg.status).toBe(200);
    const { access_token: token } = (await reg.json()) as { access_token: string };
    const who = await fetch(`http://127.0.0.1:${a}/_matrix/client/v3/account/whoami?access_token=${token}`, { headers: { 'user-agent': 'logging-test/1.0' } });
    expect(who.status).toBe(200);
    const whoBody = await who.text();
    await fetch(`http://127.0.0.1:${b}/_matrix/client/versions?from=b`);
    await stop(child);

    const log = readFileSync(join(dir, 'homeserver.log'), 'utf8');
    const lines = log.split('\n');
    // The whoami request, as Synapse writes it.
    const line = lines.find((l) => l.includes('/account/whoami'));
    expect(line).toBeDefined();
    const m = new RegExp(
      `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,\\d{3} - axon\\.access\\.http\\.${a} - 0 - INFO - ([0-9a-f]{12}) - ` +
        `127\\.0\\.0\\.1 - ${a} - \\{@alice:logs\\.test\\} Processed request: \\d+\\.\\d{3}sec/\\d+\\.\\d{3}sec \\(\\d+\\.\\d{3}sec, \\d+\\.\\d{3}sec\\) ` +
        `\\(\\d+\\.\\d{3}sec/\\d+\\.\\d{3}sec/\\d+\\) (\\d+)B 200 "GET /_matrix/client/v3/account/whoami\\?access_token=<redacted> HTTP/1\\.1" "logging-test/1\\.0" \\[\\d+ dbevts\\]$`,
    ).exec(line!);
    expect(m, line).not.toBeNull();
    expect(Number(m![2])).toBe(Buffer.byteLength(whoBody));
    // Before sign-in there is no requester; Synapse prints None.
    expect(lines.find((l) => l.includes('"POST /_matrix/client/v3/register'))).toMatch(/ - \{None\} Processed request: .* 200 "POST \/_matrix\/client\/v3\/register HTTP\/1\.1"/);
    // The second listener's access logger is at WARNING.
    expect(log).not.toContain('from=b');
    expect(log).not.toContain(`axon.access.http.${b}`);
    // SQL at DEBUG: statements, never their parameters (the password hash, the token).
    expect(log).toMatch(/ - axon\.storage\.sql - 0 - DEBUG - (sentinel|[0-9a-f]{12}) - (select|insert|update|with) .* ms=[\d.]+$/im);
    expect(log).not.toContain(token);
    expect(log).not.toContain('a-long-password-1');
    // Lines from before the config was read, and the very last one, are there.
    expect(log).toMatch(/ - axon\.app - 0 - INFO - sentinel - Axon is running on http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+ /);
    expect(log).toMatch(/ - axon\.app - 0 - INFO - sentinel - shut down cleanly\n$/);
    expect(child.output()).toBe('');
  });
});

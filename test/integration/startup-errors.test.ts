/**
 * Expected start-up failures, through the real program: exactly one
 * `axon: …` line each, no stack trace, exit 1. (Bad config values and a
 * changed server_name: cli.test.ts; database set-up: database-setup.test.ts;
 * placeholder secrets: placeholder-secrets.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { formatSigningKeyFile, generateSigningKey } from '../../src/core/signing.js';
import { freePort } from '../helpers/ports.js';
import { runMain } from '../helpers/process.js';
import { baseTestYaml } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'axon-startup-errors-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Runs the program on `yaml`; returns its output lines other than JSON log lines, after checking exit 1 and no stack. */
async function refusal(dir: string, yaml: Record<string, unknown>): Promise<string[]> {
  const cfg = join(dir, 'homeserver.yaml');
  writeFileSync(cfg, stringify(yaml));
  const child = runMain(['-c', cfg], { cwd: dir, env: { DATABASE_URL: '' } });
  cleanups.push(() => child.proc.kill('SIGKILL'));
  expect(await child.exited).toBe(1);
  expect(child.output()).not.toMatch(/^\s+at /m);
  return child
    .output()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'));
}

describe('expected start-up failures print one line', () => {
  it('cannot connect to PostgreSQL (and the password is not printed)', async () => {
    const dir = tempDir();
    const port = await freePort();
    const database = { name: 'psycopg2', args: { user: 'axon', password: 'Pw-Not-Shown-9', database: 'axon', host: '127.0.0.1', port } };
    const key = join(dir, 'k.key');
    writeFileSync(key, formatSigningKeyFile([generateSigningKey()]));
    const lines = await refusal(dir, { server_name: 'example.com', report_stats: false, signing_key_path: key, database });
    expect(lines).toEqual([`axon: cannot connect to PostgreSQL (postgresql://axon@127.0.0.1:${port}/axon): connect ECONNREFUSED 127.0.0.1:${port}`]);
  });

  it('a missing signing key file', async () => {
    const dir = tempDir();
    const key = join(dir, 'missing.signing.key');
    const lines = await refusal(dir, { server_name: 'example.com', report_stats: false, signing_key_path: key });
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^axon: cannot read signing key file ${key} \\(ENOENT\\); generate one with`))]);
  });

  it('a port another process holds', async () => {
    const dir = tempDir();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => holder.close(resolve)));
    const port = (holder.address() as { port: number }).port;
    const base = await baseTestYaml(dir, 'ports.test');
    if (base.dropDb) cleanups.push(base.dropDb);
    const listeners = [{ port, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] }];
    const lines = await refusal(dir, { ...base.yaml, listeners });
    expect(lines).toEqual([`axon: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${port}`]);
  });
});

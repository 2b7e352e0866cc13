/**
 * The server refuses to start while a secret still holds the sample
 * config's CHANGEME placeholder, naming each key and its file on one line
 * each; generating keys from the sample (as the systemd unit's instructions
 * do) still works, and a real secret starts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runMain } from '../helpers/process.js';
import { startTestServer } from '../helpers/server.js';

const SAMPLE = new URL('../../config/homeserver.yaml', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'axon-placeholders-'));
  dirs.push(d);
  return d;
};

describe('CHANGEME placeholders', () => {
  it('the shipped config/homeserver.yaml is refused, one line per placeholder key, no stack, exit 1', async () => {
    const child = runMain(['-c', SAMPLE], { cwd: tempDir(), env: { DATABASE_URL: '' } });
    expect(await child.exited).toBe(1);
    const lines = child
      .output()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{'));
    expect(lines.map((l) => l.split(': ').slice(0, 3).join(': '))).toEqual(
      ['database.args.password', 'registration_shared_secret', 'macaroon_secret_key', 'form_secret', 'turn_shared_secret'].map((k) => `axon: ${SAMPLE}: ${k}`),
    );
    expect(child.output()).not.toMatch(/^\s+at /m);
  });

  it('generating keys from the shipped sample still works', async () => {
    const dir = tempDir();
    const key = join(dir, 'example.com.signing.key');
    // The sample with only its key path moved here (--generate-keys writes what the first file names).
    const text = readFileSync(SAMPLE, 'utf8');
    expect(text).toContain('signing_key_path: "/etc/axon/example.com.signing.key"');
    writeFileSync(join(dir, 'homeserver.yaml'), text.replace('"/etc/axon/example.com.signing.key"', JSON.stringify(key)));
    const child = runMain(['-c', join(dir, 'homeserver.yaml'), '--generate-keys'], { cwd: dir, env: { DATABASE_URL: '' } });
    expect(await child.exited).toBe(0);
    expect(existsSync(key)).toBe(true);
  });

  it('a placeholder in DATABASE_URL is refused too, and the URL is not printed', async () => {
    const dir = tempDir();
    const cfg = join(dir, 'homeserver.yaml');
    writeFileSync(cfg, stringify({ server_name: 'example.com', report_stats: false, signing_key_path: join(dir, 'k.key') }));
    const url = 'postgres://axon:CHANGEME-database-password@127.0.0.1:1/axon';
    const child = runMain(['-c', cfg], { cwd: dir, env: { DATABASE_URL: url } });
    expect(await child.exited).toBe(1);
    expect(child.output()).toMatch(/^axon: environment: DATABASE_URL: its password still holds a CHANGEME placeholder/m);
    expect(child.output()).not.toContain('CHANGEME-database-password');
  });

  it('real secrets start', async () => {
    const t = await startTestServer({
      yaml: {
        registration_shared_secret: '3f9c1e0b7a5d4c2e8f6a1b9d0c7e5a3f',
        macaroon_secret_key: 'a8Jd93kLq0ZxPw7Vn2Rt5Ys1Uo4Ie6Hb',
        form_secret: 'Qm4Zr8Tn2Lk6Xp0Wv3Yc9Bj5Hd1Fs7Ga',
      },
    });
    try {
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

/**
 * Secrets that still hold the sample config's CHANGEME placeholder: the
 * loader names each one, with the file that set it, and never its value
 * (startServer refuses on them: test/integration/placeholder-secrets.test.ts).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { REPO, removeTempTrees, tempTree } from './helpers.js';

afterAll(removeTempTrees);

const MINIMAL = 'server_name: example.com\nreport_stats: false\n';
const load = (files: Record<string, string>, env: NodeJS.ProcessEnv = {}, extra: string[] = []) => {
  const t = tempTree(files);
  return { t, config: loadConfig([join(t, 'homeserver.yaml'), ...extra.map((e) => join(t, e))], { env }) };
};
const PG = 'database:\n  name: psycopg2\n  args:\n    user: axon\n    database: axon\n';

describe('placeholder secrets', () => {
  it('the shipped config/homeserver.yaml: every CHANGEME secret, in file order, naming the file', () => {
    const sample = join(REPO, 'config', 'homeserver.yaml');
    const lines = loadConfig([sample], { env: {} }).placeholder_secrets;
    expect(lines.map((l) => l.split(': ').slice(0, 2).join(': '))).toEqual(
      ['database.args.password', 'registration_shared_secret', 'macaroon_secret_key', 'form_secret', 'turn_shared_secret'].map((k) => `${sample}: ${k}`),
    );
    for (const l of lines) {
      expect(l).toMatch(/still holds a CHANGEME placeholder from the sample config; replace it with .* before starting the server$/);
      expect(l).not.toMatch(/CHANGEME-/); // the value itself is never shown
    }
    expect(lines[4]).toContain("coturn's static-auth-secret");
  });

  for (const key of ['registration_shared_secret', 'macaroon_secret_key', 'form_secret', 'turn_shared_secret', 'turn_password']) {
    it(`${key} alone`, () => {
      const { t, config } = load({ 'homeserver.yaml': `${MINIMAL}${key}: "changeme-please"\n` });
      expect(config.placeholder_secrets).toEqual([expect.stringMatching(new RegExp(`^${join(t, 'homeserver.yaml')}: ${key}: still holds a CHANGEME placeholder`))]);
    });
  }

  for (const key of ['registration_shared_secret', 'macaroon_secret_key', 'form_secret', 'turn_shared_secret']) {
    it(`${key}_path: the file's contents`, () => {
      const { t, config } = load({ 'homeserver.yaml': `${MINIMAL}${key}_path: secret.txt\n`, 'secret.txt': 'CHANGEME-in-a-file\n' });
      expect(config.placeholder_secrets).toEqual([
        expect.stringMatching(new RegExp(`^${join(t, 'homeserver.yaml')}: ${key}_path: the file ${join(t, 'secret.txt')} still holds a CHANGEME placeholder`)),
      ]);
    });
  }

  it('database.args.password (and databases.<name>.args.password), named by the file that set the section', () => {
    const a = load({ 'homeserver.yaml': MINIMAL, 'conf.d/db.yaml': `${PG}    password: CHANGEME-database-password\n` }, {}, ['conf.d']);
    expect(a.config.placeholder_secrets).toEqual([
      expect.stringMatching(new RegExp(`^${join(a.t, 'conf.d', 'db.yaml')}: database\\.args\\.password: still holds a CHANGEME placeholder.*real password`)),
    ]);
    const b = load({ 'homeserver.yaml': `${MINIMAL}databases:\n  main:\n    name: psycopg2\n    args:\n      password: CHANGEME\n` });
    expect(b.config.placeholder_secrets).toEqual([expect.stringMatching(/: databases\.main\.args\.password: still holds/)]);
  });

  it('a password in DATABASE_URL, as user:password@ or ?password=; a DATABASE_URL replaces the section, and its password with it', () => {
    for (const url of ['postgres://axon:CHANGEME-database-password@localhost/axon', 'postgresql:///axon?host=/run/postgresql&password=CHANGEME']) {
      const { config } = load({ 'homeserver.yaml': MINIMAL }, { DATABASE_URL: url });
      expect(config.placeholder_secrets).toEqual([expect.stringMatching(/^environment: DATABASE_URL: its password still holds a CHANGEME placeholder/)]);
      expect(config.placeholder_secrets[0]).not.toContain(url);
    }
    const { config } = load({ 'homeserver.yaml': `${MINIMAL}${PG}    password: CHANGEME\n` }, { DATABASE_URL: 'postgres://axon:s3cret-Real-1@localhost/axon' });
    expect(config.placeholder_secrets).toEqual([]);
  });

  it('real secrets are not placeholders', () => {
    const { config } = load({
      'homeserver.yaml':
        `${MINIMAL}${PG}    password: "Tr0ub4dor&3"\nregistration_shared_secret: "3f9c1e0b7a5d4c2e8f6a1b9d0c7e5a3f"\n` +
        'macaroon_secret_key: "a8Jd93kLq0ZxPw7Vn2Rt5Ys1Uo4Ie6Hb"\nform_secret: "Qm4Zr8Tn2Lk6Xp0Wv3Yc9Bj5Hd1Fs7Ga"\n' +
        'turn_shared_secret_path: turn.secret\nturn_username: axon\nturn_password: "Pk3Lw9Xc2Vb7Nm5Qz1"\n',
      'turn.secret': 'c2f7e1a9d3b6c8e0f4a2d9b1c7e5f3a0\n',
    });
    expect(config.placeholder_secrets).toEqual([]);
  });
});

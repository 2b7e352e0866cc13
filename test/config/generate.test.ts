import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateConfig, generateLogConfig, randomSecret, writeGeneratedFiles } from '../../src/config/generate.js';
import { loadConfig } from '../../src/config/load.js';
import { loadLogConfig } from '../../src/config/log-config.js';
import { parseSigningKeyFile } from '../../src/core/signing.js';
import { collector, configErrorOf, removeTempTrees, tempTree } from './helpers.js';

afterAll(removeTempTrees);

const SECRET_CHARS = /^[0-9A-Za-z.,;:^&*\-_+=#~@]{50}$/;

function secretsOf(text: string): string[] {
  const doc = parse(text) as Record<string, string>;
  return [doc['registration_shared_secret']!, doc['macaroon_secret_key']!, doc['form_secret']!];
}

describe('generateConfig', () => {
  it('parses back with loadConfig to the same server, with Synapse-generated-style values', () => {
    const t = tempTree();
    const configPath = join(t, 'homeserver.yaml');
    writeFileSync(configPath, generateConfig({ serverName: 'chat.example.net', configPath, reportStats: true }));
    const c = collector();
    const config = loadConfig([configPath], { env: {}, ...c });
    expect(config.server_name).toBe('chat.example.net');
    expect(config.report_stats).toBe(true);
    expect(config.listeners).toEqual([
      {
        port: 8008,
        bind_addresses: ['::1', '127.0.0.1'],
        type: 'http',
        tls: false,
        x_forwarded: true,
        resources: [{ names: ['client', 'federation'], compress: false }],
      },
    ]);
    expect(config.database).toEqual({ kind: 'embedded', path: join(t, 'pglite') });
    expect(config.pid_file).toBe(join(t, 'homeserver.pid'));
    expect(config.media_store_path).toBe(join(t, 'media_store'));
    expect(config.signing_key_path).toBe(join(t, 'chat.example.net.signing.key'));
    expect(config.log_config).toBe(join(t, 'chat.example.net.log.config'));
    expect(config.trusted_key_servers).toEqual([{ server_name: 'matrix.org' }]);
    expect(config.enable_registration).toBe(false);
    expect(config.registration_shared_secret).toMatch(SECRET_CHARS);
    expect(config.macaroon_secret_key).toMatch(SECRET_CHARS);
    expect(config.form_secret).toMatch(SECRET_CHARS);
    // Only Synapse's keys: nothing unknown, nothing ignored.
    expect(c.warnings.filter((w) => !w.includes('log_config'))).toEqual([]);
    expect(c.infos).toEqual([]);
  });

  it('points data paths at dataDir and the key and log config at keysDir (as Synapse --keys-directory / --config-directory)', () => {
    const t = tempTree();
    const configPath = join(t, 'etc', 'homeserver.yaml');
    const text = generateConfig({
      serverName: 'example.com',
      configPath,
      dataDir: join(t, 'var'),
      keysDir: join(t, 'keys'),
      reportStats: false,
    });
    const doc = parse(text) as Record<string, unknown>;
    expect(doc['media_store_path']).toBe(join(t, 'var', 'media_store'));
    expect(doc['pid_file']).toBe(join(t, 'var', 'homeserver.pid'));
    expect(doc['database']).toEqual({ name: 'sqlite3', args: { database: join(t, 'var', 'homeserver.db') } });
    expect(doc['signing_key_path']).toBe(join(t, 'keys', 'example.com.signing.key'));
    expect(doc['log_config']).toBe(join(t, 'keys', 'example.com.log.config'));
  });

  it('openPrivatePorts leaves the listener on all interfaces, as Synapse --open-private-ports', () => {
    const t = tempTree();
    const configPath = join(t, 'homeserver.yaml');
    writeFileSync(configPath, generateConfig({ serverName: 'example.com', configPath, reportStats: false, openPrivatePorts: true }));
    const config = loadConfig([configPath], { env: {}, warn: () => {} });
    expect(config.listeners[0]!.bind_addresses).toEqual(['::', '0.0.0.0']);
    expect(config.listeners[0]!.x_forwarded).toBe(true);
  });

  it('has commented examples for the settings guides tell people to change', () => {
    const text = generateConfig({ serverName: 'example.com', configPath: '/etc/axon/homeserver.yaml', reportStats: false });
    for (const key of [
      '#database:',
      '#  name: psycopg2',
      '#enable_registration: true',
      '#registration_requires_token: true',
      '#turn_uris:',
      '#turn_shared_secret:',
      '#turn_user_lifetime: 1h',
      '#serve_server_wellknown: true',
      '#presence:',
      '#public_baseurl:',
      '#tls_certificate_path:',
      '#tls_private_key_path:',
    ]) {
      expect(text).toContain(key);
    }
  });

  it('makes fresh, distinct secrets every time', () => {
    const opts = { serverName: 'example.com', configPath: '/etc/axon/homeserver.yaml', reportStats: false };
    const a = secretsOf(generateConfig(opts));
    const b = secretsOf(generateConfig(opts));
    for (const s of [...a, ...b]) expect(s).toMatch(SECRET_CHARS);
    expect(new Set([...a, ...b]).size).toBe(6);
  });

  it('randomSecret uses the whole of Synapse’s alphabet', () => {
    const seen = new Set(Array.from({ length: 200 }, () => randomSecret()).join(''));
    expect(seen.size).toBe(76);
    expect(randomSecret(12)).toHaveLength(12);
  });

  it('rejects a bad server name', () => {
    const err = configErrorOf(() => generateConfig({ serverName: 'not a name', configPath: '/x/homeserver.yaml', reportStats: false }));
    expect(err.key).toBe('server_name');
  });

  it('writes a log config printing readable lines on stdout at INFO', () => {
    const t = tempTree({ 'log.config': generateLogConfig() });
    const spec = loadLogConfig(join(t, 'log.config'));
    expect(spec.root).toEqual({ level: 'info', handlers: ['console'], propagate: true });
    expect(spec.handlers.get('console')).toMatchObject({ kind: 'stream', stream: 'stdout', formatter: 'precise' });
    expect(spec.formatters.get('precise')).toMatchObject({ kind: 'text', style: '%' });
    expect(spec.warnings).toEqual([]);
  });
});

describe('writeGeneratedFiles', () => {
  it('writes config, signing key and log config, readable only by the owner where secret', () => {
    const t = tempTree();
    const configPath = join(t, 'conf', 'homeserver.yaml');
    const res = writeGeneratedFiles({ serverName: 'example.com', configPath, reportStats: false });
    expect(res.configWritten).toBe(true);
    expect(res.signingKeyWritten).toBe(true);
    expect(res.logConfigWritten).toBe(true);
    expect(res.signingKeyPath).toBe(join(t, 'conf', 'example.com.signing.key'));

    const keyText = readFileSync(res.signingKeyPath, 'utf8');
    expect(keyText).toMatch(/^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}\n$/);
    expect(parseSigningKeyFile(keyText)).toHaveLength(1);
    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    expect(statSync(res.signingKeyPath).mode & 0o777).toBe(0o600);

    const config = loadConfig([configPath], { env: {} });
    expect(config.server_name).toBe('example.com');
    expect(config.log_level).toBeUndefined();
    expect(loadLogConfig(config.log_config!).root.level).toBe('info');

    // Messages never carry secrets.
    const said = res.messages.join('\n');
    for (const s of [config.registration_shared_secret!, config.macaroon_secret_key!, config.form_secret!]) {
      expect(said).not.toContain(s);
    }
    expect(said).not.toContain(keyText.split(' ')[2]!.trim());
  });

  it('never overwrites an existing config; still creates the missing signing key', () => {
    const t = tempTree();
    const configPath = join(t, 'homeserver.yaml');
    const mine = '# my own config\nserver_name: mine.example\nreport_stats: false\nsigning_key_path: keys/mine.key\n';
    writeFileSync(configPath, mine);
    const res = writeGeneratedFiles({ serverName: 'other.example', configPath, reportStats: true });
    expect(res.configWritten).toBe(false);
    expect(readFileSync(configPath, 'utf8')).toBe(mine);
    expect(res.messages[0]).toContain('already exists');
    // The existing config's signing_key_path is used, not the generated default.
    expect(res.signingKeyPath).toBe(join(t, 'keys', 'mine.key'));
    expect(res.signingKeyWritten).toBe(true);
    expect(existsSync(join(t, 'other.example.signing.key'))).toBe(false);
  });

  it('keeps an existing signing key byte for byte, and a second run changes nothing', () => {
    const t = tempTree();
    const configPath = join(t, 'homeserver.yaml');
    const first = writeGeneratedFiles({ serverName: 'example.com', configPath, reportStats: false });
    const configText = readFileSync(configPath, 'utf8');
    const keyText = readFileSync(first.signingKeyPath, 'utf8');
    const second = writeGeneratedFiles({ serverName: 'example.com', configPath, reportStats: false });
    expect(second.configWritten).toBe(false);
    expect(second.signingKeyWritten).toBe(false);
    expect(second.logConfigWritten).toBe(false);
    expect(second.messages.some((m) => m.includes('keeping it'))).toBe(true);
    expect(readFileSync(configPath, 'utf8')).toBe(configText);
    expect(readFileSync(first.signingKeyPath, 'utf8')).toBe(keyText);
  });

  it('keeps a pre-existing key file next to a new config', () => {
    const key = 'ed25519 a_Old1 nNSJWNjJg3VHoHqd7HB9O+jNbDNHwuQM/RlLbqUrjBM\n';
    const t = tempTree({ 'example.com.signing.key': key });
    const res = writeGeneratedFiles({ serverName: 'example.com', configPath: join(t, 'homeserver.yaml'), reportStats: false });
    expect(res.configWritten).toBe(true);
    expect(res.signingKeyWritten).toBe(false);
    expect(readFileSync(join(t, 'example.com.signing.key'), 'utf8')).toBe(key);
  });

  it('creates a missing registration_shared_secret_path file, as Synapse does, and never replaces one', () => {
    const t = tempTree({
      'homeserver.yaml': 'server_name: example.com\nreport_stats: false\nregistration_shared_secret_path: reg.secret\n',
    });
    writeGeneratedFiles({ serverName: 'example.com', configPath: join(t, 'homeserver.yaml'), reportStats: false });
    const secret = readFileSync(join(t, 'reg.secret'), 'utf8');
    expect(secret.trim()).toMatch(SECRET_CHARS);
    writeGeneratedFiles({ serverName: 'example.com', configPath: join(t, 'homeserver.yaml'), reportStats: false });
    expect(readFileSync(join(t, 'reg.secret'), 'utf8')).toBe(secret);
    expect(loadConfig([join(t, 'homeserver.yaml')], { env: {} }).registration_shared_secret).toBe(secret.trim());
  });
});

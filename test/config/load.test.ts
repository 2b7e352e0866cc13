import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { FIXTURES, collector, configErrorOf, removeTempTrees, tempTree } from './helpers.js';

afterAll(removeTempTrees);

const MINIMAL = 'server_name: example.com\nreport_stats: false\n';

describe('a homeserver.yaml as Synapse --generate-config writes it', () => {
  const file = join(FIXTURES, 'synapse-generated', 'homeserver.yaml');

  it('reads every value the way Synapse would', () => {
    const c = collector();
    const config = loadConfig([file], { env: {}, ...c });
    expect(config.server_name).toBe('my.matrix.host');
    expect(config.public_baseurl).toBe('https://my.matrix.host/');
    expect(config.serve_client_wellknown).toBe(false);
    expect(config.pid_file).toBe('/data/homeserver.pid');
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
    // sqlite3 → the embedded PostgreSQL, beside where the SQLite file would be.
    expect(config.database).toEqual({ kind: 'embedded', path: '/data/pglite' });
    expect(config.data_dir).toBe('/data');
    expect(config.media_store_path).toBe('/data/media_store');
    expect(config.signing_key_path).toBe('/data/my.matrix.host.signing.key');
    expect(config.log_config).toBe('/data/my.matrix.host.log.config');
    expect(config.registration_shared_secret).toBe('Qx8,m;Wd#kP2^z&T*u-_+=~@aB3cD4eF5gH6iJ7kL8mN9oP0qR1');
    expect(config.macaroon_secret_key).toHaveLength(50);
    expect(config.form_secret).toHaveLength(50);
    expect(config.report_stats).toBe(false);
    expect(config.trusted_key_servers).toEqual([{ server_name: 'matrix.org' }]);
    expect(config.config_files).toEqual([file]);
    expect(config.config_dir).toBe(join(FIXTURES, 'synapse-generated'));
    expect(config.raw['server_name']).toBe('my.matrix.host');
  });

  it('warns only that the log config file is missing (Axon then logs to stdout)', () => {
    const c = collector();
    const config = loadConfig([file], { env: {}, ...c });
    expect(config.log_level).toBeUndefined();
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain('log_config');
    expect(c.warnings[0]).toContain('/data/my.matrix.host.log.config');
    expect(c.warnings[0]).toContain('not found');
    expect(c.infos).toEqual([]);
  });

  it('never puts a secret into a warning or info line', () => {
    const c = collector();
    const config = loadConfig([file], { env: {}, ...c });
    const lines = [...c.warnings, ...c.infos].join('\n');
    for (const s of [config.registration_shared_secret, config.macaroon_secret_key, config.form_secret]) {
      expect(lines).not.toContain(s);
    }
  });
});

describe('Debian package layout: homeserver.yaml plus conf.d/', () => {
  const dir = join(FIXTURES, 'debian');
  const main = join(dir, 'homeserver.yaml');
  const confd = join(dir, 'conf.d');

  it('reads conf.d/*.yaml in name order after homeserver.yaml', () => {
    const c = collector();
    const config = loadConfig([main, confd], { env: {}, ...c });
    expect(config.config_files).toEqual([
      main,
      join(confd, 'database.yaml'),
      join(confd, 'registration.yaml'),
      join(confd, 'report_stats.yaml'),
      join(confd, 'server_name.yaml'),
    ]);
    expect(config.server_name).toBe('matrix.example.org');
    expect(config.registration_shared_secret).toBe('M6iP~wF.8q=Zr@s2;kB^u#E*v-Xa_9+L&c:Yd,Tn4Hj7Go0Q1R');
    expect(config.signing_key_path).toBe('/etc/matrix-synapse/homeserver.signing.key');
    expect(config.media_store_path).toBe('/var/lib/matrix-synapse/media');
  });

  it("lets conf.d/database.yaml replace homeserver.yaml's whole database section", () => {
    const config = loadConfig([main, confd], { env: {}, warn: () => {} });
    expect(config.database).toEqual({
      kind: 'postgres',
      user: 'synapse_user',
      password: 'secretpassword',
      database: 'synapse',
      host: 'localhost',
      port: 5432,
      cp_min: 5,
      cp_max: 10,
    });
  });

  it('skips non-.yaml files in the directory with a warning each, and lists ignored Synapse keys once', () => {
    const c = collector();
    loadConfig([main, confd], { env: {}, ...c });
    expect(c.warnings.filter((w) => w.includes('README.txt'))).toHaveLength(1);
    expect(c.warnings.filter((w) => w.includes('database.yaml.dpkg-old'))).toHaveLength(1);
    // enable_metrics is Synapse's: not "unknown", but named in the single info line.
    expect(c.warnings.some((w) => w.includes('enable_metrics'))).toBe(false);
    expect(c.infos.filter((i) => i.includes('Synapse settings Axon does not act on'))).toHaveLength(1);
    expect(c.infos.find((i) => i.includes('enable_metrics'))).toBeDefined();
  });

  it('keeps the sqlite3 database as the embedded one under /var/lib, not /etc', () => {
    const config = loadConfig([main, join(confd, 'server_name.yaml')], { env: {}, warn: () => {} });
    expect(config.database).toEqual({ kind: 'embedded', path: '/var/lib/matrix-synapse/pglite' });
    expect(config.data_dir).toBe('/var/lib/matrix-synapse');
    // The first file's directory is the config directory even with several files.
    expect(config.config_dir).toBe(dir);
  });

  it("rejects the package's placeholder server_name: '' and names conf.d/server_name.yaml", () => {
    const t = tempTree({
      'homeserver.yaml': 'report_stats: false\n',
      'conf.d/server_name.yaml': "server_name: ''\n",
    });
    const err = configErrorOf(() => loadConfig([join(t, 'homeserver.yaml'), join(t, 'conf.d')], { env: {} }));
    expect(err.message).toBe(`${join(t, 'conf.d', 'server_name.yaml')}: server_name: must not be empty`);
    expect(err.key).toBe('server_name');
    expect(err.file).toBe(join(t, 'conf.d', 'server_name.yaml'));
  });
});

describe('database section', () => {
  it('psycopg2 with database: (not dbname), a socket host, and Synapse pool defaults', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}database:\n  name: psycopg2\n  args:\n    user: axon\n    password: 12345\n    database: axon\n    host: /var/run/postgresql\n`,
    });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.database).toEqual({
      kind: 'postgres',
      user: 'axon',
      password: '12345', // psycopg2 stringifies a numeric password
      database: 'axon',
      host: '/var/run/postgresql',
      cp_min: 5,
      cp_max: 10,
    });
  });

  it('accepts a port written as a string, sslmode, and warns once about psycopg2 args Axon does not use', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}database:\n  name: psycopg2\n  args:\n    dbname: axon\n    port: "5433"\n    sslmode: require\n    keepalives_idle: 10\n    keepalives_interval: 10\n`,
    });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.database).toMatchObject({ kind: 'postgres', database: 'axon', port: 5433, sslmode: 'require' });
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(/database\.args: Axon does not use keepalives_idle, keepalives_interval/);
  });

  it('no database section means the embedded database in the config directory', () => {
    const t = tempTree({ 'homeserver.yaml': MINIMAL });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.database).toEqual({ kind: 'embedded', path: join(t, 'pglite') });
    expect(config.data_dir).toBe(t);
  });

  it('name: sqlite3 with a relative database path resolves against the config directory', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}database:\n  name: sqlite3\n  args:\n    database: data/homeserver.db\n` });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.database).toEqual({ kind: 'embedded', path: join(t, 'data', 'pglite') });
  });

  it('data_dir, when set, is where the embedded database goes', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}data_dir: state\ndatabase:\n  name: sqlite3\n  args:\n    database: /elsewhere/homeserver.db\n` });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.data_dir).toBe(join(t, 'state'));
    expect(config.database).toEqual({ kind: 'embedded', path: join(t, 'state', 'pglite') });
    expect(c.warnings).toEqual([]); // data_dir is Axon's own key, not unknown
  });

  it('DATABASE_URL replaces the database section, keeping its pool sizes', () => {
    const url = 'postgres://axon:s3cret@db.internal:5432/axon?sslmode=require';
    const c = collector();
    const config = loadConfig([join(FIXTURES, 'debian', 'homeserver.yaml'), join(FIXTURES, 'debian', 'conf.d')], {
      env: { DATABASE_URL: url },
      ...c,
    });
    expect(config.database).toEqual({ kind: 'postgres', connectionString: url, cp_min: 5, cp_max: 10 });
    expect(c.infos.some((i) => i.includes('DATABASE_URL'))).toBe(true);
    expect([...c.warnings, ...c.infos].join('\n')).not.toContain('s3cret');
  });

  it('DATABASE_URL turns the embedded default into PostgreSQL', () => {
    const t = tempTree({ 'homeserver.yaml': MINIMAL });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: { DATABASE_URL: 'postgresql:///axon?host=/run/postgresql' } });
    expect(config.database).toEqual({ kind: 'postgres', connectionString: 'postgresql:///axon?host=/run/postgresql', cp_min: 5, cp_max: 10 });
  });

  it('an empty DATABASE_URL is ignored', () => {
    const t = tempTree({ 'homeserver.yaml': MINIMAL });
    expect(loadConfig([join(t, 'homeserver.yaml')], { env: { DATABASE_URL: '' } }).database.kind).toBe('embedded');
  });

  it('a DATABASE_URL that is not postgres is an error that does not echo it', () => {
    const t = tempTree({ 'homeserver.yaml': MINIMAL });
    const err = configErrorOf(() =>
      loadConfig([join(t, 'homeserver.yaml')], { env: { DATABASE_URL: 'mysql://root:hunter2@localhost/db' } }),
    );
    expect(err.message).toMatch(/^environment: DATABASE_URL: expected a PostgreSQL URL/);
    expect(err.message).not.toContain('hunter2');
  });

  it('Synapse multi-database form: uses the one holding "main" and says it ignores the rest', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}databases:\n  state:\n    name: psycopg2\n    data_stores: [state]\n    args: {dbname: st}\n  primary:\n    name: psycopg2\n    data_stores: [main]\n    args: {dbname: main_db}\n`,
    });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.database).toMatchObject({ kind: 'postgres', database: 'main_db' });
    expect(c.warnings.some((w) => w.includes('using databases.primary and ignoring databases.state'))).toBe(true);
  });
});

describe('defaults (Synapse documented defaults)', () => {
  const t = tempTree({ 'homeserver.yaml': MINIMAL });
  const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });

  it('listener, URLs and paths', () => {
    expect(config.listeners).toEqual([
      {
        port: 8008,
        bind_addresses: ['::', '0.0.0.0'],
        type: 'http',
        tls: false,
        x_forwarded: false,
        resources: [{ names: ['client', 'federation'], compress: false }],
      },
    ]);
    expect(config.public_baseurl).toBe('https://example.com/');
    expect(config.media_store_path).toBe(join(t, 'media_store'));
    expect(config.signing_key_path).toBe(join(t, 'example.com.signing.key'));
    expect(config.log_config).toBeUndefined();
    expect(config.log_level).toBeUndefined();
    expect(config.pid_file).toBeUndefined();
  });

  it('media, registration, keys, TURN', () => {
    expect(config.max_upload_size).toBe(50 * 1024 * 1024);
    expect(config.max_image_pixels).toBe(32 * 1024 * 1024);
    // Synapse: max(200 x 64 KiB PDU, max_upload_size)
    expect(config.max_request_body_size).toBe(50 * 1024 * 1024);
    expect(config.enable_authenticated_media).toBe(true);
    expect(config.dynamic_thumbnails).toBe(false);
    expect(config.thumbnail_sizes).toEqual([
      { width: 32, height: 32, method: 'crop' },
      { width: 96, height: 96, method: 'crop' },
      { width: 320, height: 240, method: 'scale' },
      { width: 640, height: 480, method: 'scale' },
      { width: 800, height: 600, method: 'scale' },
    ]);
    expect(config.enable_registration).toBe(false);
    expect(config.registration_requires_token).toBe(false);
    expect(config.allow_guest_access).toBe(false);
    expect(config.bcrypt_rounds).toBe(12);
    expect(config.password_config).toEqual({ enabled: true, localdb_enabled: true, pepper: '', policy: {} });
    expect(config.key_refresh_interval_ms).toBe(24 * 3600 * 1000);
    expect(config.trusted_key_servers).toEqual([{ server_name: 'matrix.org' }]);
    expect(config.turn_user_lifetime_ms).toBe(3600 * 1000);
    expect(config.turn_allow_guests).toBe(true);
    expect(config.turn_uris).toEqual([]);
  });

  it('presence, rooms, directory, well-known', () => {
    expect(config.presence_enabled).toBe(true);
    expect(config.default_room_version).toBe('11');
    expect(config.serve_server_wellknown).toBe(false);
    expect(config.extra_well_known_client_content).toEqual({});
    expect(config.user_directory).toEqual({ enabled: true, search_all_users: false });
    expect(config.allow_public_rooms_over_federation).toBe(false);
    expect(config.allow_public_rooms_without_auth).toBe(false);
    expect(config.federation_domain_whitelist).toBeUndefined();
    expect(config.auto_join_rooms).toEqual([]);
    expect(config.url_preview_enabled).toBe(false);
  });

  it('rate limits', () => {
    expect(config.rc_message).toEqual({ per_second: 0.2, burst_count: 10 });
    expect(config.rc_registration).toEqual({ per_second: 0.17, burst_count: 3 });
    expect(config.rc_login).toEqual({
      address: { per_second: 0.003, burst_count: 5 },
      account: { per_second: 0.003, burst_count: 5 },
      failed_attempts: { per_second: 0.17, burst_count: 3 },
    });
    expect(config.rc_joins).toEqual({
      local: { per_second: 0.1, burst_count: 10 },
      remote: { per_second: 0.01, burst_count: 10 },
    });
    expect(config.rc_admin_redaction).toBeUndefined();
    // Synapse's RatelimitConfig defaults for the rest.
    expect(config.rc_registration_token_validity).toEqual({ per_second: 0.1, burst_count: 5 });
    expect(config.rc_joins_per_room).toEqual({ per_second: 1, burst_count: 10 });
    expect(config.rc_invites).toEqual({
      per_room: { per_second: 0.3, burst_count: 10 },
      per_user: { per_second: 0.003, burst_count: 5 },
      per_issuer: { per_second: 0.3, burst_count: 10 },
    });
    expect(config.rc_third_party_invite).toEqual({ per_second: 0.0025, burst_count: 5 });
    expect(config.rc_3pid_validation).toEqual({ per_second: 0.003, burst_count: 5 });
    expect(config.rc_media_create).toEqual({ per_second: 10, burst_count: 50 });
    expect(config.rc_presence).toEqual({ per_user: { per_second: 0.1, burst_count: 1 } });
    expect(config.rc_room_creation).toEqual({ per_second: 0.016, burst_count: 10 });
    expect(config.rc_user_directory).toEqual({ per_second: 0.016, burst_count: 200 });
    expect(config.rc_key_requests).toEqual({ per_second: 20, burst_count: 100 });
    expect(config.rc_delayed_event_mgmt).toEqual({ per_second: 1, burst_count: 5 });
    expect(config.rc_reports).toEqual({ per_second: 1, burst_count: 5 });
    expect(config.rc_federation).toEqual({ window_size: 1000, sleep_limit: 10, sleep_delay: 500, reject_limit: 50, concurrent: 3 });
  });
});

describe('values as written', () => {
  it('relative paths, YAML 1.1 booleans, durations, sizes', () => {
    const dir = join(FIXTURES, 'with-log-config');
    const c = collector();
    const config = loadConfig([join(dir, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.log_config).toBe(join(dir, 'log.yaml'));
    expect(config.log_level).toBeUndefined(); // the levels of log_config are read by the logger (test/unit/log-*.test.ts)
    expect(config.media_store_path).toBe(join(dir, 'media'));
    expect(config.serve_server_wellknown).toBe(true); // "yes"
    expect(config.presence_enabled).toBe(false); // "off"
    expect(config.turn_user_lifetime_ms).toBe(86400000);
    expect(config.max_upload_size).toBe(100 * 1024 * 1024);
    expect(config.max_request_body_size).toBe(100 * 1024 * 1024);
    expect(config.public_baseurl).toBe('https://matrix.example.org/'); // trailing slash added, as Synapse does
    expect(config.serve_client_wellknown).toBe(true);
    expect(c.warnings).toEqual([]);
  });

  it('log_level overrides log_config, and takes Python level names', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}log_level: DEBUG\n` });
    expect(loadConfig([join(t, 'homeserver.yaml')], { env: {} }).log_level).toBe('debug');
  });

  it('max_request_body_size is 200 PDUs (12.5 MiB) when max_upload_size is smaller', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}max_upload_size: 10M\n` });
    expect(loadConfig([join(t, 'homeserver.yaml')], { env: {} }).max_request_body_size).toBe(200 * 65536);
  });

  it('rate limits, legacy rc_messages_per_second, rc_admin_redaction', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}rc_messages_per_second: 1\nrc_message_burst_count: 20\nrc_login:\n  address: {per_second: 1, burst_count: 2.9}\nrc_admin_redaction:\n  per_second: 5\n`,
    });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.rc_message).toEqual({ per_second: 1, burst_count: 20 });
    expect(config.rc_login.address).toEqual({ per_second: 1, burst_count: 2 }); // int(), as Synapse
    expect(config.rc_login.account).toEqual({ per_second: 0.003, burst_count: 5 });
    expect(config.rc_admin_redaction).toEqual({ per_second: 5, burst_count: 3 });
  });

  it('nested rate limits fall back key by key; rc_federation and its legacy federation_rc_* keys', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}rc_invites:\n  per_user: {burst_count: 2}\nrc_presence:\n  per_user: {per_second: 0}\nrc_room_creation: {per_second: 3}\nfederation_rc_concurrent: 7\n`,
    });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.rc_invites.per_user).toEqual({ per_second: 0.003, burst_count: 2 });
    expect(config.rc_invites.per_room).toEqual({ per_second: 0.3, burst_count: 10 });
    expect(config.rc_presence.per_user).toEqual({ per_second: 0, burst_count: 1 });
    expect(config.rc_room_creation).toEqual({ per_second: 3, burst_count: 10 });
    expect(config.rc_federation.concurrent).toBe(7);
    const t2 = tempTree({ 'homeserver.yaml': `${MINIMAL}federation_rc_concurrent: 7\nrc_federation: {window_size: 750}\n` });
    const c2 = loadConfig([join(t2, 'homeserver.yaml')], { env: {} });
    expect(c2.rc_federation).toEqual({ window_size: 750, sleep_limit: 10, sleep_delay: 500, reject_limit: 50, concurrent: 3 });
  });

  it('secrets from *_path files, trimmed', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}registration_shared_secret_path: secrets/reg\nmacaroon_secret_key_path: /nonexistent-but-unused\nmacaroon_secret_key: inline\nturn_shared_secret_path: secrets/turn\n`,
      'secrets/reg': 'from-a-file\n',
      'secrets/turn': '  turn-secret  \n',
    });
    const err = configErrorOf(() => loadConfig([join(t, 'homeserver.yaml')], { env: {} }));
    expect(err.message).toBe(
      `${join(t, 'homeserver.yaml')}: macaroon_secret_key: both macaroon_secret_key and macaroon_secret_key_path are set; use one of them`,
    );
    writeFileSync(
      join(t, 'homeserver.yaml'),
      `${MINIMAL}registration_shared_secret_path: secrets/reg\nturn_shared_secret_path: secrets/turn\n`,
    );
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.registration_shared_secret).toBe('from-a-file');
    expect(config.registration_shared_secret_path).toBe(join(t, 'secrets', 'reg'));
    expect(config.turn_shared_secret).toBe('turn-secret');
  });

  it('later files override earlier ones key by key, and the error names the file that set the key', () => {
    const t = tempTree({
      'a.yaml': `${MINIMAL}max_upload_size: 10M\nturn_user_lifetime: 2h\n`,
      'b.yaml': 'max_upload_size: 20M\n',
      'c.yaml': 'turn_user_lifetime: two hours\n',
    });
    const ok = loadConfig([join(t, 'a.yaml'), join(t, 'b.yaml')], { env: {} });
    expect(ok.max_upload_size).toBe(20 * 1024 * 1024);
    expect(ok.turn_user_lifetime_ms).toBe(2 * 3600 * 1000);
    const err = configErrorOf(() => loadConfig([join(t, 'a.yaml'), join(t, 'c.yaml')], { env: {} }));
    expect(err.file).toBe(join(t, 'c.yaml'));
    expect(err.key).toBe('turn_user_lifetime');
  });
});

describe('ConfigError: names the file and key path', () => {
  /** Loads one homeserver.yaml with `text`; returns the error and the file path. */
  function fail(text: string, env: NodeJS.ProcessEnv = {}): { err: ConfigError; file: string } {
    const t = tempTree({ 'homeserver.yaml': text });
    const file = join(t, 'homeserver.yaml');
    return { err: configErrorOf(() => loadConfig([file], { env })), file };
  }

  it('listener port that is not a number (the message format)', () => {
    const { err, file } = fail(`${MINIMAL}listeners:\n  - port: abc\n    type: http\n`);
    expect(err.message).toBe(`${file}: listeners[0].port: expected an integer between 1 and 65535, got "abc"`);
    expect(err.file).toBe(file);
    expect(err.key).toBe('listeners[0].port');
  });

  it('listener port out of range, in the second listener', () => {
    const { err, file } = fail(`${MINIMAL}listeners:\n  - {port: 8008, type: http}\n  - {port: 70000, type: metrics}\n`);
    expect(err.message).toBe(`${file}: listeners[1].port: expected an integer between 1 and 65535, got 70000`);
  });

  it.each([
    ['a listener that is not a mapping', 'listeners:\n  - 8008\n', 'listeners[0]: expected a mapping (key: value pairs), got 8008'],
    ['listeners that is not a list', 'listeners: 8008\n', 'listeners: expected a list, got 8008'],
    ['a listener without type', 'listeners:\n  - port: 8008\n', 'listeners[0].type: required: one of http, metrics, manhole'],
    ['a listener without port', 'listeners:\n  - type: http\n', 'listeners[0].port: required'],
    ['an unknown listener type', 'listeners:\n  - {port: 8008, type: https}\n', 'listeners[0].type: expected one of http, metrics, manhole, got "https"'],
    [
      'an unknown resource name',
      'listeners:\n  - port: 8008\n    type: http\n    resources:\n      - names: [client, federaton]\n',
      'listeners[0].resources[0].names[1]: expected one of client,',
    ],
    ['x_forwarded that is not a boolean', 'listeners:\n  - {port: 8008, type: http, x_forwarded: maybe}\n', 'listeners[0].x_forwarded: expected true or false, got "maybe"'],
    ['a UNIX socket listener', 'listeners:\n  - {path: /run/axon.sock, type: http}\n', 'listeners[0].path: UNIX socket listeners are not supported'],
  ])('%s', (_name, yaml, expected) => {
    const { err, file } = fail(`${MINIMAL}${yaml}`);
    expect(err.message.startsWith(`${file}: ${expected}`)).toBe(true);
  });

  it('missing server_name', () => {
    const { err, file } = fail('report_stats: false\n');
    expect(err.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: server_name: required`));
  });

  it.each([
    ['server_name: "exa mple.com"\n', 'server_name: "exa mple.com" is not a valid server name'],
    ['server_name: "example.com:99999"\n', 'server_name: the port in "example.com:99999" must be a number between 1 and 65535'],
    ['server_name: "[::1"\n', 'server_name: "[::1" is not a valid IPv6 literal'],
    ['server_name: 42\n', 'server_name: expected a string, got 42'],
  ])('bad server_name %j', (yaml, expected) => {
    const { err, file } = fail(yaml);
    expect(err.message).toBe(`${file}: ${expected}${expected.endsWith('server name') ? ' (a DNS name such as example.com, optionally with :port)' : ''}`);
  });

  it('accepts server names with ports and IPv6 literals', () => {
    for (const name of ['localhost', 'localhost:8448', 'matrix.example.org', '[::1]', '[2001:db8::1]:8448', '1.2.3.4']) {
      const t = tempTree({ 'homeserver.yaml': `server_name: "${name}"\n` });
      expect(loadConfig([join(t, 'homeserver.yaml')], { env: {} }).server_name).toBe(name);
    }
  });

  it.each([
    ['turn_user_lifetime: 1 hour\n', 'turn_user_lifetime: expected a duration such as'],
    ['key_refresh_interval: 1.5d\n', 'key_refresh_interval: expected a duration such as'],
    ['max_upload_size: 50MB\n', 'max_upload_size: expected a size such as'],
    ['max_image_pixels: -1\n', 'max_image_pixels: expected a size such as'],
    ['enable_authenticated_media: "sometimes"\n', 'enable_authenticated_media: expected true or false, got "sometimes"'],
    ['bcrypt_rounds: 2\n', 'bcrypt_rounds: expected an integer between 4 and 31, got 2'],
    ['turn_uris: turn:turn.example.com\n', 'turn_uris: expected a list, got "turn:turn.example.com"'],
    ['turn_uris: [stun:example.com]\n', 'turn_uris[0]: expected a turn: or turns: URI'],
    ['thumbnail_sizes:\n  - {width: 32, height: 32, method: zoom}\n', 'thumbnail_sizes[0].method: expected "crop" or "scale", got "zoom"'],
    ['rc_message: {per_second: fast}\n', 'rc_message.per_second: expected a number of at least 0, got "fast"'],
    ['rc_invites: {per_issuer: {burst_count: -1}}\n', 'rc_invites.per_issuer.burst_count: expected a number of at least 0, got -1'],
    ['rc_joins_per_room: 3\n', 'rc_joins_per_room: expected a mapping (key: value pairs), got 3'],
    ['database:\n  name: mysql\n', 'database.name: expected "psycopg2" (PostgreSQL) or "sqlite3"'],
    ['database:\n  name: psycopg2\n  args: {port: 99999}\n', 'database.args.port: expected an integer between 1 and 65535, got 99999'],
    ['database:\n  name: psycopg2\n  args: {cp_min: 20, cp_max: 10}\n', 'database.args.cp_min: must not be more than cp_max (10), got 20'],
    ['default_room_version: "99"\n', 'default_room_version: expected a known room version, got "99"'],
    ['public_baseurl: "ftp://example.com/"\n', 'public_baseurl: expected an http or https URL'],
    ['auto_join_rooms: ["welcome"]\n', 'auto_join_rooms[0]: expected a room alias'],
    ['presence: {enabled: sometimes}\n', 'presence.enabled: expected true or false, got "sometimes"'],
    ['extra_well_known_client_content: {"m.homeserver": {}}\n', 'extra_well_known_client_content: m.homeserver cannot be set here'],
    ['signing_key: "ed25519 a_abcd AAAA"\n', 'signing_key: an inline signing key is not supported'],
    ['url_preview_enabled: true\n', 'url_preview_enabled: for security, url_preview_ip_range_blacklist must list'],
    ['log_level: loud\n', 'log_level: expected one of trace, debug'],
    ['old_signing_keys:\n  "ed25519:old": {key: abc}\n', 'old_signing_keys.ed25519:old.expired_ts: expected an integer of at least 0, got nothing'],
    ['registration_shared_secret_path: missing-file\n', 'registration_shared_secret_path: cannot read'],
  ])('%j', (yaml, expected) => {
    const { err, file } = fail(`${MINIMAL}${yaml}`);
    expect(err.message.startsWith(`${file}: ${expected}`), err.message).toBe(true);
  });

  it('open registration without any verification is refused, as Synapse refuses it', () => {
    const { err, file } = fail(`${MINIMAL}enable_registration: true\n`);
    expect(err.message.startsWith(`${file}: enable_registration: open registration without verification`)).toBe(true);
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}enable_registration: true\nregistration_requires_token: true\n` });
    expect(loadConfig([join(t, 'homeserver.yaml')], { env: {} }).enable_registration).toBe(true);
    const u = tempTree({ 'homeserver.yaml': `${MINIMAL}enable_registration: "yes"\nenable_registration_without_verification: true\n` });
    expect(loadConfig([join(u, 'homeserver.yaml')], { env: {} }).enable_registration).toBe(true);
  });

  it('never echoes a secret value', () => {
    const { err } = fail(`${MINIMAL}macaroon_secret_key: 1234567890\n`);
    expect(err.message).toMatch(/macaroon_secret_key: expected a string, got a number$/);
    expect(err.message).not.toContain('1234567890');
    const db = fail(`${MINIMAL}database:\n  name: psycopg2\n  args: {password: [hunter2]}\n`);
    expect(db.err.message).toMatch(/database\.args\.password: expected a string, got a list$/);
    expect(db.err.message).not.toContain('hunter2');
  });

  it('invalid YAML names the file and line', () => {
    const { err, file } = fail('server_name: example.com\nlisteners:\n  - port: 8008\n   type: http\n');
    expect(err.message.startsWith(`${file}: invalid YAML: line 4`)).toBe(true);
    expect(err.file).toBe(file);
  });

  it('a missing config file', () => {
    const t = tempTree();
    const err = configErrorOf(() => loadConfig([join(t, 'nope.yaml')], { env: {} }));
    expect(err.message).toBe(`${join(t, 'nope.yaml')}: config file not found`);
  });

  it('no config paths at all', () => {
    expect(() => loadConfig([], { env: {} })).toThrow(ConfigError);
  });
});

describe('unknown keys', () => {
  it('are warned about once each, naming the file; Synapse keys Axon ignores are one info line', () => {
    const t = tempTree({
      'homeserver.yaml': `${MINIMAL}enable_registation: true\nmax_upload_size: 10M\ncaches:\n  global_factor: 0.5\nenable_metrics: false\n`,
      'conf.d/10-more.yaml': 'enable_registation: false\nsome_plugin_setting: 3\n',
    });
    const c = collector();
    loadConfig([join(t, 'homeserver.yaml'), join(t, 'conf.d')], { env: {}, ...c });
    const typo = c.warnings.filter((w) => w.includes('"enable_registation"'));
    expect(typo).toHaveLength(1);
    expect(typo[0]).toContain(join(t, 'conf.d', '10-more.yaml'));
    expect(c.warnings.filter((w) => w.includes('"some_plugin_setting"'))).toHaveLength(1);
    expect(c.warnings).toHaveLength(2);
    expect(c.infos).toEqual(['Synapse settings Axon does not act on (ignored): caches, enable_metrics']);
  });

  it('a mis-indented sub-key shows up as unknown (the manual’s presence/enabled example)', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}presence:\nenabled: false\n` });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.presence_enabled).toBe(true);
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain('"enabled"');
  });

  it('an unknown key inside a listener is warned about', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}listeners:\n  - {port: 8008, type: http, x_forwarder: true}\n` });
    const c = collector();
    loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain('listeners[0].x_forwarder');
  });

  it('a key repeated in one file: the last wins, with a warning', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}max_upload_size: 10M\nmax_upload_size: 20M\n` });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.max_upload_size).toBe(20 * 1024 * 1024);
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain('max_upload_size is set more than once');
  });
});

describe('tls_certificate_path and tls_private_key_path', () => {
  const TLS_LISTENER = 'listeners:\n  - {port: 8448, type: http, tls: true, resources: [{names: [federation]}]}\n';

  it('resolve against the config directory, and are not listed as ignored Synapse keys', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}${TLS_LISTENER}tls_certificate_path: tls/fullchain.pem\ntls_private_key_path: /etc/ssl/private/key.pem\n` });
    const c = collector();
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {}, ...c });
    expect(config.listeners[0]!.tls).toBe(true);
    expect(config.tls_certificate_path).toBe(join(t, 'tls', 'fullchain.pem'));
    expect(config.tls_private_key_path).toBe('/etc/ssl/private/key.pem');
    expect(c.infos.join('\n')).not.toContain('tls_');
  });

  it('are optional without a tls listener (read all the same)', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}tls_certificate_path: /x/cert.pem\n` });
    const config = loadConfig([join(t, 'homeserver.yaml')], { env: {} });
    expect(config.tls_certificate_path).toBe('/x/cert.pem');
    expect(config.tls_private_key_path).toBeUndefined();
    expect(loadConfig([join(tempTree({ 'homeserver.yaml': MINIMAL }), 'homeserver.yaml')], { env: {} }).tls_certificate_path).toBeUndefined();
  });

  it.each([
    ['tls_certificate_path', 'tls_private_key_path: /x/key.pem\n'],
    ['tls_private_key_path', 'tls_certificate_path: /x/cert.pem\n'],
  ])('a tls listener without %s is an error naming that key', (key, others) => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}${TLS_LISTENER}${others}` });
    const file = join(t, 'homeserver.yaml');
    const err = configErrorOf(() => loadConfig([file], { env: {} }));
    expect(err.key).toBe(key);
    expect(err.message).toContain(`${key}: required: listeners[0] has tls: true`);
  });

  it('an empty path is an error', () => {
    const t = tempTree({ 'homeserver.yaml': `${MINIMAL}${TLS_LISTENER}tls_certificate_path: ""\ntls_private_key_path: /x/key.pem\n` });
    expect(configErrorOf(() => loadConfig([join(t, 'homeserver.yaml')], { env: {} })).message).toContain('tls_certificate_path: must not be empty');
  });
});

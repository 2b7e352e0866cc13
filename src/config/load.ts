/**
 * Loads and validates homeserver.yaml with Synapse's keys and defaults.
 *
 * - `paths` are the `-c/--config-path` values in order. A directory adds its
 *   `*.yaml` files in sorted order (Debian's `/etc/matrix-synapse/conf.d/`),
 *   as Synapse's `find_config_files` does.
 * - Later files replace earlier ones key by key at the top level, as
 *   Synapse's `read_config_files` does (a `database:` section in conf.d
 *   replaces the whole `database:` section of homeserver.yaml).
 * - YAML is read as YAML 1.1, as PyYAML reads it (`yes`/`no`/`on`/`off` are
 *   booleans, `<<` merge keys work, a repeated key is not an error), so a file
 *   Synapse accepts reads the same here.
 * - Relative paths resolve against the directory of the first config file.
 *   (Synapse resolves them against its working directory; guides and
 *   generated configs use absolute paths, so this only matters for defaults
 *   such as `media_store`.)
 * - Any bad value throws ConfigError naming the file and key path.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, parseDocument } from 'yaml';
import { DEFAULT_ROOM_VERSION, roomVersion } from '../core/room-versions.js';
import {
  DEFAULT_BCRYPT_ROUNDS,
  DEFAULT_BIND_ADDRESSES,
  DEFAULT_CP_MAX,
  DEFAULT_CP_MIN,
  DEFAULT_KEY_REFRESH_INTERVAL,
  DEFAULT_MAX_IMAGE_PIXELS,
  DEFAULT_MAX_UPLOAD_SIZE,
  DEFAULT_MEDIA_STORE_PATH,
  DEFAULT_THUMBNAIL_SIZES,
  DEFAULT_TRUSTED_KEY_SERVERS,
  DEFAULT_TURN_USER_LIFETIME,
  LISTENER_KEYS,
  LISTENER_RESOURCES,
  LISTENER_TYPES,
  MAX_REQUEST_SIZE,
  defaultListeners,
} from './defaults.js';
import { ConfigError, describeValue } from './errors.js';
import { toPinoLevel } from './log-config.js';
import { readRateLimits } from './rate-limits.js';
import { isObj, type Obj, Reader } from './reader.js';
import { placeholderLine, urlHasPlaceholderPassword } from './placeholders.js';
import { AXON_IMPLEMENTED_KEYS, AXON_KEYS, SYNAPSE_KEYS } from './synapse-keys.js';
import type { DatabaseConfig, HomeserverConfig, ListenerConfig } from './types.js';

export interface LoadConfigOptions {
  /** Environment to read DATABASE_URL from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Problems worth an operator's attention: unknown keys, missing log_config, ignored files. */
  warn?: (msg: string) => void;
  /** The single line listing Synapse settings Axon ignores, and similar notes; defaults to `warn`. */
  info?: (msg: string) => void;
}

export interface ConfigFile {
  /** Absolute path. */
  path: string;
  /** The path as the operator wrote it (or found in a directory they named); used in messages. */
  display: string;
}

export interface RawConfig {
  files: ConfigFile[];
  /** Top-level keys merged over the files. */
  raw: Record<string, unknown>;
  /** For each top-level key, the file (display form) whose value won. */
  origin: Map<string, string>;
  /** The first config file's directory, absolute. */
  configDir: string;
}

const noop = (): void => {};

/**
 * The config files `paths` name, in order: a file as is, a directory as its
 * `*.yaml` files sorted by name (other entries are skipped with a warning, as
 * Synapse does).
 */
export function findConfigFiles(paths: readonly string[], warn: (msg: string) => void = noop): ConfigFile[] {
  const files: ConfigFile[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(code === 'ENOENT' ? 'config file not found' : `cannot read it (${code ?? String(err)})`, {
        file: p,
      });
    }
    if (!st.isDirectory()) {
      files.push({ path: resolve(p), display: p });
      continue;
    }
    const found: string[] = [];
    for (const entry of readdirSync(p)) {
      const full = join(p, entry);
      let isFile = false;
      try {
        isFile = statSync(full).isFile();
      } catch {
        isFile = false;
      }
      if (!isFile) {
        warn(`${full}: not a regular file in a config directory; ignoring it`);
      } else if (!entry.endsWith('.yaml')) {
        warn(`${full}: does not end in .yaml; ignoring it`);
      } else {
        found.push(entry);
      }
    }
    // Python's sorted(): by code point, which is what JS's default sort does for these names.
    for (const entry of found.sort()) files.push({ path: resolve(p, entry), display: join(p, entry) });
  }
  return files;
}

/** Parses one YAML file (YAML 1.1, as PyYAML); null when empty or not a mapping. */
function readYamlFile(file: ConfigFile, warn: (msg: string) => void): Record<string, unknown> | null {
  let text: string;
  try {
    text = readFileSync(file.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read it (${code ?? String(err)})`, { file: file.display });
  }
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false, merge: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
    throw new ConfigError(`invalid YAML: ${where}${e.message.split('\n')[0]}`, { file: file.display });
  }
  if (isMap(doc.contents)) {
    const seen = new Set<string>();
    for (const item of doc.contents.items) {
      const k = isScalar(item.key) ? String(item.key.value) : undefined;
      if (k === undefined) continue;
      if (seen.has(k)) warn(`${file.display}: ${k} is set more than once; the last one wins`);
      seen.add(k);
    }
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(`invalid YAML: ${(err as Error).message.split('\n')[0]}`, { file: file.display });
  }
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) {
    warn(`${file.display}: empty or not a key-value mapping; ignoring it`);
    return null;
  }
  return value as Record<string, unknown>;
}

/** Finds and reads the config files and merges them, without validating values. */
export function readRawConfig(paths: readonly string[], warn: (msg: string) => void = noop): RawConfig {
  if (paths.length === 0) {
    throw new ConfigError('no config file given; pass -c /path/to/homeserver.yaml (or --generate-config to write one)');
  }
  const files = findConfigFiles(paths, warn);
  if (files.length === 0) {
    throw new ConfigError(`no *.yaml config files found in ${paths.join(', ')}`);
  }
  const raw: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  for (const file of files) {
    const data = readYamlFile(file, warn);
    if (!data) continue;
    for (const [k, v] of Object.entries(data)) {
      raw[k] = v;
      origin.set(k, file.display);
    }
  }
  return { files, raw, origin, configDir: dirname(files[0]!.path) };
}


// ---------------------------------------------------------------------------
// Sections.

/** Synapse's parse_and_validate_server_name: host[:port], host a DNS name or [IPv6]. */
export function serverNameProblem(name: string): string | undefined {
  let host = name;
  if (!name.endsWith(']')) {
    const i = name.lastIndexOf(':');
    if (i >= 0) {
      host = name.slice(0, i);
      const port = name.slice(i + 1);
      if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
        return `the port in ${JSON.stringify(name)} must be a number between 1 and 65535`;
      }
    }
  }
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || !isIPv6(host.slice(1, -1))) {
      return `${JSON.stringify(name)} is not a valid IPv6 literal`;
    }
    return undefined;
  }
  if (!/^[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*$/.test(host)) {
    return `${JSON.stringify(name)} is not a valid server name (a DNS name such as example.com, optionally with :port)`;
  }
  return undefined;
}

function readServerName(r: Reader): string {
  const v = r.get('server_name');
  if (v === undefined) {
    r.fail('server_name', 'required: set it to the domain in your users\' IDs, e.g. server_name: "example.com"');
  }
  const name = r.nonEmptyStr(v, 'server_name');
  const problem = serverNameProblem(name);
  if (problem) r.fail('server_name', problem);
  return name;
}

function readPublicBaseurl(r: Reader, serverName: string): { url: string; explicit: boolean } {
  const v = r.get('public_baseurl');
  if (v === undefined) return { url: `https://${serverName}/`, explicit: false };
  let url = r.nonEmptyStr(v, 'public_baseurl');
  if (!url.endsWith('/')) url += '/';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    r.fail('public_baseurl', `expected an http(s) URL such as "https://matrix.example.com/", got ${describeValue(v)}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    r.fail('public_baseurl', `expected an http or https URL, got ${describeValue(v)}`);
  }
  if (parsed.search || parsed.hash) r.fail('public_baseurl', 'must not have a query string or fragment');
  return { url, explicit: true };
}

function readListener(r: Reader, v: unknown, i: number, warn: (msg: string) => void): ListenerConfig {
  const base = `listeners[${i}]`;
  const l = r.obj(v, base);
  for (const k of Object.keys(l)) {
    if (!LISTENER_KEYS.has(k)) warn(`${r.fileOf('listeners')}: ${base}.${k} is not a listener option; ignoring it`);
  }
  if (l['type'] === undefined || l['type'] === null) {
    r.fail(`${base}.type`, `required: one of ${[...LISTENER_TYPES].join(', ')}`);
  }
  const type = r.str(l['type'], `${base}.type`);
  if (type === 'replication') {
    r.fail(`${base}.type`, 'direct TCP replication listeners are gone (as in Synapse); use an http listener with the "replication" resource');
  }
  if (!LISTENER_TYPES.has(type)) r.expected(`${base}.type`, `one of ${[...LISTENER_TYPES].join(', ')}`, type);

  if (l['path'] !== undefined && l['path'] !== null) {
    r.fail(`${base}.path`, 'UNIX socket listeners are not supported by Axon yet; use port (and bind_addresses) instead');
  }
  if (l['port'] === undefined || l['port'] === null) {
    r.fail(`${base}.port`, 'required: the TCP port to listen on, e.g. 8008');
  }
  const port = r.int(l['port'], `${base}.port`, 1, 65535);

  const bind: string[] = [];
  if (l['bind_addresses'] !== undefined && l['bind_addresses'] !== null) {
    bind.push(...r.strList(l['bind_addresses'], `${base}.bind_addresses`));
  }
  if (l['bind_address'] !== undefined && l['bind_address'] !== null) {
    bind.push(r.nonEmptyStr(l['bind_address'], `${base}.bind_address`));
  }
  bind.forEach((a, j) => {
    if (a.trim() === '') r.fail(`${base}.bind_addresses[${j}]`, 'must not be empty');
  });
  if (bind.length === 0) {
    // Synapse: the metrics listener does not support IPv6.
    bind.push(...(type === 'metrics' ? ['0.0.0.0'] : DEFAULT_BIND_ADDRESSES));
  }

  const tls = l['tls'] === undefined || l['tls'] === null ? false : r.bool(l['tls'], `${base}.tls`);
  const xf =
    l['x_forwarded'] === undefined || l['x_forwarded'] === null ? false : r.bool(l['x_forwarded'], `${base}.x_forwarded`);

  const resources: ListenerConfig['resources'] = [];
  if (l['resources'] !== undefined && l['resources'] !== null) {
    r.list(l['resources'], `${base}.resources`).forEach((res, j) => {
      const rp = `${base}.resources[${j}]`;
      const ro = r.obj(res, rp);
      for (const k of Object.keys(ro)) {
        if (k !== 'names' && k !== 'compress') r.fail(`${rp}.${k}`, 'unknown resource option (expected names and compress)');
      }
      const names =
        ro['names'] === undefined || ro['names'] === null ? [] : r.strList(ro['names'], `${rp}.names`);
      names.forEach((n, k) => {
        if (!LISTENER_RESOURCES.has(n)) r.expected(`${rp}.names[${k}]`, `one of ${[...LISTENER_RESOURCES].join(', ')}`, n);
      });
      const compress =
        ro['compress'] === undefined || ro['compress'] === null ? false : r.bool(ro['compress'], `${rp}.compress`);
      resources.push({ names, compress });
    });
  }
  return { port, bind_addresses: bind, type, tls, x_forwarded: xf, resources };
}

/**
 * Synapse's top-level `tls_certificate_path` (PEM, the full chain) and
 * `tls_private_key_path` (PEM): both required once a listener has `tls: true`.
 * Only their presence is checked here; startServer reads the files.
 */
function readTlsPaths(r: Reader, listeners: readonly ListenerConfig[]): { tls_certificate_path?: string; tls_private_key_path?: string } {
  const out: { tls_certificate_path?: string; tls_private_key_path?: string } = {};
  const first = listeners.findIndex((l) => l.tls);
  for (const key of ['tls_certificate_path', 'tls_private_key_path'] as const) {
    if (r.has(key)) {
      out[key] = r.path(r.get(key), key);
    } else if (first >= 0) {
      const what = key === 'tls_certificate_path' ? "the PEM certificate file (the full chain, as certbot's fullchain.pem)" : "the PEM private key file (as certbot's privkey.pem)";
      r.fail(key, `required: listeners[${first}] has tls: true, so set ${key} to ${what}`);
    }
  }
  return out;
}

function readListeners(r: Reader, warn: (msg: string) => void): ListenerConfig[] {
  const v = r.get('listeners');
  if (v === undefined) return defaultListeners();
  const list = r.list(v, 'listeners');
  if (list.length === 0) warn(`${r.fileOf('listeners')}: listeners is empty; the server will not accept any connections`);
  return list.map((l, i) => readListener(r, l, i, warn));
}

/** Keys Synapse reads in a `database` section (besides args). */
const DATABASE_SECTION_KEYS = new Set(['name', 'args', 'txn_limit', 'allow_unsafe_locale', 'data_stores']);
/** psycopg2 args Axon uses; any other (keepalives, connect_timeout, ...) is named once in a warning. */
const PSYCOPG2_ARGS = new Set(['user', 'password', 'database', 'dbname', 'host', 'port', 'cp_min', 'cp_max', 'sslmode']);
/** sqlite3 args Synapse sets or reads; Axon only looks at `database` (for data_dir). */
const SQLITE_ARGS = new Set(['database', 'cp_min', 'cp_max', 'check_same_thread']);

type DatabaseChoice =
  | { kind: 'postgres'; config: Extract<DatabaseConfig, { kind: 'postgres' }>; passwordKey: string }
  | { kind: 'embedded'; sqlitePath?: string };

function readDatabaseSection(r: Reader, section: unknown, base: string, warn: (msg: string) => void): DatabaseChoice {
  const db = r.obj(section, base);
  for (const k of Object.keys(db)) {
    if (!DATABASE_SECTION_KEYS.has(k)) warn(`${r.fileOf(base)}: ${base}.${k} is not a database option; ignoring it`);
  }
  const name = db['name'] === undefined || db['name'] === null ? 'sqlite3' : r.str(db['name'], `${base}.name`);
  const args = db['args'] === undefined || db['args'] === null ? {} : r.obj(db['args'], `${base}.args`);
  const argPath = (k: string) => `${base}.args.${k}`;
  const opt = (k: string) => (args[k] === undefined || args[k] === null ? undefined : args[k]);

  if (name === 'sqlite3') {
    const ignored = Object.keys(args).filter((k) => !SQLITE_ARGS.has(k));
    if (ignored.length > 0) warn(`${r.fileOf(base)}: ${base}.args: Axon ignores ${ignored.join(', ')}`);
    const dbPath = opt('database');
    return { kind: 'embedded', sqlitePath: dbPath === undefined ? undefined : r.nonEmptyStr(dbPath, argPath('database')) };
  }
  if (name !== 'psycopg2') {
    r.expected(`${base}.name`, '"psycopg2" (PostgreSQL) or "sqlite3" (Axon: embedded PostgreSQL)', name);
  }
  const ignored = Object.keys(args).filter((k) => !PSYCOPG2_ARGS.has(k));
  if (ignored.length > 0) warn(`${r.fileOf(base)}: ${base}.args: Axon does not use ${ignored.join(', ')}`);

  const text = (k: string): string | undefined => {
    const v = opt(k);
    if (v === undefined) return undefined;
    // psycopg2 stringifies its arguments; YAML may have read a numeric password or name as a number.
    if (typeof v === 'number') return String(v);
    return r.nonEmptyStr(v, argPath(k));
  };
  const dbname = text('dbname');
  const database = text('database');
  if (dbname !== undefined && database !== undefined && dbname !== database) {
    r.fail(argPath('dbname'), 'both dbname and database are set, to different names; use one of them');
  }
  let port: number | undefined;
  const portV = opt('port');
  if (portV !== undefined) {
    const n = typeof portV === 'string' && /^\d+$/.test(portV) ? Number(portV) : portV;
    port = r.int(n, argPath('port'), 1, 65535);
  }
  const cpMinV = opt('cp_min');
  const cpMaxV = opt('cp_max');
  const cp_min = cpMinV === undefined ? DEFAULT_CP_MIN : r.int(cpMinV, argPath('cp_min'), 0);
  const cp_max = cpMaxV === undefined ? Math.max(DEFAULT_CP_MAX, cp_min) : r.int(cpMaxV, argPath('cp_max'), 1);
  if (cp_min > cp_max) r.fail(argPath('cp_min'), `must not be more than cp_max (${cp_max}), got ${cp_min}`);

  const config: Extract<DatabaseConfig, { kind: 'postgres' }> = { kind: 'postgres', cp_min, cp_max };
  const unsafeLocale = db['allow_unsafe_locale'];
  if (unsafeLocale !== undefined && unsafeLocale !== null) {
    config.allow_unsafe_locale = r.bool(unsafeLocale, `${base}.allow_unsafe_locale`);
  }
  const user = text('user');
  const password = text('password');
  const host = text('host');
  const sslmode = text('sslmode');
  if (user !== undefined) config.user = user;
  if (password !== undefined) config.password = password;
  if (dbname ?? database) config.database = dbname ?? database;
  if (host !== undefined) config.host = host;
  if (port !== undefined) config.port = port;
  if (sslmode !== undefined) config.sslmode = sslmode;
  return { kind: 'postgres', config, passwordKey: argPath('password') };
}

function readDatabase(r: Reader, warn: (msg: string) => void): DatabaseChoice {
  const single = r.get('database');
  const multi = r.get('databases');
  const legacyPath = r.get('database_path');
  if (single !== undefined && multi !== undefined) {
    r.fail('databases', "both 'database' and 'databases' are set; use one of them");
  }
  let choice: DatabaseChoice = { kind: 'embedded' };
  if (single !== undefined) {
    choice = readDatabaseSection(r, single, 'database', warn);
  } else if (multi !== undefined) {
    const dbs = r.obj(multi, 'databases');
    const names = Object.keys(dbs);
    if (names.length === 0) r.fail('databases', 'is empty');
    const holdsMain = (n: string): boolean => {
      const d = dbs[n];
      if (!isObj(d) || d['data_stores'] === undefined || d['data_stores'] === null) return true;
      return Array.isArray(d['data_stores']) && d['data_stores'].includes('main');
    };
    const main = names.find(holdsMain) ?? names[0]!;
    if (names.length > 1) {
      warn(
        `${r.fileOf('databases')}: Axon keeps all data in one database; using databases.${main} and ignoring ${names
          .filter((n) => n !== main)
          .map((n) => `databases.${n}`)
          .join(', ')}`,
      );
    }
    choice = readDatabaseSection(r, dbs[main], `databases.${main}`, warn);
  }
  if (legacyPath !== undefined) {
    if (choice.kind === 'embedded' && choice.sqlitePath === undefined) {
      choice = { kind: 'embedded', sqlitePath: r.nonEmptyStr(legacyPath, 'database_path') };
    } else if (choice.kind === 'postgres') {
      warn(`${r.fileOf('database_path')}: ignoring database_path: not using a sqlite3 database`);
    }
  }
  return choice;
}

/** DATABASE_URL (postgres://user:pass@host:port/db?...) replaces the database section. */
function databaseFromUrl(url: string, kept: { cp_min: number; cp_max: number; allow_unsafe_locale?: boolean }): DatabaseConfig {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')) {
    // Never echo the URL: it usually carries a password.
    throw new ConfigError('expected a PostgreSQL URL such as postgres://user:password@host:5432/dbname', {
      file: 'environment',
      key: 'DATABASE_URL',
    });
  }
  const config: DatabaseConfig = { kind: 'postgres', connectionString: url, cp_min: kept.cp_min, cp_max: kept.cp_max };
  if (kept.allow_unsafe_locale !== undefined) config.allow_unsafe_locale = kept.allow_unsafe_locale;
  return config;
}

const MIN_TLS_VERSIONS = ['1', '1.1', '1.2', '1.3'] as const;

/**
 * The federation client's TLS keys, as Synapse reads them: the CA files
 * must be readable and hold PEM certificates (read again by the client).
 */
function readFederationTls(r: Reader): {
  verify: boolean;
  verifyWhitelist: string[];
  caList: string[] | undefined;
  minTls: HomeserverConfig['federation_client_minimum_tls_version'];
} {
  const verify = r.topBool('federation_verify_certificates', true);
  const verifyWhitelist = r.topStrList('federation_certificate_verification_whitelist', []);
  const caV = r.get('federation_custom_ca_list');
  let caList: string[] | undefined;
  if (caV !== undefined && caV !== null) {
    caList = r.list(caV, 'federation_custom_ca_list').map((v, i) => {
      const key = `federation_custom_ca_list[${i}]`;
      const file = r.path(v, key);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        r.fail(key, `cannot read ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`);
      }
      if (!text.includes('-----BEGIN CERTIFICATE-----')) r.fail(key, `${file} holds no PEM certificate`);
      return file;
    });
  }
  const tv = r.get('federation_client_minimum_tls_version');
  let minTls: HomeserverConfig['federation_client_minimum_tls_version'] = '1';
  if (tv !== undefined && tv !== null) {
    const s = typeof tv === 'number' ? String(tv) : tv;
    if (typeof s !== 'string' || !(MIN_TLS_VERSIONS as readonly string[]).includes(s)) {
      r.expected('federation_client_minimum_tls_version', 'one of "1", "1.1", "1.2" or "1.3"', tv);
    }
    minTls = s as HomeserverConfig['federation_client_minimum_tls_version'];
  }
  return { verify, verifyWhitelist, caList, minTls };
}

function sub(r: Reader, key: string): Obj {
  const v = r.get(key);
  return v === undefined ? {} : r.obj(v, key);
}

/**
 * The Axon-only `log_level` key (undefined when absent). The log config
 * itself is read when logging starts (src/logger.ts); here a missing file is
 * only warned about, as before: Axon then logs pino JSON to stdout.
 */
function readLogLevel(r: Reader, logConfig: string | undefined, warn: (msg: string) => void): string | undefined {
  if (logConfig !== undefined && !existsSync(logConfig)) {
    warn(`${r.fileOf('log_config')}: log_config: ${logConfig}: file not found; logging to standard output`);
  }
  const explicit = r.get('log_level');
  if (explicit === undefined) return undefined;
  const level = toPinoLevel(explicit);
  if (!level) {
    r.expected('log_level', 'one of trace, debug, info, warn, error, fatal, silent (or DEBUG, INFO, WARNING, ERROR, CRITICAL)', explicit);
  }
  return level;
}

// ---------------------------------------------------------------------------

/**
 * Reads, merges and validates the config files; see the file comment.
 * Throws ConfigError for a missing or bad value.
 */
export function loadConfig(paths: readonly string[], opts: LoadConfigOptions = {}): HomeserverConfig {
  const warn = opts.warn ?? noop;
  const info = opts.info ?? warn;
  const env = opts.env ?? process.env;
  const { files, raw, origin, configDir } = readRawConfig(paths, warn);
  const r: Reader = new Reader(raw, origin, files.map((f) => f.display).join(', '), configDir);

  // Unknown keys: warn once each. Known Synapse keys Axon does not act on: one line.
  const ignored: string[] = [];
  for (const key of Object.keys(raw)) {
    if (AXON_KEYS.has(key) || AXON_IMPLEMENTED_KEYS.has(key)) continue;
    if (SYNAPSE_KEYS.has(key)) {
      ignored.push(key);
    } else {
      warn(`${r.fileOf(key)}: unknown option ${JSON.stringify(key)} (neither Synapse nor Axon has it); ignoring it. Check the spelling and indentation.`);
    }
  }
  if (ignored.length > 0) info(`Synapse settings Axon does not act on (ignored): ${ignored.sort().join(', ')}`);

  const server_name = readServerName(r);
  const baseurl = readPublicBaseurl(r, server_name);

  if (r.has('signing_key')) {
    r.fail('signing_key', 'an inline signing key is not supported by Axon; put it in a file and set signing_key_path');
  }

  // Database, then data_dir (the embedded database lives there).
  const dbChoice = readDatabase(r, warn);
  // data_dir: Synapse has no such key (its --data-directory only shapes the
  // paths written by --generate-config). Axon uses, in order: `data_dir` if
  // set; else the directory of a sqlite3 `database.args.database` (so a
  // Debian config, whose SQLite file is /var/lib/matrix-synapse/homeserver.db,
  // keeps its data under /var/lib, not /etc); else the config directory.
  let data_dir: string;
  if (r.has('data_dir')) {
    data_dir = r.path(r.get('data_dir'), 'data_dir');
  } else if (dbChoice.kind === 'embedded' && dbChoice.sqlitePath !== undefined && dbChoice.sqlitePath !== ':memory:') {
    data_dir = dirname(isAbsolute(dbChoice.sqlitePath) ? dbChoice.sqlitePath : resolve(configDir, dbChoice.sqlitePath));
  } else {
    data_dir = configDir;
  }
  let database: DatabaseConfig =
    dbChoice.kind === 'postgres' ? dbChoice.config : { kind: 'embedded', path: join(data_dir, 'pglite') };
  const databaseUrl = env['DATABASE_URL'];
  if (databaseUrl !== undefined && databaseUrl.trim() !== '') {
    const kept =
      dbChoice.kind === 'postgres'
        ? { cp_min: dbChoice.config.cp_min, cp_max: dbChoice.config.cp_max, allow_unsafe_locale: dbChoice.config.allow_unsafe_locale }
        : { cp_min: DEFAULT_CP_MIN, cp_max: DEFAULT_CP_MAX };
    database = databaseFromUrl(databaseUrl.trim(), kept);
    if (urlHasPlaceholderPassword(databaseUrl)) r.placeholders.push(placeholderLine('environment', 'DATABASE_URL', 'its password'));
    if (r.has('database') || r.has('databases')) info('DATABASE_URL is set; it replaces the database section of the config');
  } else if (dbChoice.kind === 'postgres' && dbChoice.config.password !== undefined) {
    // Only the password in use: DATABASE_URL (above) replaces the section's.
    r.notePlaceholder(dbChoice.passwordKey, dbChoice.config.password);
  }

  const log_config = r.has('log_config') ? r.path(r.get('log_config'), 'log_config') : undefined;
  const log_level = readLogLevel(r, log_config, warn);

  // Keys.
  const signing_key_path = r.has('signing_key_path')
    ? r.path(r.get('signing_key_path'), 'signing_key_path')
    : join(configDir, `${server_name}.signing.key`);
  const old_signing_keys: HomeserverConfig['old_signing_keys'] = {};
  for (const [id, entry] of Object.entries(sub(r, 'old_signing_keys'))) {
    const p = `old_signing_keys.${id}`;
    if (!/^ed25519:[a-zA-Z0-9_]+$/.test(id)) r.fail(p, 'key ids must look like "ed25519:a_AbCd"');
    const e = r.obj(entry, p);
    old_signing_keys[id] = {
      key: r.nonEmptyStr(e['key'], `${p}.key`),
      expired_ts: r.int(e['expired_ts'], `${p}.expired_ts`, 0),
    };
  }
  const tks = r.get('trusted_key_servers');
  const trusted_key_servers: HomeserverConfig['trusted_key_servers'] =
    tks === undefined
      ? DEFAULT_TRUSTED_KEY_SERVERS.map((s) => ({ ...s }))
      : r.list(tks, 'trusted_key_servers').map((v, i) => {
          const p = `trusted_key_servers[${i}]`;
          const o = r.obj(v, p);
          const name = r.nonEmptyStr(o['server_name'], `${p}.server_name`);
          const problem = serverNameProblem(name);
          if (problem) r.fail(`${p}.server_name`, problem);
          const out: HomeserverConfig['trusted_key_servers'][number] = { server_name: name };
          if (o['verify_keys'] !== undefined && o['verify_keys'] !== null) {
            const vk = r.obj(o['verify_keys'], `${p}.verify_keys`);
            out.verify_keys = {};
            for (const [kid, key] of Object.entries(vk)) out.verify_keys[kid] = r.nonEmptyStr(key, `${p}.verify_keys.${kid}`);
          }
          if (o['accept_keys_insecurely'] !== undefined && o['accept_keys_insecurely'] !== null) {
            out.accept_keys_insecurely = r.bool(o['accept_keys_insecurely'], `${p}.accept_keys_insecurely`);
          }
          return out;
        });

  // Registration.
  let enable_registration = r.has('enable_registration') ? r.strtobool(r.get('enable_registration'), 'enable_registration') : false;
  if (r.has('disable_registration')) enable_registration = !r.strtobool(r.get('disable_registration'), 'disable_registration');
  const enable_registration_without_verification = r.has('enable_registration_without_verification')
    ? r.strtobool(r.get('enable_registration_without_verification'), 'enable_registration_without_verification')
    : false;
  const registration_requires_token = r.topBool('registration_requires_token', false);
  if (enable_registration && !enable_registration_without_verification && !registration_requires_token) {
    // Synapse refuses open registration without captcha, email/msisdn or token
    // verification. Axon implements token verification only, so a captcha or
    // registrations_require_3pid alone would leave registration open: refuse too.
    const unenforced = ['enable_registration_captcha', 'registrations_require_3pid'].filter((k) => r.has(k));
    r.fail(
      'enable_registration',
      'open registration without verification is a known vector for spam and abuse; set registration_requires_token: true ' +
        '(and hand out tokens with the admin API), or set enable_registration_without_verification: true if you really mean it' +
        (unenforced.length > 0 ? ` (Axon does not implement ${unenforced.join(' or ')})` : ''),
    );
  }
  const registration_shared_secret_path = r.has('registration_shared_secret_path')
    ? r.path(r.get('registration_shared_secret_path'), 'registration_shared_secret_path')
    : undefined;

  const pc = sub(r, 'password_config');
  let passwordEnabled = true;
  if (pc['enabled'] !== undefined && pc['enabled'] !== null) {
    if (pc['enabled'] === 'only_for_reauth') {
      warn(`${r.fileOf('password_config')}: password_config.enabled: only_for_reauth is not supported by Axon; password login is disabled`);
      passwordEnabled = false;
    } else {
      passwordEnabled = r.bool(pc['enabled'], 'password_config.enabled');
    }
  }
  const password_config: HomeserverConfig['password_config'] = {
    enabled: passwordEnabled,
    localdb_enabled:
      pc['localdb_enabled'] === undefined || pc['localdb_enabled'] === null
        ? true
        : r.bool(pc['localdb_enabled'], 'password_config.localdb_enabled'),
    pepper: pc['pepper'] === undefined || pc['pepper'] === null ? '' : r.str(pc['pepper'], 'password_config.pepper'),
    policy: pc['policy'] === undefined || pc['policy'] === null ? {} : r.obj(pc['policy'], 'password_config.policy'),
  };
  const bcryptV = r.get('bcrypt_rounds');
  const bcrypt_rounds = bcryptV === undefined ? DEFAULT_BCRYPT_ROUNDS : r.int(bcryptV, 'bcrypt_rounds', 4, 31);

  // Media.
  const max_upload_size = r.topSize('max_upload_size', DEFAULT_MAX_UPLOAD_SIZE);
  const tsV = r.get('thumbnail_sizes');
  const thumbnail_sizes: HomeserverConfig['thumbnail_sizes'] =
    tsV === undefined
      ? DEFAULT_THUMBNAIL_SIZES.map((t) => ({ ...t }))
      : r.list(tsV, 'thumbnail_sizes').map((v, i) => {
          const p = `thumbnail_sizes[${i}]`;
          const o = r.obj(v, p);
          const method = r.str(o['method'], `${p}.method`);
          if (method !== 'crop' && method !== 'scale') r.expected(`${p}.method`, '"crop" or "scale"', method);
          return {
            width: r.int(o['width'], `${p}.width`, 1),
            height: r.int(o['height'], `${p}.height`, 1),
            method,
          };
        });
  const url_preview_enabled = r.topBool('url_preview_enabled', false);
  const url_preview_ip_range_blacklist = r.topStrList('url_preview_ip_range_blacklist', []);
  const url_preview_ip_range_whitelist = r.topStrList('url_preview_ip_range_whitelist', []);
  if (url_preview_enabled && !r.has('url_preview_ip_range_blacklist')) {
    r.fail(
      'url_preview_enabled',
      'for security, url_preview_ip_range_blacklist must list the IP ranges URL previews may not fetch (as Synapse requires)',
    );
  }

  // Well-known, presence, rooms.
  const extra_well_known_client_content = sub(r, 'extra_well_known_client_content');
  if ('m.homeserver' in extra_well_known_client_content) {
    r.fail('extra_well_known_client_content', 'm.homeserver cannot be set here; set public_baseurl instead');
  }
  const presence = sub(r, 'presence');
  let presence_enabled = true;
  if (presence['enabled'] !== undefined && presence['enabled'] !== null) {
    presence_enabled = presence['enabled'] === 'untracked' ? true : r.bool(presence['enabled'], 'presence.enabled');
  } else if (r.has('use_presence')) {
    presence_enabled = r.bool(r.get('use_presence'), 'use_presence');
  }
  const drv = r.get('default_room_version');
  let default_room_version = DEFAULT_ROOM_VERSION;
  if (drv !== undefined) {
    if (typeof drv !== 'string' && typeof drv !== 'number') r.expected('default_room_version', 'a room version such as "10"', drv);
    default_room_version = String(drv);
    if (!roomVersion(default_room_version)) r.expected('default_room_version', 'a known room version', drv);
  }
  const auto_join_rooms = r.topStrList('auto_join_rooms', []);
  auto_join_rooms.forEach((room, i) => {
    // Synapse: RoomAlias.is_valid (aliases only, not room ids).
    if (!/^#[^:]+:.+$/.test(room)) r.expected(`auto_join_rooms[${i}]`, 'a room alias such as "#welcome:example.com"', room);
  });
  const ud = sub(r, 'user_directory');

  const turnUris = r.topStrList('turn_uris', []);
  turnUris.forEach((u, i) => {
    if (!/^turns?:/.test(u)) r.expected(`turn_uris[${i}]`, 'a turn: or turns: URI such as "turn:turn.example.com?transport=udp"', u);
  });

  const admin_contact = r.topStr('admin_contact');
  const pid_file = r.has('pid_file') ? r.path(r.get('pid_file'), 'pid_file') : undefined;
  const fdw = r.get('federation_domain_whitelist');
  const listeners = readListeners(r, warn);
  const tlsPaths = readTlsPaths(r, listeners);
  const fed = readFederationTls(r);

  const config: HomeserverConfig = {
    config_files: files.map((f) => f.path),
    config_dir: configDir,

    server_name,
    public_baseurl: baseurl.url,
    serve_client_wellknown: baseurl.explicit,
    listeners,
    database,
    data_dir,
    log_level,

    signing_key_path,
    old_signing_keys,
    key_refresh_interval_ms: r.topDuration('key_refresh_interval', DEFAULT_KEY_REFRESH_INTERVAL),
    trusted_key_servers,
    suppress_key_server_warning: r.topBool('suppress_key_server_warning', false),

    enable_registration,
    enable_registration_without_verification,
    registration_requires_token,
    allow_guest_access: r.topBool('allow_guest_access', false),
    password_config,
    bcrypt_rounds,

    turn_uris: turnUris,
    turn_user_lifetime_ms: r.topDuration('turn_user_lifetime', DEFAULT_TURN_USER_LIFETIME),
    turn_allow_guests: r.topBool('turn_allow_guests', true),

    max_upload_size,
    media_store_path: r.path(r.get('media_store_path') ?? DEFAULT_MEDIA_STORE_PATH, 'media_store_path'),
    max_image_pixels: r.topSize('max_image_pixels', DEFAULT_MAX_IMAGE_PIXELS),
    enable_authenticated_media: r.topBool('enable_authenticated_media', true),
    dynamic_thumbnails: r.topBool('dynamic_thumbnails', false),
    thumbnail_sizes,
    url_preview_enabled,
    url_preview_ip_range_blacklist,
    url_preview_ip_range_whitelist,

    serve_server_wellknown: r.topBool('serve_server_wellknown', false),
    extra_well_known_client_content,
    presence_enabled,
    default_room_version,
    federation_verify_certificates: fed.verify,
    federation_certificate_verification_whitelist: fed.verifyWhitelist,
    federation_client_minimum_tls_version: fed.minTls,
    allow_public_rooms_over_federation: r.topBool('allow_public_rooms_over_federation', false),
    allow_public_rooms_without_auth: r.topBool('allow_public_rooms_without_auth', false),
    user_directory: {
      enabled:
        ud['enabled'] === undefined || ud['enabled'] === null ? true : r.bool(ud['enabled'], 'user_directory.enabled'),
      search_all_users:
        ud['search_all_users'] === undefined || ud['search_all_users'] === null
          ? false
          : r.bool(ud['search_all_users'], 'user_directory.search_all_users'),
    },
    report_stats: r.topBool('report_stats', false),
    require_auth_for_profile_requests: r.topBool('require_auth_for_profile_requests', false),
    limit_profile_requests_to_users_who_share_rooms: r.topBool('limit_profile_requests_to_users_who_share_rooms', false),
    auto_join_rooms,
    max_request_body_size: Math.max(MAX_REQUEST_SIZE, max_upload_size),

    ...readRateLimits(r),

    raw,
    placeholder_secrets: [],
  };

  // Optional fields: only present when configured.
  if (pid_file !== undefined) config.pid_file = pid_file;
  if (tlsPaths.tls_certificate_path !== undefined) config.tls_certificate_path = tlsPaths.tls_certificate_path;
  if (tlsPaths.tls_private_key_path !== undefined) config.tls_private_key_path = tlsPaths.tls_private_key_path;
  if (log_config !== undefined) config.log_config = log_config;
  const rss = r.secret('registration_shared_secret');
  if (rss !== undefined) config.registration_shared_secret = rss;
  if (registration_shared_secret_path !== undefined) config.registration_shared_secret_path = registration_shared_secret_path;
  const mac = r.secret('macaroon_secret_key');
  if (mac !== undefined) config.macaroon_secret_key = mac;
  const form = r.secret('form_secret');
  if (form !== undefined) config.form_secret = form;
  const turnSecret = r.secret('turn_shared_secret');
  if (turnSecret !== undefined) config.turn_shared_secret = turnSecret;
  const turnUser = r.topStr('turn_username');
  if (turnUser !== undefined) config.turn_username = turnUser;
  const turnPass = r.topStr('turn_password');
  if (turnPass !== undefined) config.turn_password = turnPass;
  if (admin_contact !== undefined) config.admin_contact = admin_contact;
  if (fed.caList !== undefined) config.federation_custom_ca_list = fed.caList;
  if (fdw !== undefined) config.federation_domain_whitelist = r.strList(fdw, 'federation_domain_whitelist');
  if (turnPass !== undefined) r.notePlaceholder('turn_password', turnPass);
  config.placeholder_secrets = r.placeholders;
  return config;
}

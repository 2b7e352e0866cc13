/**
 * `--generate-config`: a commented homeserver.yaml with Synapse's keys and
 * fresh secrets, a signing key, and a small Python-logging-style log config,
 * laid out as Synapse's `--generate-config` lays them out:
 *   <config dir>/homeserver.yaml
 *   <keys dir (--config-directory), default config dir>/<server_name>.signing.key
 *   <keys dir (--config-directory), default config dir>/<server_name>.log.config
 *   <data dir, default config dir>/media_store, homeserver.pid, and the database
 *
 * Existing files are never overwritten.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { formatSigningKeyFile, generateSigningKey } from '../core/signing.js';
import { ConfigError } from './errors.js';
import { loadConfig, readRawConfig, serverNameProblem } from './load.js';

export interface GenerateConfigOptions {
  /** The server name users' IDs end in, e.g. example.com. */
  serverName: string;
  /** Where the config will be written; its directory is the config directory. */
  configPath: string;
  /** Where data paths (media store, pid file, database) point; defaults to the config directory. */
  dataDir?: string;
  /** Where the signing key and log config go (Synapse's --keys-directory / --config-directory); defaults to the config directory. */
  keysDir?: string;
  reportStats: boolean;
  /**
   * Synapse's --open-private-ports: leave the plain-HTTP listener bound to all
   * interfaces instead of ::1 and 127.0.0.1 (for containers, where the
   * published port arrives on the container's own address).
   */
  openPrivatePorts?: boolean;
}

/** Synapse's alphabet for generated secrets (synapse/util/stringutils.py `_string_with_symbols`). */
const SECRET_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:^&*-_+=#~@';

/**
 * A random secret as Synapse generates them (`random_string_with_symbols(50)`):
 * `length` characters from SECRET_ALPHABET, unbiased (rejection sampling over
 * crypto.randomBytes). No character needs escaping inside a YAML double-quoted string.
 */
export function randomSecret(length = 50): string {
  const n = SECRET_ALPHABET.length;
  const limit = 256 - (256 % n);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit && out.length < length) out += SECRET_ALPHABET[b % n];
    }
  }
  return out;
}

/** A YAML double-quoted scalar (JSON strings are valid YAML). */
const q = (s: string): string => JSON.stringify(s);

function paths(opts: GenerateConfigOptions) {
  const configPath = resolve(opts.configPath);
  const configDir = dirname(configPath);
  const dataDir = resolve(opts.dataDir ?? configDir);
  const keysDir = resolve(opts.keysDir ?? configDir);
  return {
    configPath,
    configDir,
    dataDir,
    pidFile: join(dataDir, 'homeserver.pid'),
    sqlitePath: join(dataDir, 'homeserver.db'),
    mediaStore: join(dataDir, 'media_store'),
    logConfig: join(keysDir, `${opts.serverName}.log.config`),
    signingKey: join(keysDir, `${opts.serverName}.signing.key`),
  };
}

/** The text of a new homeserver.yaml with fresh secrets. Throws ConfigError for a bad server name. */
export function generateConfig(opts: GenerateConfigOptions): string {
  const problem = serverNameProblem(opts.serverName);
  if (problem) throw new ConfigError(problem, { key: 'server_name' });
  const p = paths(opts);
  const name = opts.serverName;
  const bind = opts.openPrivatePorts
    ? "    # No bind_addresses: listens on all interfaces (--open-private-ports).\n"
    : "    bind_addresses: ['::1', '127.0.0.1']\n";
  return `# Configuration file for Axon, a Matrix homeserver that reads Synapse's homeserver.yaml.
#
# Every key here is Synapse's, with Synapse's meaning; the full list is at
# https://element-hq.github.io/synapse/latest/usage/configuration/config_documentation.html
# Settings Axon does not act on are listed once at startup.
#
# Durations: 30s, 5m, 1h, 7d, 1w, 1y, or a whole number of milliseconds.
# Sizes: 10K, 50M, 1G (1K = 1024 bytes), or a whole number of bytes.
#
# This file holds secrets: keep it readable only by the user Axon runs as.

# The domain at the end of your users' IDs (@alice:${name}). It cannot be
# changed once the server has users and rooms.
server_name: ${q(name)}
pid_file: ${q(p.pidFile)}

# One plain-HTTP listener for a reverse proxy (nginx, Caddy) that terminates
# TLS on 443 (and 8448 for federation) and forwards to port 8008 on localhost.
# x_forwarded: trust X-Forwarded-For / X-Forwarded-Proto from that proxy.
listeners:
  - port: 8008
    tls: false
    type: http
    x_forwarded: true
${bind}    resources:
      - names: [client, federation]
        compress: false

# Or let Axon serve HTTPS itself (for example federation on 8448 without a
# proxy): a listener with tls: true uses this certificate (PEM, the full
# chain) and private key (PEM). SIGHUP reads both again, after a renewal.
#tls_certificate_path: "/etc/letsencrypt/live/${name}/fullchain.pem"
#tls_private_key_path: "/etc/letsencrypt/live/${name}/privkey.pem"

# The database. "sqlite3" (Synapse's default) makes Axon use its embedded
# PostgreSQL (PGlite), stored in a "pglite" directory next to the path below;
# no SQLite file is created. Fine for trying Axon out and for small servers.
database:
  name: sqlite3
  args:
    database: ${q(p.sqlitePath)}

# For production, use PostgreSQL, written as for Synapse (psycopg2), or set
# DATABASE_URL=postgres://user:password@host:5432/dbname in the environment,
# which overrides this section:
#
#database:
#  name: psycopg2
#  args:
#    user: axon
#    password: "a strong password"
#    dbname: axon
#    host: localhost        # or /var/run/postgresql for the local socket
#    port: 5432
#    cp_min: 5
#    cp_max: 10

# A Python logging config, as Synapse uses; Axon logs to stdout (journald,
# docker logs) and takes only the level from it.
log_config: ${q(p.logConfig)}

media_store_path: ${q(p.mediaStore)}
# Keep this equal to client_max_body_size in your reverse proxy.
#max_upload_size: 50M

# Lets register_new_matrix_user create accounts (including admins) with this
# shared secret, even when registration is closed.
registration_shared_secret: ${q(randomSecret())}

report_stats: ${opts.reportStats ? 'true' : 'false'}

macaroon_secret_key: ${q(randomSecret())}
form_secret: ${q(randomSecret())}

# The server's ed25519 signing key, in Synapse's format. Back it up: other
# servers know your server by it.
signing_key_path: ${q(p.signingKey)}

# Servers trusted to vouch for other servers' signing keys.
trusted_key_servers:
  - server_name: "matrix.org"
# Silences the startup note about matrix.org being a trusted key server.
#suppress_key_server_warning: true

# The URL clients reach this server at; served in /.well-known/matrix/client.
# Defaults to https://<server_name>/.
#public_baseurl: "https://matrix.${name}/"

# Serve /.well-known/matrix/server so that other servers federate over port
# 443 instead of 8448 (needs https://${name}/ routed to this server).
#serve_server_wellknown: true

# Registration is closed by default; create users with register_new_matrix_user.
# To open it, require a registration token (create tokens with the admin API):
#enable_registration: true
#registration_requires_token: true

# Voice and video calls through a TURN server (coturn): the same secret as
# static-auth-secret in turnserver.conf.
#turn_uris:
#  - "turn:turn.${name}?transport=udp"
#  - "turn:turn.${name}?transport=tcp"
#turn_shared_secret: "the static-auth-secret from turnserver.conf"
#turn_user_lifetime: 1h
#turn_allow_guests: true

# Presence (online/offline) costs CPU on busy servers; turn it off here.
#presence:
#  enabled: false

# vim:ft=yaml
`;
}

/**
 * The log config `npm start` and --generate-config write beside the config:
 * readable lines on standard output (Synapse's generated one writes a file
 * through a buffer instead; the comments show how).
 */
export function generateLogConfig(): string {
  return `# Log configuration for Axon, in Python's logging format as Synapse uses it
# (https://docs.python.org/3/library/logging.config.html#configuration-dictionary-schema),
# so a Synapse log config works too. Axon honours the formatters, the handlers
# (console, files with rotation, journald, buffering) and the level of each
# logger. Logger names are Synapse's (synapse, synapse.storage.SQL,
# synapse.access.http.8008, ...) or Axon's (axon, axon.storage.sql, ...): see
# "Logging" in docs/ADMIN.md. AXON_LOG_LEVEL overrides the root level.
#
# This one prints readable lines on standard output. For a file as Synapse
# writes it (rotated at midnight, three days kept, written in batches), add
# under handlers:
#
#   file:
#     class: logging.handlers.TimedRotatingFileHandler
#     formatter: precise
#     filename: /path/to/homeserver.log
#     when: midnight
#     backupCount: 3
#     encoding: utf8
#   buffer:
#     class: synapse.logging.handlers.PeriodicallyFlushingMemoryHandler
#     target: file
#     capacity: 10
#     flushLevel: 30
#     period: 5
#
# and put "buffer" in place of "console" in root.handlers.

version: 1

formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s'

handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
    stream: ext://sys.stdout

loggers:
  synapse.storage.SQL:
    # DEBUG here logs each SQL statement (never its parameters).
    level: INFO

root:
  level: INFO
  handlers: [console]

disable_existing_loggers: false
`;
}

export interface WriteGeneratedFilesResult {
  configPath: string;
  /** False when the config already existed and was left alone. */
  configWritten: boolean;
  signingKeyPath: string;
  /** False when the key file already existed and was kept. */
  signingKeyWritten: boolean;
  logConfigPath?: string;
  logConfigWritten: boolean;
  /** Lines for the operator; never contain secrets. */
  messages: string[];
}

/** Creates `path` with `text`, never replacing an existing file. False if it already existed. */
function createFile(path: string, text: string, mode: number): boolean {
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(path, text, { flag: 'wx', mode });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Writes the generated config and any missing files it names (signing key,
 * log config, registration_shared_secret_path), as Synapse's
 * `--generate-config` / `--generate-keys` do. Never overwrites a file: an
 * existing config is left as it is (and its own paths are used), an existing
 * key file is kept.
 */
export function writeGeneratedFiles(
  opts: GenerateConfigOptions & { logConfig?: boolean },
): WriteGeneratedFilesResult {
  const p = paths(opts);
  const messages: string[] = [];
  let configWritten = false;
  if (existsSync(p.configPath)) {
    messages.push(`Config file ${p.configPath} already exists; leaving it as it is and generating any missing files.`);
  } else {
    configWritten = createFile(p.configPath, generateConfig(opts), 0o600);
    messages.push(
      configWritten
        ? `A config file has been generated in ${p.configPath} for server name ${opts.serverName}. Please review it and customise it to your needs.`
        : `Config file ${p.configPath} already exists; leaving it as it is and generating any missing files.`,
    );
    if (configWritten && opts.dataDir === undefined && p.configDir !== process.cwd()) {
      messages.push(
        `No --data-directory was given, so the media store, pid file and database point into ${p.configDir}. ` +
          'A server run as a service user usually cannot write there: generate with --data-directory /var/lib/axon ' +
          '(a directory that user owns), or change pid_file, media_store_path and database.args.database.',
      );
    }
  }

  // Synapse's generate_files: a registration_shared_secret_path that does not exist yet is created.
  const { raw, configDir } = readRawConfig([p.configPath]);
  const rssp = raw['registration_shared_secret_path'];
  if (typeof rssp === 'string' && rssp.trim() !== '') {
    const file = resolve(configDir, rssp);
    if (createFile(file, `${randomSecret()}\n`, 0o600)) {
      messages.push(`Generated a registration shared secret in ${file}.`);
    }
  }

  // The paths as the (possibly pre-existing) config says them.
  const config = loadConfig([p.configPath], { env: {}, warn: () => {}, info: () => {} });

  let signingKeyWritten = false;
  if (existsSync(config.signing_key_path)) {
    messages.push(`Signing key ${config.signing_key_path} already exists; keeping it.`);
  } else {
    signingKeyWritten = createFile(config.signing_key_path, formatSigningKeyFile([generateSigningKey()]), 0o600);
    messages.push(
      signingKeyWritten
        ? `Generated a signing key in ${config.signing_key_path}. Back it up.`
        : `Signing key ${config.signing_key_path} already exists; keeping it.`,
    );
  }

  let logConfigWritten = false;
  if (opts.logConfig !== false && config.log_config !== undefined && !existsSync(config.log_config)) {
    logConfigWritten = createFile(config.log_config, generateLogConfig(), 0o644);
    if (logConfigWritten) messages.push(`Generated a log config in ${config.log_config}.`);
  }

  const result: WriteGeneratedFilesResult = {
    configPath: p.configPath,
    configWritten,
    signingKeyPath: config.signing_key_path,
    signingKeyWritten,
    logConfigWritten,
    messages,
  };
  if (config.log_config !== undefined) result.logConfigPath = config.log_config;
  return result;
}

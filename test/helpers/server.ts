/**
 * Starts the real server for a test: a temporary directory with a
 * homeserver.yaml and signing key, a fresh database (PostgreSQL or the
 * embedded one, see database.ts), listening on a free port on 127.0.0.1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { HomeserverConfig } from '../../src/config/types.js';
import { formatSigningKeyFile, generateSigningKey } from '../../src/core/signing.js';
import type { PluginOptions } from '../../src/http/context.js';
import { createLogger } from '../../src/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';
import type { KeyFetchTransport } from '../../src/services/federation/key-transport.js';
import { copyEmbeddedTemplate, createMigratedTestDatabase, testDatabaseKind } from './database.js';

export interface TestServer {
  url: string;
  server: RunningServer;
  config: HomeserverConfig;
  dir: string;
  close(): Promise<void>;
}

export interface TestServerOptions {
  serverName?: string;
  /** Extra homeserver.yaml keys, merged over the test defaults. */
  yaml?: Record<string, unknown>;
  extraPlugins?: FastifyPluginAsync<PluginOptions>[];
  /** Log lines are written here when given; otherwise logging is silent. */
  logLines?: string[];
  /**
   * Listen on the ports the listeners in `yaml` give (a federation test
   * whose server_name carries its port); by default every listener takes a
   * free port of its own.
   */
  keepPorts?: boolean;
  /** How the server's keyring reaches other servers (default: fetches fail). */
  keyTransport?: KeyFetchTransport;
}

const LOOSE = { per_second: 1000, burst_count: 1000 };

/** The keys a test homeserver.yaml starts from; exported for tests that write their own. */
export async function baseTestYaml(dir: string, serverName: string): Promise<{ yaml: Record<string, unknown>; dropDb?: () => Promise<void> }> {
  const keyPath = join(dir, `${serverName}.signing.key`);
  writeFileSync(keyPath, formatSigningKeyFile([generateSigningKey()]));
  const yaml: Record<string, unknown> = {
    server_name: serverName,
    public_baseurl: `https://${serverName}/`,
    signing_key_path: keyPath,
    media_store_path: join(dir, 'media_store'),
    listeners: [{ port: 8008, type: 'http', bind_addresses: ['127.0.0.1'], x_forwarded: true, tls: false, resources: [{ names: ['client', 'federation'], compress: false }] }],
    report_stats: false,
    suppress_key_server_warning: true,
    // Never matrix.org (Synapse's default notary): the tests reach no outside host.
    trusted_key_servers: [],
    // Fast hashes and generous limits; tests of those features set their own.
    bcrypt_rounds: 4,
    rc_login: { address: LOOSE, account: LOOSE, failed_attempts: LOOSE },
    rc_registration: LOOSE,
    rc_message: LOOSE,
    rc_room_creation: LOOSE,
    rc_joins: { local: LOOSE, remote: LOOSE },
    rc_joins_per_room: LOOSE,
    rc_invites: { per_room: LOOSE, per_user: LOOSE, per_issuer: LOOSE },
    rc_media_create: LOOSE,
    rc_key_requests: LOOSE,
    rc_federation: { window_size: 1000, sleep_limit: 1_000_000, sleep_delay: 0, reject_limit: 1_000_000, concurrent: 1000 },
  };
  if ((await testDatabaseKind()) === 'postgres') {
    const db = await createMigratedTestDatabase();
    yaml.database = { name: 'psycopg2', args: { user: 'postgres', database: db.name, host: '127.0.0.1', port: 5432, cp_min: 1, cp_max: 5 } };
    return { yaml, dropDb: db.drop };
  }
  yaml.database = { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } };
  // The embedded cluster lives in `pglite` beside the SQLite path; a migrated copy saves seconds per server.
  await copyEmbeddedTemplate(join(dir, 'pglite'));
  return { yaml };
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'axon-test-'));
  const serverName = opts.serverName ?? 'test.local';
  const base = await baseTestYaml(dir, serverName);
  const yaml = { ...base.yaml, ...opts.yaml };
  const path = join(dir, 'homeserver.yaml');
  writeFileSync(path, stringify(yaml));
  const config = loadConfig([path], { env: {}, warn: () => undefined });
  const lines = opts.logLines;
  const logger = lines ? createLogger('debug', { write: (s: string) => void lines.push(s) }) : createLogger('silent');
  let server: RunningServer;
  try {
    server = await startServer(config, logger, { ...(!opts.keepPorts && { portOverride: 0 }), extraPlugins: opts.extraPlugins, keyTransport: opts.keyTransport });
  } catch (err) {
    await base.dropDb?.();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = server.urls[0];
  if (!url) throw new Error('test server has no listener');
  return {
    url,
    server,
    config,
    dir,
    close: async () => {
      await server.close();
      await base.dropDb?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts and stops the whole server: database (migrated, server_name
 * checked), signing keys, the services (createServices, built once for
 * every listener), and one fastify app per configured listener — served by
 * node:https for a `tls: true` listener, whose certificate SIGHUP reloads.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { HomeserverConfig, ListenerConfig } from './config/types.js';
import { type BuildOptions, buildApp } from './http/app.js';
import type { AppContext } from './http/context.js';
import { readTlsFiles, type TlsFiles, type TlsPaths } from './http/tls-files.js';
import type { KeyFetchTransport } from './services/federation/key-transport.js';
import { createServices, type RunningServices } from './services/index.js';
import { loadServerKeys } from './services/server-keys.js';
import { subsystemLogger } from './logger.js';
import { openDatabase } from './storage/database.js';
import { migrateToLatest } from './storage/migrate.js';
import { claimServerName } from './storage/server-meta.js';
import { StartupError } from './startup-error.js';

export interface StartOptions {
  /** Replace every listener's port (0 picks a free one); for tests and benchmarks. */
  portOverride?: number;
  /** Further plugins on every listener (for embedding and tests). */
  extraPlugins?: BuildOptions['extraPlugins'];
  /** How long close() lets requests in flight finish before cutting their connections. */
  drainMs?: number;
  /** How the keyring reaches other servers (createServices' `keyTransport`). */
  keyTransport?: KeyFetchTransport;
}

/** Within systemd's and docker's stop timeouts, and the 10 s an operator expects. */
const DRAIN_MS = 7_000;

export interface RunningServer {
  readonly ctx: AppContext;
  /** `http://host:port` (`https://` for a `tls: true` listener) for each bound address, in listener order. */
  readonly urls: string[];
  /**
   * Reads tls_certificate_path and tls_private_key_path again and gives every
   * TLS server the new pair; connections made from then on get it. A file
   * that does not load is logged as an error and the old pair stays. What
   * SIGHUP does (certbot renewals); true when the new pair is in use, false
   * on an error or when no listener has TLS.
   */
  reloadTls(): boolean;
  close(): Promise<void>;
}

/** Synapse binds both '::' and '0.0.0.0' by default; on Linux '::' already takes IPv4 too. */
function bindAddresses(listener: ListenerConfig): string[] {
  const addrs = [...new Set(listener.bind_addresses)];
  if (addrs.includes('::') && addrs.includes('0.0.0.0')) return addrs.filter((a) => a !== '0.0.0.0');
  return addrs.length > 0 ? addrs : ['::'];
}

function urlOf(server: Server | FastifyInstance['server'], tls: boolean): string {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${tls ? 'https' : 'http'}://${host}:${a.port}`;
}

/** The certificate and key paths when some served listener has `tls: true` (load.ts made sure both are set). */
function tlsPathsOf(config: HomeserverConfig): TlsPaths | undefined {
  if (!config.listeners.some((l) => l.type === 'http' && l.tls)) return undefined;
  const certificatePath = config.tls_certificate_path;
  const privateKeyPath = config.tls_private_key_path;
  if (certificatePath === undefined || privateKeyPath === undefined) {
    throw new StartupError('a listener has tls: true, so tls_certificate_path and tls_private_key_path must both be set');
  }
  return { certificatePath, privateKeyPath };
}

export async function startServer(config: HomeserverConfig, logger: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  // The sample config's CHANGEME secrets are public; loading it still works (--generate-keys, migrate), serving does not.
  if (config.placeholder_secrets.length > 0) throw new StartupError(config.placeholder_secrets);
  // A bad certificate or key stops start-up before anything is opened.
  const tlsPaths = tlsPathsOf(config);
  let tlsFiles: TlsFiles | undefined = tlsPaths && readTlsFiles(tlsPaths);
  const tlsLogger = subsystemLogger(logger, 'axon.tls');
  if (tlsPaths && tlsFiles) logCertificate(tlsLogger, tlsPaths, tlsFiles, 'loaded the TLS certificate');
  const keys = loadServerKeys(config.server_name, config.signing_key_path, config.old_signing_keys, config.key_refresh_interval_ms);
  const database = await openDatabase(config.database, subsystemLogger(logger, 'axon.storage'), subsystemLogger(logger, 'axon.storage.sql'));
  const apps: FastifyInstance[] = [];
  const markClosing: (() => void)[] = [];
  const extraServers: Server[] = [];
  const tlsServers: HttpsServer[] = [];
  let running: RunningServices | undefined;
  const reloadTls = (): boolean => {
    if (!tlsPaths || tlsServers.length === 0) return false;
    let next: TlsFiles;
    try {
      next = readTlsFiles(tlsPaths);
      for (const s of tlsServers) s.setSecureContext(next.options);
    } catch (err) {
      tlsLogger.error(`TLS certificate not reloaded, the previous one stays in use: ${(err as Error).message}`);
      return false;
    }
    tlsFiles = next;
    logCertificate(tlsLogger, tlsPaths, next, 'reloaded the TLS certificate');
    return true;
  };
  // SIGHUP, as for Synapse, also reloads the log config (logger.ts); both handlers run.
  const onHangup = () => void reloadTls();
  let hangupInstalled = false;
  const closeAll = async () => {
    if (hangupInstalled) process.off('SIGHUP', onHangup);
    hangupInstalled = false;
    // Stop accepting, answer long-polls now, let requests in flight finish
    // (for at most drainMs, then cut them), then close the database.
    for (const mark of markClosing) mark();
    running?.wakeWaiters();
    const drained = Promise.all([
      ...apps.map((a) => a.close()),
      ...extraServers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeIdleConnections();
          }),
      ),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([drained.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), opts.drainMs ?? DRAIN_MS)))]);
    clearTimeout(timer);
    if (late) {
      logger.warn({ drain_ms: opts.drainMs ?? DRAIN_MS }, 'requests still running at the end of the shutdown grace period; closing their connections');
      for (const a of apps) a.server.closeAllConnections();
      for (const s of extraServers) s.closeAllConnections();
      await drained;
    }
    await running?.close();
    await database.close();
  };
  try {
    const migrated = await migrateToLatest(database.db);
    if (migrated.applied.length > 0) subsystemLogger(logger, 'axon.storage.migrations').info({ applied: migrated.applied }, 'applied database migrations');
    const recorded = await claimServerName(database.db, config.server_name);
    if (recorded !== config.server_name) {
      throw new StartupError(
        `the database was created for server_name '${recorded}', but the configuration says '${config.server_name}'; ` +
          'a server_name cannot be changed once users and rooms exist',
      );
    }
    if (database.kind === 'embedded') {
      logger.info(
        `using the embedded PostgreSQL (PGlite, ${database.description}); for production, point 'database:' (name: psycopg2) or DATABASE_URL at a real PostgreSQL — see README "Production setup"`,
      );
    } else {
      logger.info({ database: database.description }, 'using PostgreSQL');
    }

    running = await createServices({ config, database, keys, logger, keyTransport: opts.keyTransport });
    const { services } = running;
    const ctx: AppContext = { config, database, keys, logger, services };
    const urls: string[] = [];
    for (const listener of config.listeners) {
      if (listener.type !== 'http') {
        logger.warn({ type: listener.type, port: listener.port }, 'listener type not supported; skipped');
        continue;
      }
      const tls = listener.tls && tlsFiles ? tlsFiles.options : undefined;
      const built = await buildApp(ctx, listener, { extraPlugins: opts.extraPlugins, ...(tls && { tls }) });
      apps.push(built.app);
      markClosing.push(built.markClosing);
      if (tls) tlsServers.push(built.app.server as unknown as HttpsServer);
      const port = opts.portOverride ?? listener.port;
      const [first, ...rest] = bindAddresses(listener);
      await built.app.listen({ host: first, port });
      urls.push(urlOf(built.app.server, tls !== undefined));
      const boundPort = (built.app.server.address() as AddressInfo).port;
      for (const host of rest) {
        let extra: Server;
        if (tls) {
          const secure = createHttpsServer(tls, built.handler());
          tlsServers.push(secure);
          extra = secure as unknown as Server;
        } else {
          extra = createServer(built.handler());
        }
        extraServers.push(extra);
        await new Promise<void>((resolve, reject) => {
          extra.once('error', reject);
          extra.listen({ host, port: boundPort }, () => resolve());
        });
        urls.push(urlOf(extra, tls !== undefined));
      }
    }
    if (tlsServers.length > 0) {
      process.on('SIGHUP', onHangup);
      hangupInstalled = true;
    }
    logger.info({ server_name: config.server_name, listening: urls }, `Axon is running on ${urls.join(', ')}`);
    // Finish parting users whose deactivation committed before a restart (failures are logged there).
    void services.rooms.partDeactivatedUsers().catch(() => undefined);
    let closing: Promise<void> | undefined;
    return { ctx, urls, reloadTls, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}

function logCertificate(logger: Logger, paths: TlsPaths, files: TlsFiles, msg: string): void {
  const fields = { tls_certificate_path: paths.certificatePath, ...files.certificate };
  if (files.certificate.expired) logger.warn(fields, `${msg}, which has EXPIRED: other servers and clients will refuse it`);
  else logger.info(fields, msg);
}

/**
 * Starts and stops the whole server: database (migrated, server_name
 * checked), signing keys, and one fastify app per configured listener.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { HomeserverConfig, ListenerConfig } from './config/types.js';
import { type BuildOptions, buildApp } from './http/app.js';
import type { AppContext, Services } from './http/context.js';
import { AccountsService } from './services/accounts.js';
import { AuthService } from './services/auth.js';
import { Notifier } from './services/notifier.js';
import { PresenceService, presenceOptions } from './services/presence.js';
import { PushService } from './services/push/push-service.js';
import { PusherService, pusherConfig } from './services/push/pushers.js';
import { StreamPositions } from './services/sync/positions.js';
import { RateLimiter } from './services/rate-limit.js';
import { RatelimitOverrides } from './services/ratelimit-overrides.js';
import { RoomRateLimits } from './services/rooms/rate-limits.js';
import { ReceiptsService } from './services/receipts.js';
import { EventPipeline } from './services/rooms/event-pipeline.js';
import { directorySettings } from './services/rooms/directory-rules.js';
import { RoomService } from './services/rooms/room-service.js';
import { TypingService } from './services/typing.js';
import { UiaService } from './services/uia.js';
import { passwordHasher } from './services/passwords.js';
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
}

/** Within systemd's and docker's stop timeouts, and the 10 s an operator expects. */
const DRAIN_MS = 7_000;

export interface RunningServer {
  readonly ctx: AppContext;
  /** `http://host:port` for each bound address, in listener order. */
  readonly urls: string[];
  close(): Promise<void>;
}

/** Synapse binds both '::' and '0.0.0.0' by default; on Linux '::' already takes IPv4 too. */
function bindAddresses(listener: ListenerConfig): string[] {
  const addrs = [...new Set(listener.bind_addresses)];
  if (addrs.includes('::') && addrs.includes('0.0.0.0')) return addrs.filter((a) => a !== '0.0.0.0');
  return addrs.length > 0 ? addrs : ['::'];
}

function urlOf(server: Server | FastifyInstance['server']): string {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
}

export async function startServer(config: HomeserverConfig, logger: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  // The sample config's CHANGEME secrets are public; loading it still works (--generate-keys, migrate), serving does not.
  if (config.placeholder_secrets.length > 0) throw new StartupError(config.placeholder_secrets);
  const keys = loadServerKeys(config.server_name, config.signing_key_path, config.old_signing_keys, config.key_refresh_interval_ms);
  const database = await openDatabase(config.database, subsystemLogger(logger, 'axon.storage'), subsystemLogger(logger, 'axon.storage.sql'));
  const apps: FastifyInstance[] = [];
  const markClosing: (() => void)[] = [];
  const extraServers: Server[] = [];
  let passwordsToClose: { close(): Promise<void> } | undefined;
  let presenceToClose: PresenceService | undefined;
  let pushersToClose: PusherService | undefined;
  let notifierToClose: Notifier | undefined;
  const closeAll = async () => {
    // Stop accepting, answer long-polls now, let requests in flight finish
    // (for at most drainMs, then cut them), then close the database.
    for (const mark of markClosing) mark();
    notifierToClose?.close();
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
    const late = await Promise.race([
      drained.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), opts.drainMs ?? DRAIN_MS))),
    ]);
    clearTimeout(timer);
    if (late) {
      logger.warn({ drain_ms: opts.drainMs ?? DRAIN_MS }, 'requests still running at the end of the shutdown grace period; closing their connections');
      for (const a of apps) a.server.closeAllConnections();
      for (const s of extraServers) s.closeAllConnections();
      await drained;
    }
    await passwordsToClose?.close();
    await presenceToClose?.close();
    await pushersToClose?.close();
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

    const auth = new AuthService(database, config, logger);
    const passwords = passwordHasher(config.bcrypt_rounds, config.password_config.pepper);
    passwordsToClose = passwords;
    const uia = new UiaService(database.db);
    const notifier = new Notifier();
    notifierToClose = notifier;
    const presence = new PresenceService({ db: database.db, notifier, logger, options: presenceOptions(config) });
    await presence.start();
    presenceToClose = presence;
    const typing = new TypingService({ db: database.db, notifier, logger });
    const push = new PushService({ db: database.db, serverName: config.server_name, notifier });
    // One reading of the settled stream positions for /sync and the pusher loop.
    const positions = new StreamPositions(database.db, database.writes);
    const pushers = new PusherService({ db: database.db, notifier, push, logger, config: pusherConfig(config), positions });
    const ratelimitOverrides = new RatelimitOverrides(database.db);
    await ratelimitOverrides.load();
    const rateLimiter = new RateLimiter(ratelimitOverrides);
    const services: Services = {
      auth,
      passwords,
      uia,
      accounts: new AccountsService(database, config, passwords, auth, uia),
      rateLimiter,
      ratelimitOverrides,
      notifier,
      presence,
      typing,
      receipts: new ReceiptsService({ db: database.db, notifier }),
      push,
      pushers,
      positions,
      rooms: new RoomService({
        db: database.db,
        serverName: config.server_name,
        defaultRoomVersion: config.default_room_version,
        pipeline: new EventPipeline(config.server_name, keys),
        notifier,
        directory: directorySettings(config.raw),
        blockNonAdminInvites: config.raw['block_non_admin_invites'] === true,
        limits: new RoomRateLimits(rateLimiter, config),
        logger,
      }),
    };
    // Push actions and typing follow every persisted event, inside its transaction.
    services.rooms.pipeline.addPersistHook((tx, room, ev, groupBefore) => push.onPersisted(tx, room, ev, groupBefore));
    services.rooms.pipeline.addPersistHook(async (_tx, room, ev) => typing.onPersisted(room.room_id, ev.pdu));
    const ctx: AppContext = { config, database, keys, logger, services };
    // Sends to push gateways in the background; stopped before the database closes.
    pushersToClose = pushers;
    await pushers.start();
    const urls: string[] = [];
    for (const listener of config.listeners) {
      if (listener.type !== 'http') {
        logger.warn({ type: listener.type, port: listener.port }, 'listener type not supported; skipped');
        continue;
      }
      const built = await buildApp(ctx, listener, { extraPlugins: opts.extraPlugins });
      apps.push(built.app);
      markClosing.push(built.markClosing);
      const port = opts.portOverride ?? listener.port;
      const [first, ...rest] = bindAddresses(listener);
      await built.app.listen({ host: first, port });
      urls.push(urlOf(built.app.server));
      const boundPort = (built.app.server.address() as AddressInfo).port;
      for (const host of rest) {
        const extra = createServer(built.handler());
        extraServers.push(extra);
        await new Promise<void>((resolve, reject) => {
          extra.once('error', reject);
          extra.listen({ host, port: boundPort }, () => resolve());
        });
        urls.push(urlOf(extra));
      }
    }
    logger.info({ server_name: config.server_name, listening: urls }, `Axon is running on ${urls.join(', ')}`);
    // Finish parting users whose deactivation committed before a restart (failures are logged there).
    void services.rooms.partDeactivatedUsers().catch(() => undefined);
    let closing: Promise<void> | undefined;
    return { ctx, urls, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}

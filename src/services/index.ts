/**
 * The composition root: every service of the server, built once per
 * process (whatever the listeners and their `resources`), started here and
 * stopped here. Nothing else constructs a service; the API plugins look
 * them up in `ctx.services`.
 */
import { serverNameOf } from '../core/event-format.js';
import type { JsonObject } from '../core/pdu.js';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import type { Database } from '../storage/database.js';
import { subsystemLogger } from '../logger.js';
import { AccountDataService } from './account-data.js';
import { AccountsService } from './accounts.js';
import { AdminUsersService } from './admin-users.js';
import { AuthService } from './auth.js';
import { DevicesService } from './devices.js';
import { CrossSigningService } from './e2ee/cross-signing.js';
import { DeviceListsService } from './e2ee/device-lists.js';
import { KeysService } from './e2ee/keys.js';
import { RemoteKeys } from './e2ee/remote-keys.js';
import { RemoteDeviceCache } from './e2ee/remote-device-cache.js';
import { createFederationClient, type FederationClient } from './federation/federation-client.js';
import { type KeyFetchTransport, keyTransportFromClient } from './federation/key-transport.js';
import { RemoteQueries } from './federation/remote-queries.js';
import { FederationRequestAuth } from './federation/request-auth.js';
import { Keyring } from './federation/keyring.js';
import { FederationBackfill } from './federation/backfill.js';
import { OpenIdService } from './openid.js';
import { FederationHierarchy } from './federation/hierarchy.js';
import { FederationOriginLimiter } from './federation/origin-limiter.js';
import { connectEduProducers } from './federation/edu-producers.js';
import { registerEduHandlers } from './federation/edus.js';
import { serverAllowedInRoom } from './federation/server-access.js';
import { FederationEvents } from './federation/inbound-events.js';
import { FederationInvites } from './federation/invites.js';
import { PduVerifier } from './federation/pdu-verifier.js';
import { RemoteEvents } from './federation/remote-events.js';
import { RemoteMembership } from './federation/remote-membership.js';
import { ResidentMembership } from './federation/resident-membership.js';
import { RoomJoins } from './federation/room-joins.js';
import { FederationTransactions } from './federation/transactions.js';
import { FederationSender } from './federation/sender/federation-sender.js';
import { senderSettings } from './federation/sender/settings.js';
import { ServedEventsService } from './federation/served-events.js';
import { RoomKeysService } from './e2ee/room-keys.js';
import { ToDeviceService } from './e2ee/to-device.js';
import { MediaAdminService } from './media/media-admin.js';
import { previewConfig } from './media/preview-config.js';
import { MediaRepository } from './media/repository.js';
import { UrlPreviewService } from './media/url-preview.js';
import { Notifier } from './notifier.js';
import { type PasswordHasher, passwordHasher } from './passwords.js';
import { PresenceService, presenceOptions } from './presence.js';
import { ProfileService } from './profile.js';
import { PushService } from './push/push-service.js';
import { PusherService, pusherConfig } from './push/pushers.js';
import { RateLimiter } from './rate-limit.js';
import { RatelimitOverrides } from './ratelimit-overrides.js';
import { ReceiptsService } from './receipts.js';
import { RegistrationService } from './registration.js';
import { RegistrationTokensService } from './registration-tokens.js';
import { AliasService } from './rooms/aliases.js';
import { DirectoryService } from './rooms/directory.js';
import { directorySettings } from './rooms/directory-rules.js';
import { DEFAULT_FILTER_TIMELINE_LIMIT } from './rooms/event-filter.js';
import { EventPipeline } from './rooms/event-pipeline.js';
import { RoomRateLimits } from './rooms/rate-limits.js';
import { RelationPagesService } from './rooms/relation-pages.js';
import { RoomService } from './rooms/room-service.js';
import { TimelineService } from './rooms/timeline.js';
import { RoomUpgrader } from './rooms/upgrade.js';
import type { ServerKeys } from './server-keys.js';
import { LazyMemberCache } from './streams/lazy-members.js';
import { StreamPositions } from './streams/positions.js';
import { FilterStore } from './sync/filter-store.js';
import { SyncService } from './sync/sync-service.js';
import { TypingService } from './typing.js';
import { UiaService } from './uia.js';
import { Reauthenticator } from './reauth.js';
import { UserDirectoryService } from './user-directory.js';

/** What the services are built from. */
export interface ServiceDeps {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly keys: ServerKeys;
  readonly logger: Logger;
  /** How the keyring reaches other servers (default: the federation client; tests may read keys another way). */
  readonly keyTransport?: KeyFetchTransport;
}

/** Every service of the server, one instance each, shared by all listeners. */
export interface Services {
  readonly auth: AuthService;
  readonly passwords: PasswordHasher;
  readonly accounts: AccountsService;
  /** Account data clients write for themselves (global and per room). */
  readonly accountData: AccountDataService;
  /** What the user admin API reads (list, details, whois, joined rooms). */
  readonly adminUsers: AdminUsersService;
  /** Devices and the sessions on them (login, logout, rename, delete). */
  readonly devices: DevicesService;
  /** Announces device-list changes (wakes syncs; later, federation). */
  readonly deviceLists: DeviceListsService;
  readonly uia: UiaService;
  /** Registration and shared-secret registration (nonces, token-use sweeping). */
  readonly registration: RegistrationService;
  /** The admin API's registration tokens (list, create, change, delete). */
  readonly registrationTokens: RegistrationTokensService;
  readonly rateLimiter: RateLimiter;
  /** Per-user overrides of the rate limits (admin API), read by rateLimiter. */
  readonly ratelimitOverrides: RatelimitOverrides;
  readonly notifier: Notifier;
  readonly rooms: RoomService;
  readonly aliases: AliasService;
  /** The published room directory. */
  readonly directory: DirectoryService;
  readonly upgrader: RoomUpgrader;
  /** Reading rooms: /messages, /context, /event, /members, /joined_members, /timestamp_to_event. */
  readonly timeline: TimelineService;
  /** Pages of related events (/relations) and of thread roots (/threads). */
  readonly relationPages: RelationPagesService;
  readonly presence: PresenceService;
  /** Local users' display names and avatars. */
  readonly profiles: ProfileService;
  readonly typing: TypingService;
  readonly receipts: ReceiptsService;
  readonly push: PushService;
  /** Settled stream positions, shared by /sync and the pusher loop. */
  readonly positions: StreamPositions;
  readonly pushers: PusherService;
  readonly sync: SyncService;
  readonly filters: FilterStore;
  /** The user directory search. */
  readonly userDirectory: UserDirectoryService;
  /** Which member events each device was sent (lazy loading in /sync and /messages). */
  readonly lazyMembers: LazyMemberCache;
  /** Device and one-time keys (not the server's signing keys, which are `ctx.keys`). */
  readonly deviceKeys: KeysService;
  readonly crossSigning: CrossSigningService;
  /** Other servers' users' device lists, cached while they share a room with ours (federation's device-list updates). */
  readonly remoteDevices: RemoteDeviceCache;
  readonly toDevice: ToDeviceService;
  /** Server-side key backup. */
  readonly roomKeys: RoomKeysService;
  /** The media repository (one thumbnail queue and upload-waiters for the process). */
  readonly media: MediaRepository;
  readonly mediaAdmin: MediaAdminService;
  /** URL previews; absent unless `url_preview_enabled`. */
  readonly urlPreviews: UrlPreviewService | undefined;
  /** Other servers' verify keys (fetched, stored, checked) and the notary answers we give. */
  readonly keyring: Keyring;
  /** Requests to other servers: discovery, TLS, X-Matrix signing, one connection pool per destination. */
  readonly federation: FederationClient;
  /** The origin of a federation request, from its signature. */
  readonly federationAuth: FederationRequestAuth;
  /** PDUs from other servers into our rooms: verified, gaps fetched, persisted. */
  readonly federationEvents: FederationEvents;
  /** Incoming /send transactions (PDUs and EDUs), once per (origin, txnId). */
  readonly federationTransactions: FederationTransactions;
  /** make_join/send_join and the rest, for other servers' users in our rooms. */
  readonly residentMembership: ResidentMembership;
  /** Where a client's join or leave goes: here, or through another server. */
  readonly joins: RoomJoins;
  /** A space and its children, for another server's /hierarchy. */
  readonly federationHierarchy: FederationHierarchy;
  /** rc_federation: each origin's requests counted, delayed, refused and taken a few at a time. */
  readonly federationLimiter: FederationOriginLimiter;
  /** OpenID tokens: handed to users, checked for third parties (userinfo). */
  readonly openId: OpenIdService;
  /** Invites across servers: co-signing ours, taking theirs. */
  readonly invites: FederationInvites;
  /** Sends our events and EDUs to the other servers of their rooms (durable outboxes, backoff). */
  readonly federationSender: FederationSender;
  /** Events, state and history served to other servers (/event, /state, /backfill, …). */
  readonly servedEvents: ServedEventsService;
}

export interface RunningServices {
  readonly services: Services;
  /** Answers waiting long-polls now and refuses new waits; the first step of shutdown. */
  wakeWaiters(): void;
  /** Stops the timers and loops the services own; call after the listeners have stopped, before the database closes. */
  close(): Promise<void>;
}

/** `filter_timeline_limit`, as Synapse reads it. */
function filterTimelineLimit(config: HomeserverConfig): number {
  const raw = config.raw['filter_timeline_limit'];
  return typeof raw === 'number' && Number.isInteger(raw) ? raw : DEFAULT_FILTER_TIMELINE_LIMIT;
}

export async function createServices(deps: ServiceDeps): Promise<RunningServices> {
  const { config, database, keys, logger } = deps;
  const db = database.db;
  // Stopped in this order on close (and on a failed start, as far as they were started).
  const stops: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const stop of stops.splice(0)) await stop();
  };
  try {
    const auth = new AuthService(database, config, logger);
    const passwords = passwordHasher(config.bcrypt_rounds, config.password_config.pepper);
    stops.push(() => passwords.close());
    const uia = new UiaService(db);
    const notifier = new Notifier();
    const presence = new PresenceService({ db, notifier, logger, options: presenceOptions(config), isMine: (userId) => serverNameOf(userId) === config.server_name });
    await presence.start();
    stops.push(() => presence.close());
    const typing = new TypingService({ db, notifier, logger });
    const push = new PushService({ db, serverName: config.server_name, notifier });
    // One reading of the settled stream positions for /sync and the pusher loop.
    const positions = new StreamPositions(db, database.writes);
    const pushers = new PusherService({ db, notifier, push, logger, config: pusherConfig(config), positions });
    const ratelimitOverrides = new RatelimitOverrides(db);
    await ratelimitOverrides.load();
    const rateLimiter = new RateLimiter(ratelimitOverrides);
    const directory = directorySettings(config.raw);
    const rooms = new RoomService({
      db,
      serverName: config.server_name,
      defaultRoomVersion: config.default_room_version,
      pipeline: new EventPipeline(db, config.server_name, keys, logger),
      notifier,
      directory,
      blockNonAdminInvites: config.raw['block_non_admin_invites'] === true,
      limits: new RoomRateLimits(rateLimiter, config),
      logger,
    });
    // Push actions and typing follow every persisted event, inside its transaction.
    rooms.pipeline.addPersistHook((tx, room, ev, groupBefore) => push.onPersisted(tx, room, ev, groupBefore));
    rooms.pipeline.addPersistHook(async (_tx, room, ev) => typing.onPersisted(room.room_id, ev.pdu));
    const deviceLists = new DeviceListsService({ db, notifier, positions, logger });
    const reauth = new Reauthenticator(uia, rateLimiter, config.rc_login.failed_attempts);
    const accounts = new AccountsService(database, config, passwords, auth, uia, { deviceLists, rooms, reauth });
    const isMine = (userId: string) => accounts.isMine(userId);
    const devices = new DevicesService({ database, auth, deviceLists, reauth });
    const receipts = new ReceiptsService({ db, notifier });
    const lazyMembers = new LazyMemberCache();
    const registration = new RegistrationService({ config, database, logger, services: { accounts, auth, uia, passwords, rateLimiter } });
    const e2ee = { db, notifier, isMine, logger, deviceLists };
    const fedLogger = subsystemLogger(logger, 'axon.federation');
    const federation = createFederationClient({ config, keys, logger: fedLogger });
    const remoteKeys = new RemoteKeys(federation);
    const remoteDevices = new RemoteDeviceCache({
      db,
      serverName: config.server_name,
      client: federation,
      live: remoteKeys,
      deviceLists,
      logger: subsystemLogger(logger, 'axon.e2ee'),
    });
    rooms.pipeline.addPersistHook((tx, _room, ev) => remoteDevices.onPersisted(tx, ev.pdu));
    stops.push(() => remoteDevices.close());
    stops.push(() => federation.close());
    const media = new MediaRepository({ config, database, logger, services: { rateLimiter }, federation });
    stops.push(() => media.close());
    const remote = new RemoteQueries({ client: federation, logger: fedLogger });
    const keyring = new Keyring({
      database,
      keys,
      transport: deps.keyTransport ?? keyTransportFromClient(federation),
      trustedKeyServers: config.trusted_key_servers,
      logger: subsystemLogger(logger, 'axon.federation.keyring'),
    });
    keyring.logStartupWarnings(config.suppress_key_server_warning);
    const federationEvents = new FederationEvents({ db, pipeline: rooms.pipeline, verifier: new PduVerifier(keyring), remote: new RemoteEvents(federation), logger: fedLogger });
    const aliases = new AliasService({ db, rooms, serverName: config.server_name, directory, remote, logger });
    const remoteMembership = new RemoteMembership({
      db,
      pipeline: rooms.pipeline,
      events: federationEvents,
      client: federation,
      serverName: config.server_name,
      keys,
      logger: fedLogger,
    });
    const invites = new FederationInvites({
      db,
      pipeline: rooms.pipeline,
      events: federationEvents,
      client: federation,
      keyring,
      notifier,
      serverName: config.server_name,
      keys,
      blockNonAdminInvites: config.raw['block_non_admin_invites'] === true,
      remote: remoteMembership,
      logger: fedLogger,
    });
    const federationSender = new FederationSender({
      db,
      serverName: config.server_name,
      client: federation,
      positions,
      settings: senderSettings(config),
      logger: subsystemLogger(logger, 'axon.federation.sender'),
    });
    // Closed first (before the client), so its requests in flight are aborted, not failed.
    stops.unshift(() => federationSender.close());
    rooms.pipeline.onCommitted(() => federationSender.poke());
    const backfill = new FederationBackfill({ db, events: federationEvents, client: federation, serverName: config.server_name, logger: fedLogger });
    const federationTransactions = new FederationTransactions(federationEvents, fedLogger);
    const toDevice = new ToDeviceService({
      ...e2ee,
      keyRequests: { limiter: rateLimiter, cfg: config.rc_key_requests },
      sendRemote: (destination, content) => federationSender.queueEdu(destination, 'm.direct_to_device', content),
    });
    connectEduProducers({ db, serverName: config.server_name, sender: federationSender, typing, receipts, deviceLists, presence, logger: fedLogger });
    registerEduHandlers(federationTransactions, { typing, receipts, toDevice, remoteDevices, presence, allowed: (roomId, origin) => serverAllowedInRoom(db, roomId, origin) });
    const services: Services = {
      auth,
      passwords,
      accounts,
      accountData: new AccountDataService({ db, notifier }),
      adminUsers: new AdminUsersService(database),
      devices,
      deviceLists,
      uia,
      registration,
      registrationTokens: new RegistrationTokensService(db),
      rateLimiter,
      ratelimitOverrides,
      notifier,
      rooms,
      aliases,
      directory: new DirectoryService(db, directory, (server, req) => remote.publicRooms(server, req) as Promise<JsonObject>),
      upgrader: new RoomUpgrader({ db, rooms, serverName: config.server_name, notifier, logger }),
      timeline: new TimelineService({ db, lazyMembers, backfill: (roomId, limit) => backfill.backfill(roomId, limit) }),
      relationPages: new RelationPagesService(db),
      presence,
      profiles: new ProfileService({ db, raw: config.raw, isMine, rooms, remote, logger }),
      typing,
      receipts,
      push,
      positions,
      pushers,
      sync: new SyncService({ db, notifier, logger, typing, receipts, presence, push, lazyMembers, positions }),
      filters: new FilterStore(db, filterTimelineLimit(config)),
      userDirectory: new UserDirectoryService({ db, config, rateLimiter }),
      lazyMembers,
      deviceKeys: new KeysService({ ...e2ee, deviceNamesOverFederation: config.raw['allow_device_name_lookup_over_federation'] === true, remote: remoteKeys, remoteDevices }),
      crossSigning: new CrossSigningService({ ...e2ee, reauth, remote: remoteKeys }),
      remoteDevices,
      toDevice,
      roomKeys: new RoomKeysService(db),
      media,
      mediaAdmin: new MediaAdminService({ db, serverName: config.server_name, mediaStorePath: config.media_store_path, logger, repository: media }),
      urlPreviews: config.url_preview_enabled
        ? new UrlPreviewService({
            config: previewConfig(config),
            logger,
            maxImagePixels: config.max_image_pixels,
            storeImage: ({ userId, body, contentType, uploadName }) =>
              media.upload(userId, Readable.from([body]), { contentType, fileName: uploadName, contentLength: body.length }),
          })
        : undefined,
      keyring,
      federation,
      federationAuth: new FederationRequestAuth({ serverName: config.server_name, keyring, domainWhitelist: config.federation_domain_whitelist, logger: fedLogger }),
      federationEvents,
      federationTransactions,
      residentMembership: new ResidentMembership({ db, pipeline: rooms.pipeline, events: federationEvents, serverName: config.server_name, keys }),
      invites,
      openId: new OpenIdService(db, config.server_name),
      federationLimiter: new FederationOriginLimiter(config.rc_federation),
      federationHierarchy: new FederationHierarchy(db),
      joins: new RoomJoins({ db, rooms, aliases, remote: remoteMembership, invites, serverName: config.server_name }),
      federationSender,
      servedEvents: new ServedEventsService({ db, serverName: config.server_name }),
    };
    const previews = services.urlPreviews;
    if (previews) stops.unshift(() => previews.close());
    registration.startSweeping();
    stops.unshift(() => registration.stopSweeping());
    // What a crash left in the media store's incoming/ (failures are ignored there).
    void media.sweepIncoming();
    // Sends to push gateways in the background; stopped before the database closes.
    stops.push(() => pushers.close());
    await pushers.start();
    await federationSender.start();
    return { services, wakeWaiters: () => notifier.close(), close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * Builds the fastify app for one listener: the shared behaviour (request
 * ids, logging, CORS, JSON bodies, Matrix errors) and the API plugins that
 * the listener's `resources` ask for, as Synapse maps resource names.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify';
import type { ListenerConfig } from '../config/types.js';
import { adminDevicesPlugin } from './admin/devices.js';
import { adminFederationDestinationsPlugin } from './admin/federation-destinations.js';
import { adminMediaPlugin } from './admin/media.js';
import { adminRegistrationTokensPlugin } from './admin/registration-tokens.js';
import { adminServerPlugin } from './admin/server.js';
import { sharedSecretRegisterPlugin } from './admin/shared-secret-register.js';
import { adminUsersPlugin } from './admin/users.js';
import { adminRatelimitOverridePlugin } from './admin/ratelimit-override.js';
import { accountPlugin } from './client/account.js';
import { accountDataPlugin } from './client/account-data.js';
import { capabilitiesPlugin } from './client/capabilities.js';
import { devicesPlugin } from './client/devices.js';
import { loginFlowsPlugin } from './client/login.js';
import { logoutPlugin } from './client/logout.js';
import { profilePlugin } from './client/profile.js';
import { registerPlugin } from './client/register.js';
import { roomsPlugin } from './client/rooms.js';
import { syncPlugin } from './client/sync.js';
import { filterPlugin } from './client/filter.js';
import { keysPlugin } from './client/keys.js';
import { roomKeysPlugin } from './client/room-keys.js';
import { toDevicePlugin } from './client/to-device.js';
import { membershipPlugin } from './client/membership.js';
import { directoryPlugin } from './client/directory.js';
import { upgradePlugin } from './client/upgrade.js';
import { timelinePlugin } from './client/timeline.js';
import { redactPlugin } from './client/redact.js';
import { relationsPlugin } from './client/relations.js';
import { typingPlugin } from './client/typing.js';
import { receiptsPlugin } from './client/receipts.js';
import { pushRulesPlugin } from './client/pushrules.js';
import { pushersPlugin } from './client/pushers.js';
import { notificationsPlugin } from './client/notifications.js';
import { versionsPlugin } from './client/versions.js';
import { voipPlugin } from './client/voip.js';
import { presencePlugin } from './client/presence.js';
import { userDirectoryPlugin } from './client/user-directory.js';
import { installBodyLimits } from './body-limit.js';
import type { AppContext, PluginOptions } from './context.js';
import { installCors } from './cors.js';
import { installErrorHandlers, toMatrixError } from './error-handler.js';
import { keyServerPlugin } from './federation/keys.js';
import { federationMediaPlugin } from './federation/media.js';
import { federationMembershipPlugin } from './federation/membership.js';
import { federationOpenIdPlugin } from './federation/openid.js';
import { federationHierarchyPlugin } from './federation/hierarchy.js';
import { installOriginTurns } from './federation/origin.js';
import { openIdPlugin } from './client/openid.js';
import { federationPublicRoomsPlugin } from './federation/public-rooms.js';
import { federationSendPlugin } from './federation/send.js';
import { federationQueriesPlugin } from './federation/queries.js';
import { federationRoomEventsPlugin } from './federation/room-events.js';
import { federationUserKeysPlugin } from './federation/user-keys.js';
import { federationVersionPlugin } from './federation/version.js';
import { healthPlugin, landingPlugin } from './health.js';
import { installJsonBodyParser } from './json-body.js';
import { installRouteSchemas } from './request-schema.js';
import { mediaPlugin } from './media/media.js';
import { previewUrlPlugin } from './media/preview-url.js';
import { RequestLogController } from './request-log.js';
import { isLogConfigured, subsystemLogger } from '../logger.js';
import { accessLoggerName } from '../logging/names.js';
import { wellKnownPlugin } from './wellknown.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface BuiltApp {
  app: FastifyInstance;
  /** The raw Node handler, for binding the same app on further addresses. */
  handler: () => RequestHandler;
  /** From now on every response closes its connection, so shutdown is not held up by keep-alive. */
  markClosing: () => void;
}

/** Which API areas a listener serves, from Synapse's resource names. */
export function resourceAreas(listener: ListenerConfig): Set<'client' | 'federation' | 'keys' | 'media' | 'openid'> {
  const names = new Set(listener.resources.flatMap((r) => r.names));
  const areas = new Set<'client' | 'federation' | 'keys' | 'media' | 'openid'>();
  if (names.has('client')) areas.add('client').add('media');
  if (names.has('media')) areas.add('media');
  // As Synapse: `federation` brings the key API and OpenID userinfo; `openid` serves userinfo alone.
  if (names.has('federation')) areas.add('federation').add('keys').add('openid');
  if (names.has('openid')) areas.add('openid');
  if (names.has('keys')) areas.add('keys');
  return areas;
}

/** What a `client` listener serves: the client-server API, /_synapse/admin and /_synapse/client, the landing page. */
const CLIENT_PLUGINS: FastifyPluginAsync<PluginOptions>[] = [
  landingPlugin,
  wellKnownPlugin,
  versionsPlugin,
  loginFlowsPlugin,
  voipPlugin,
  openIdPlugin,
  registerPlugin,
  logoutPlugin,
  accountPlugin,
  devicesPlugin,
  profilePlugin,
  accountDataPlugin,
  capabilitiesPlugin,
  roomsPlugin,
  membershipPlugin,
  directoryPlugin,
  upgradePlugin,
  timelinePlugin,
  redactPlugin,
  relationsPlugin,
  typingPlugin,
  receiptsPlugin,
  pushRulesPlugin,
  pushersPlugin,
  notificationsPlugin,
  userDirectoryPlugin,
  presencePlugin,
  syncPlugin,
  filterPlugin,
  keysPlugin,
  toDevicePlugin,
  roomKeysPlugin,
  adminServerPlugin,
  adminRegistrationTokensPlugin,
  adminUsersPlugin,
  adminRatelimitOverridePlugin,
  adminDevicesPlugin,
  adminMediaPlugin,
  adminFederationDestinationsPlugin,
  sharedSecretRegisterPlugin,
];

/** What a `media` listener serves (a `client` one too): the media repository. */
const MEDIA_PLUGINS: FastifyPluginAsync<PluginOptions>[] = [mediaPlugin, previewUrlPlugin];

export interface BuildOptions {
  /** Further plugins registered after ours, on every listener (for embedding and tests). */
  extraPlugins?: FastifyPluginAsync<PluginOptions>[];
  /** For a `tls: true` listener: the certificate chain and key (see tls-files.ts); the app is then served by node:https. */
  tls?: { cert: string; key: string };
}

export async function buildApp(ctx: AppContext, listener: ListenerConfig, options: BuildOptions = {}): Promise<BuiltApp> {
  let handler: RequestHandler | undefined;
  const app = Fastify({
    loggerInstance: subsystemLogger(ctx.logger, 'axon.http') as FastifyBaseLogger,
    // Behind nginx, the client's address comes from X-Forwarded-For, as Synapse's x_forwarded.
    trustProxy: listener.x_forwarded,
    bodyLimit: ctx.config.max_request_body_size,
    genReqId: () => randomBytes(6).toString('hex'),
    logController: new RequestLogController({
      logger: subsystemLogger(ctx.logger, accessLoggerName(listener.port, listener.tls)),
      tag: String(listener.port),
      synapseLine: isLogConfigured(ctx.logger),
    }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1000 },
    // A URL fastify cannot even route (bad percent-encoding) is still a Matrix error.
    frameworkErrors: (error, _req, res) => {
      const m = toMatrixError(error);
      const reply = res as unknown as FastifyReply;
      if (m.statusCode >= 500) void reply.code(400).send({ errcode: 'M_UNRECOGNIZED', error: 'Bad request' });
      else void reply.code(m.statusCode).send(m.toJSON());
    },
    serverFactory: (h) => {
      handler = h as RequestHandler;
      // An https.Server is an http.Server for everything fastify uses (listen, close, closeIdleConnections).
      return (options.tls ? createHttpsServer(options.tls, h) : createServer(h)) as Server;
    },
  }) as unknown as FastifyInstance;
  installErrorHandlers(app);
  let closing = false;
  app.addHook('onSend', async (_req, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  installCors(app);
  installBodyLimits(app);
  installJsonBodyParser(app);
  installRouteSchemas(app);

  const opts = { ctx };
  const areas = resourceAreas(listener);
  await app.register(healthPlugin, opts);
  if (areas.has('client')) for (const plugin of CLIENT_PLUGINS) await app.register(plugin, opts);
  if (areas.has('media')) for (const plugin of MEDIA_PLUGINS) await app.register(plugin, opts);
  if (areas.has('openid')) await app.register(federationOpenIdPlugin, opts);
  if (areas.has('federation')) installOriginTurns(app);
  if (areas.has('federation'))
    for (const plugin of [
      federationVersionPlugin,
      federationQueriesPlugin,
      federationUserKeysPlugin,
      federationPublicRoomsPlugin,
      federationSendPlugin,
      federationMembershipPlugin,
      federationRoomEventsPlugin,
      federationMediaPlugin,
      federationHierarchyPlugin,
    ])
      await app.register(plugin, opts);
  if (areas.has('keys')) await app.register(keyServerPlugin, opts);
  for (const plugin of options.extraPlugins ?? []) await app.register(plugin, opts);
  await app.ready();
  return {
    app,
    markClosing: () => {
      closing = true;
    },
    handler: () => {
      if (!handler) throw new Error('fastify did not build a server');
      return handler;
    },
  };
}

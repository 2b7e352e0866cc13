/**
 * The user admin API, with Synapse's shapes: list (v2 and v3), query,
 * create or modify (v2 PUT), deactivate, reset password, whois, the admin
 * flag, joined rooms, username availability.
 *
 * Changes to a user's flags or sessions are AccountsService methods: one
 * transaction each, after whose commit the auth cache forgets the user (so
 * the change applies to their very next request), device-list changes are
 * announced and a deactivated user is parted from their rooms.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { forbidden, invalidParam, MatrixError } from '../../matrix-error.js';
import type { Requester } from '../../services/auth.js';
import { USER_ORDER_BY } from '../../services/admin-users.js';
import type { UserRow } from '../../storage/users.js';
import { requireAdmin, requireUser } from '../auth.js';
import type { AppContext, PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { localUserId, parseUserId, queryRequiredString, requireParams, userNotFound } from './params.js';
import { QUERY_BOOLEAN, QUERY_DIR, QUERY_INTEGER, QUERY_STRING, queryChoice, queryEnumSchema, queryFlag, queryNumber, queryString, queryStrings } from '../query-schema.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

type UserParams = { Params: { userId: string } };

/** Synapse's MAX_DISPLAYNAME_LEN and MAX_AVATAR_URL_LEN. */
const MAX_DISPLAYNAME_LEN = 256;
const MAX_AVATAR_URL_LEN = 1000;
const MAX_PASSWORD_LEN = 512;

/** `user_types` from homeserver.yaml: the default type for new users and the extra allowed ones. */
function userTypesConfig(ctx: AppContext): { defaultType: string | null; allowed: Set<string> } {
  const raw = ctx.config.raw['user_types'];
  const cfg = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const extra = Array.isArray(cfg['extra_user_types']) ? cfg['extra_user_types'].filter((t): t is string => typeof t === 'string') : [];
  const def = typeof cfg['default_user_type'] === 'string' ? cfg['default_user_type'] : null;
  return { defaultType: def, allowed: new Set(['bot', 'support', ...extra]) };
}

function canChangePassword(ctx: AppContext): boolean {
  return ctx.config.password_config.enabled && ctx.config.password_config.localdb_enabled;
}

function optionalBoolean(body: Record<string, unknown>, key: string, message: string, errcode = 'M_UNKNOWN'): boolean | undefined {
  if (!(key in body)) return undefined;
  const v = body[key];
  if (typeof v !== 'boolean') throw new MatrixError(400, errcode, message);
  return v;
}

/** threepids / external_ids: Axon stores neither yet, so only an empty list (or none) is accepted. */
/** threepids / external_ids: Axon stores neither yet, so only an empty list (or none) is accepted. */
function checkUnsupportedList(body: Record<string, unknown>, key: string, what: string): void {
  const v = body[key];
  if (Array.isArray(v) && v.length > 0) throw invalidParam(`${what} are not supported by this server yet`);
}

/** The list's query string (v2 and v3), Synapse's parameters. */
const USER_LIST_QUERY = {
  type: 'object',
  properties: {
    from: QUERY_INTEGER,
    limit: QUERY_INTEGER,
    user_id: QUERY_STRING,
    name: QUERY_STRING,
    guests: QUERY_BOOLEAN,
    deactivated: QUERY_BOOLEAN,
    locked: QUERY_BOOLEAN,
    admins: QUERY_BOOLEAN,
    order_by: queryEnumSchema(USER_ORDER_BY),
    dir: QUERY_DIR,
    not_user_type: QUERY_STRING,
  },
};

/** A list of objects each with the `required` fields (M_INVALID_PARAM / M_MISSING_PARAM, as Synapse). */
const objectList = (required: string[]) => ({
  type: ['array', 'null'],
  errcode: 'M_INVALID_PARAM',
  items: {
    allOf: [
      { type: 'object', errcode: 'M_INVALID_PARAM' },
      { type: 'object', required },
    ],
  },
});

/**
 * PUT /v2/users/{userId}: the fields' types, with Synapse's codes (user_type
 * against the configured types, length limits and the cross-field rules
 * stay in the handler).
 */
/** Synapse's words for a flag of the wrong type. */
const NOT_BOOLEAN = "'{name}' parameter is not of type boolean";
const UPSERT_USER_BODY = {
  type: 'object',
  properties: {
    password: { type: ['string', 'null'], maxLength: MAX_PASSWORD_LEN, errcode: 'M_UNKNOWN', errmsg: 'Invalid password' },
    logout_devices: { type: 'boolean', errcode: 'M_UNKNOWN', errmsg: NOT_BOOLEAN },
    displayname: { type: 'string', errcode: 'M_INVALID_PARAM', errmsg: "'{name}' must be a string" },
    avatar_url: { type: 'string', errcode: 'M_INVALID_PARAM', errmsg: "'{name}' must be a string" },
    admin: { type: 'boolean', errmsg: "Param '{name}' must be a boolean, if given" },
    deactivated: { type: 'boolean', errcode: 'M_UNKNOWN', errmsg: NOT_BOOLEAN },
    locked: { type: 'boolean', errcode: 'M_UNKNOWN', errmsg: NOT_BOOLEAN },
    user_type: { type: ['string', 'null'], errcode: 'M_UNKNOWN' },
    threepids: objectList(['medium', 'address']),
    external_ids: objectList(['auth_provider', 'external_id']),
  },
};

/** UPSERT_USER_BODY's fields, as checked. */
interface UpsertUserBody extends Record<string, unknown> {
  password?: string | null;
  logout_devices?: boolean;
  displayname?: string;
  avatar_url?: string;
  admin?: boolean;
  deactivated?: boolean;
  locked?: boolean;
  user_type?: string | null;
}

function parseDisplayname(v: string): string | null {
  if (v.length > MAX_DISPLAYNAME_LEN) throw new MatrixError(400, 'M_UNKNOWN', `Displayname is too long (max ${MAX_DISPLAYNAME_LEN})`);
  return v === '' ? null : v.trim();
}

function parseAvatarUrl(v: string): string | null {
  if (v.length > MAX_AVATAR_URL_LEN) throw new MatrixError(400, 'M_UNKNOWN', `Avatar URL is too long (max ${MAX_AVATAR_URL_LEN})`);
  return v === '' ? null : v;
}

export const adminUsersPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { accounts, adminUsers } = ctx.services;

  async function detailsOf(userId: string): Promise<Record<string, unknown>> {
    const details = await adminUsers.details(userId);
    if (!details) throw new MatrixError(500, 'M_UNKNOWN', 'User vanished');
    return details;
  }

  /**
   * An admin changing their own password keeps the session they are using. */
  function keepOwnSession(userId: string, requester: Requester): { exceptTokenId?: number; exceptDeviceId?: string | null } {
    return userId === requester.userId ? { exceptTokenId: requester.tokenId, exceptDeviceId: requester.deviceId } : {};
  }

  async function existingLocalUser(raw: string, notLocal: string): Promise<UserRow> {
    const userId = localUserId(ctx, raw, notLocal);
    const user = await accounts.getUser(userId);
    if (!user) throw userNotFound();
    return user;
  }

  // ---- list ----
  const listHandler = (version: 'v2' | 'v3') => async (req: FastifyRequest) => {
    await requireAdmin(ctx, req);
    const from = queryNumber(req, 'from') ?? 0;
    const limit = queryNumber(req, 'limit') ?? 100;
    const userIdFilter = queryString(req, 'user_id');
    const name = queryString(req, 'name');
    const guests = queryFlag(req, 'guests') ?? true;
    const deactivatedParam = queryFlag(req, 'deactivated');
    // v2: `true` includes deactivated users, otherwise they are left out. v3: a plain filter.
    const deactivated = version === 'v2' ? (deactivatedParam ? undefined : false) : deactivatedParam;
    const locked = queryFlag(req, 'locked') ?? false;
    const admins = queryFlag(req, 'admins');
    const orderBy = queryChoice<(typeof USER_ORDER_BY)[number]>(req, 'order_by') ?? 'name';
    const dir = queryChoice<'b' | 'f'>(req, 'dir') ?? 'f';
    const notUserTypes = queryStrings(req, 'not_user_type');

    const { users, total } = await adminUsers.list({
      from,
      limit,
      name: name || undefined,
      userId: userIdFilter || undefined,
      guests,
      deactivated,
      admins,
      locked,
      notUserTypes,
      orderBy,
      dir,
    });
    const res: Record<string, unknown> = { users, total };
    if (from + limit < total) res['next_token'] = String(from + users.length);
    return res;
  };
  app.get('/_synapse/admin/v2/users', { schema: { querystring: USER_LIST_QUERY } }, listHandler('v2'));
  app.get('/_synapse/admin/v3/users', { schema: { querystring: USER_LIST_QUERY } }, listHandler('v3'));

  // ---- query one ----
  app.get<UserParams>('/_synapse/admin/v2/users/:userId', async (req) => {
    await requireAdmin(ctx, req);
    const user = await existingLocalUser(req.params.userId, 'Can only look up local users');
    return detailsOf(user.user_id);
  });

  // ---- create or modify ----
  app.put<UserParams>('/_synapse/admin/v2/users/:userId', { schema: { body: UPSERT_USER_BODY } }, async (req, reply) => {
    const requester = await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    const body = jsonObjectBody(req) as UpsertUserBody;
    if (!accounts.isMine(userId)) throw new MatrixError(400, 'M_UNKNOWN', 'This endpoint can only be used with local users');

    checkUnsupportedList(body, 'threepids', 'Third-party identifiers (threepids)');
    checkUnsupportedList(body, 'external_ids', 'External ids');

    const types = userTypesConfig(ctx);
    const userType = body.user_type ?? null;
    if (userType !== null && !types.allowed.has(userType)) throw new MatrixError(400, 'M_UNKNOWN', 'Invalid user type');
    const setAdminTo = body.admin;
    const password = body.password ?? null;
    const logoutDevices = body.logout_devices ?? true;
    const deactivate = body.deactivated;
    const lock = body.locked;
    if (deactivate && lock) throw new MatrixError(400, 'M_UNKNOWN', "An user can't be deactivated and locked");
    const displayname = body.displayname !== undefined ? parseDisplayname(body.displayname) : undefined;
    const avatarUrl = body.avatar_url !== undefined ? parseAvatarUrl(body.avatar_url) : undefined;
    if (typeof password === 'string' && !canChangePassword(ctx)) throw forbidden('Password change disabled');
    if (userId === requester.userId && setAdminTo === false) throw new MatrixError(400, 'M_UNKNOWN', 'You may not demote yourself.');

    const result = await accounts.upsertUser({
      userId,
      password,
      logoutDevices,
      keep: keepOwnSession(userId, requester),
      admin: setAdminTo,
      deactivated: deactivate,
      locked: lock,
      ...('user_type' in body ? { userType } : {}),
      defaultUserType: types.defaultType,
      displayname,
      avatarUrl,
    });

    return reply.code(result.created ? 201 : 200).send(await detailsOf(userId));
  });

  // ---- deactivate ----
  app.post<UserParams>('/_synapse/admin/v1/deactivate/:userId', async (req) => {
    await requireAdmin(ctx, req);
    const user = await existingLocalUser(req.params.userId, 'Can only deactivate local users');
    const body = jsonObjectBody(req, 'allowEmpty');
    const erase = optionalBoolean(body, 'erase', "Param 'erase' must be a boolean, if given", 'M_BAD_JSON') ?? false;
    // Deactivating again never lifts an earlier erasure.
    await accounts.deactivateAccount(user.user_id, { erase: erase || user.erased });
    return { id_server_unbind_result: 'success' };
  });

  // ---- reset password ----
  app.post<UserParams>('/_synapse/admin/v1/reset_password/:userId', async (req) => {
    const requester = await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    const body = jsonObjectBody(req);
    requireParams(body, ['new_password']);
    const newPassword = body['new_password'];
    if (typeof newPassword !== 'string') throw invalidParam('new_password must be a string');
    const logoutDevices = optionalBoolean(body, 'logout_devices', "'logout_devices' parameter is not of type boolean") ?? true;
    if (!canChangePassword(ctx)) throw forbidden('Password change disabled');
    const user = accounts.isMine(userId) ? await accounts.getUser(userId) : undefined;
    if (!user) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown user');
    await accounts.setPassword(userId, { password: newPassword }, { logoutDevices, ...keepOwnSession(userId, requester) });
    return {};
  });

  // ---- whois (also the client-server API's /admin/whois) ----
  const whois = async (req: FastifyRequest<UserParams>) => {
    const requester = await requireUser(ctx, req);
    const userId = parseUserId(req.params.userId);
    if (userId !== requester.userId && !requester.isAdmin) throw forbidden('You are not a server admin');
    if (!accounts.isMine(userId)) throw new MatrixError(400, 'M_UNKNOWN', 'Can only whois a local user');
    if (!(await accounts.getUser(userId))) throw userNotFound();
    const devices: Record<string, { sessions: { connections: { ip: string; last_seen: number; user_agent: string }[] }[] }> = {};
    for (const c of await adminUsers.connections(userId)) {
      const entry = (devices[c.device_id] ??= { sessions: [{ connections: [] }] });
      entry.sessions[0]!.connections.push({ ip: c.ip, last_seen: c.last_seen, user_agent: c.user_agent });
    }
    return { user_id: userId, devices };
  };
  app.get<UserParams>('/_synapse/admin/v1/whois/:userId', whois);
  for (const prefix of CLIENT_PREFIXES) app.get<UserParams>(`${prefix}/admin/whois/:userId`, whois);

  // ---- admin flag ----
  app.get<UserParams>('/_synapse/admin/v1/users/:userId/admin', async (req) => {
    await requireAdmin(ctx, req);
    const user = await existingLocalUser(req.params.userId, 'Only local users can be admins of this homeserver');
    return { admin: user.admin };
  });

  app.put<UserParams>('/_synapse/admin/v1/users/:userId/admin', async (req) => {
    const requester = await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    const body = jsonObjectBody(req);
    requireParams(body, ['admin']);
    const admin = body['admin'];
    if (typeof admin !== 'boolean') throw invalidParam("Param 'admin' must be a boolean");
    if (!accounts.isMine(userId)) throw new MatrixError(400, 'M_UNKNOWN', 'Only local users can be admins of this homeserver');
    if (userId === requester.userId && !admin) throw new MatrixError(400, 'M_UNKNOWN', 'You may not demote yourself.');
    await accounts.setAdmin(userId, admin);
    return {};
  });

  // ---- joined rooms ----
  app.get<UserParams>('/_synapse/admin/v1/users/:userId/joined_rooms', async (req) => {
    await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    // Remote users are answered from what this server knows of them, as Synapse does.
    if (accounts.isMine(userId) && !(await accounts.getUser(userId))) throw userNotFound();
    const rooms = await adminUsers.joinedRooms(userId);
    return { joined_rooms: rooms, total: rooms.length };
  });

  // ---- username availability ----
  app.get('/_synapse/admin/v1/username_available', async (req) => {
    await requireAdmin(ctx, req);
    const username = queryRequiredString(req, 'username');
    accounts.validateLocalpart(username);
    if (await accounts.getUser(accounts.userId(username))) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');
    return { available: true };
  });
};

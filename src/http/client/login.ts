/**
 * Logging in: GET /login (the flows), POST /login with m.login.password,
 * and POST /refresh (refresh-token rotation), under r0 and v3.
 *
 * Rate limits follow Synapse's order: `rc_login.address` per client address
 * on every attempt; `rc_login.failed_attempts` per user id, checked before
 * the password and counted only when it is wrong; `rc_login.account` per
 * user id, counted once the password has been accepted.
 */
import type { FastifyPluginAsync } from 'fastify';
import { forbidden, MatrixError } from '../../matrix-error.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/**
 * The spec's POST /login body, with Synapse's codes: a missing `type` is
 * M_MISSING_PARAM, a field of the wrong type M_INVALID_PARAM. `device_id`
 * and `initial_device_display_name` may be null (not given). The password is
 * required only for m.login.password, checked in the handler.
 */
const LOGIN_BODY = {
  type: 'object',
  required: ['type'],
  properties: {
    type: { type: 'string', errcode: 'M_INVALID_PARAM' },
    identifier: { type: 'object', errcode: 'M_INVALID_PARAM' },
    password: { type: 'string', errcode: 'M_INVALID_PARAM' },
    token: { type: 'string', errcode: 'M_INVALID_PARAM' },
    device_id: { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' },
    initial_device_display_name: { type: 'string', nullable: true, errcode: 'M_INVALID_PARAM' },
    refresh_token: { type: 'boolean', errcode: 'M_INVALID_PARAM' },
  },
};

interface LoginBody {
  type: string;
  password?: string;
  device_id?: string | null;
  initial_device_display_name?: string | null;
  refresh_token?: boolean;
}

/** POST /refresh: the refresh token (required, a string). */
const REFRESH_BODY = {
  type: 'object',
  required: ['refresh_token'],
  properties: { refresh_token: { type: 'string', errcode: 'M_INVALID_PARAM' } },
};

/** Synapse's limits on what a client may send at login. */
const MAX_DEVICE_ID_LENGTH = 512;
export const MAX_DEVICE_DISPLAY_NAME_LENGTH = 100;

export function checkDeviceDisplayName(name: string | null | undefined): void {
  if (name && name.length > MAX_DEVICE_DISPLAY_NAME_LENGTH) {
    throw new MatrixError(400, 'M_TOO_LARGE', `Device display name is too long (max ${MAX_DEVICE_DISPLAY_NAME_LENGTH})`);
  }
}

export const loginFlowsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const { accounts, auth, devices, passwords, rateLimiter } = ctx.services;
  const passwordLogin = config.password_config.enabled && config.password_config.localdb_enabled;
  const flows = passwordLogin ? [{ type: 'm.login.password' }] : [];
  const wellKnown = config.serve_client_wellknown
    ? { ...config.extra_well_known_client_content, 'm.homeserver': { base_url: config.public_baseurl.replace(/\/+$/, '') } }
    : undefined;

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/login`, async () => ({ flows }));

    app.post(`${prefix}/login`, { schema: { body: LOGIN_BODY } }, async (req) => {
      const raw = jsonObjectBody(req);
      const body = raw as unknown as LoginBody;
      const refresh = body.refresh_token ?? false;

      rateLimiter.check(`login-address:${req.ip}`, config.rc_login.address);

      const type = body.type;
      if (type !== 'm.login.password') throw new MatrixError(400, 'M_UNKNOWN', `Unknown login type ${type}`);
      if (!passwordLogin) throw new MatrixError(400, 'M_UNKNOWN', 'Password login has been disabled.');
      const password = body.password;
      if (password === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', 'Bad parameter: password');
      const deviceId = body.device_id ?? undefined;
      rejectNul(deviceId, 'device_id');
      if (deviceId !== undefined && deviceId.length > MAX_DEVICE_ID_LENGTH) {
        throw new MatrixError(400, 'M_INVALID_PARAM', `device_id cannot be longer than ${MAX_DEVICE_ID_LENGTH} characters.`);
      }
      const displayName = body.initial_device_display_name ?? undefined;
      rejectNul(displayName, 'initial_device_display_name');
      checkDeviceDisplayName(displayName);

      const userId = accounts.userIdFromIdentifier(raw);
      rejectNul(userId, 'user');
      const failedKey = `login-failed:${userId}`;
      rateLimiter.check(failedKey, config.rc_login.failed_attempts, { update: false });

      const user = accounts.isMine(userId) ? await accounts.getUser(userId) : undefined;
      // Deactivation wipes the password, so a deactivated account can no
      // longer prove who is asking; it is then answered M_USER_DEACTIVATED
      // (the spec's code) rather than a bare M_FORBIDDEN.
      const accepted = user !== undefined && ((user.deactivated && user.password_hash === null) || (await passwords.verify(password, user.password_hash)));
      if (!user || !accepted) {
        try {
          rateLimiter.check(failedKey, config.rc_login.failed_attempts);
        } catch {
          // Over the limit already: the next attempt is refused before its password is checked.
        }
        throw forbidden('Invalid username or password');
      }

      rateLimiter.check(`login-account:${userId}`, config.rc_login.account);
      if (user.deactivated) throw new MatrixError(403, 'M_USER_DEACTIVATED', 'This account has been deactivated');
      if (user.locked) throw new MatrixError(401, 'M_USER_LOCKED', 'This account has been locked', { soft_logout: true });

      // The spec: the display name is ignored when the device already exists.
      const session = await devices.login({ userId, deviceId, displayName, refreshable: refresh });
      req.log.info({ user_id: userId, device_id: session.device_id }, 'logged in');
      return {
        user_id: userId,
        access_token: session.access_token,
        home_server: config.server_name,
        device_id: session.device_id,
        ...(session.refresh_token !== undefined ? { refresh_token: session.refresh_token, expires_in_ms: session.expires_in_ms } : {}),
        ...(wellKnown ? { well_known: wellKnown } : {}),
      };
    });

    app.post(`${prefix}/refresh`, { schema: { body: REFRESH_BODY } }, async (req) => {
      const token = (jsonObjectBody(req) as { refresh_token: string }).refresh_token;
      // The spec: the old refresh token stays valid until the new access or refresh token is used.
      return auth.refresh(token);
    });
  }
};

/**
 * The signed-in user's account, under r0 and v3:
 * - GET /account/whoami
 * - POST /account/password (UIA; `logout_devices` ends every other session)
 * - POST /account/deactivate (UIA; `erase` clears the profile too)
 */
import type { FastifyPluginAsync } from 'fastify';
import { checkPasswordPolicy } from '../../services/password-policy.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, pathOf, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** Synapse caps new passwords at 512 characters. */
const MAX_PASSWORD_LENGTH = 512;

/** The UIA `auth` dict, when given. */
const AUTH = { type: 'object' };

/** POST /account/password: `null` is "not given" for new_password, as Synapse. */
const PASSWORD_BODY = {
  type: 'object',
  properties: {
    new_password: {
      type: ['string', 'null'],
      errcode: 'M_INVALID_PARAM',
      errmsg: 'new_password must be a string',
      allOf: [{ maxLength: MAX_PASSWORD_LENGTH, errmsg: `new_password may not be longer than ${MAX_PASSWORD_LENGTH} characters` }],
    },
    logout_devices: { type: 'boolean', errmsg: 'logout_devices must be true or false' },
    auth: AUTH,
  },
};

interface PasswordBody extends Record<string, unknown> {
  new_password?: string | null;
  logout_devices?: boolean;
}

/** POST /account/deactivate. */
const DEACTIVATE_BODY = {
  type: 'object',
  properties: {
    erase: { type: 'boolean', errmsg: 'erase must be true or false' },
    id_server: { type: ['string', 'null'], errcode: 'M_INVALID_PARAM', errmsg: 'id_server must be a string' },
    auth: AUTH,
  },
};

interface DeactivateBody extends Record<string, unknown> {
  erase?: boolean;
  id_server?: string | null;
}

export const accountPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const { accounts } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.get(`${prefix}/account/whoami`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return {
        user_id: requester.userId,
        is_guest: requester.isGuest,
        ...(requester.deviceId !== null ? { device_id: requester.deviceId } : {}),
      };
    });

    app.post(`${prefix}/account/password`, { schema: { body: PASSWORD_BODY } }, async (req) => {
      // As Synapse, the body is checked before the access token.
      const body = jsonObjectBody(req) as PasswordBody;
      const newPassword = body.new_password ?? undefined;
      rejectNul(newPassword, 'new_password');
      if (newPassword) checkPasswordPolicy(config.password_config.policy, newPassword);
      const requester = await requireUser(ctx, req);
      const { logoutDevices } = await accounts.changePasswordAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, newPassword);
      req.log.info({ user_id: requester.userId, logout_devices: logoutDevices }, 'password changed');
      return {};
    });

    app.post(`${prefix}/account/deactivate`, { schema: { body: DEACTIVATE_BODY } }, async (req) => {
      const body = jsonObjectBody(req) as DeactivateBody;
      const erase = body.erase ?? false;
      rejectNul(body.id_server, 'id_server');
      const requester = await requireUser(ctx, req);
      await accounts.deactivateAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, { erase });
      req.log.info({ user_id: requester.userId, erase }, 'account deactivated');
      // Axon binds no third-party ids to identity servers, so it has nothing to unbind.
      return { id_server_unbind_result: 'no-support' };
    });
  }
};

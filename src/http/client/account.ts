/**
 * The signed-in user's account, under r0 and v3:
 * - GET /account/whoami
 * - POST /account/password (UIA; `logout_devices` ends every other session)
 * - POST /account/deactivate (UIA; `erase` clears the profile too)
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { checkPasswordPolicy } from '../../services/password-policy.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, optionalBool, optionalString, pathOf } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

/** Synapse caps new passwords at 512 characters. */
const MAX_PASSWORD_LENGTH = 512;

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

    app.post(`${prefix}/account/password`, async (req) => {
      const body = jsonObjectBody(req);
      const newPassword = optionalString(body, 'new_password');
      if (newPassword !== undefined && newPassword.length > MAX_PASSWORD_LENGTH) {
        throw new MatrixError(400, 'M_BAD_JSON', `new_password may not be longer than ${MAX_PASSWORD_LENGTH} characters`);
      }
      optionalBool(body, 'logout_devices');
      if (newPassword) checkPasswordPolicy(config.password_config.policy, newPassword);
      const requester = await requireUser(ctx, req);
      const { logoutDevices } = await accounts.changePasswordAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, newPassword);
      req.log.info({ user_id: requester.userId, logout_devices: logoutDevices }, 'password changed');
      return {};
    });

    app.post(`${prefix}/account/deactivate`, async (req) => {
      const body = jsonObjectBody(req);
      const erase = optionalBool(body, 'erase') ?? false;
      optionalString(body, 'id_server');
      const requester = await requireUser(ctx, req);
      await accounts.deactivateAuthenticated(requester, { uri: pathOf(req), method: req.method, body }, { erase });
      req.log.info({ user_id: requester.userId, erase }, 'account deactivated');
      // Axon binds no third-party ids to identity servers, so it has nothing to unbind.
      return { id_server_unbind_result: 'no-support' };
    });
  }
};

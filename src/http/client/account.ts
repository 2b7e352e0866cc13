/**
 * The signed-in user's account, under r0 and v3:
 * - GET /account/whoami
 * - POST /account/password (UIA; `logout_devices` ends every other session)
 * - POST /account/deactivate (UIA; `erase` clears the profile too)
 */
import type { FastifyPluginAsync } from 'fastify';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { checkPasswordPolicy } from '../../services/password-policy.js';
import { UiaRequired } from '../../services/uia.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, optionalBool, optionalString, reauthenticate } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

/** Synapse caps new passwords at 512 characters. */
const MAX_PASSWORD_LENGTH = 512;

export const accountPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { config } = ctx;
  const { accounts } = ctx.services;
  const canChangePassword = config.password_config.enabled && config.password_config.localdb_enabled;

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
      if (!canChangePassword) throw forbidden('Password change disabled');

      // The new password is not part of what UIA keeps of the request.
      const { new_password: _omit, ...uiaBody } = body;
      let sessionId: string;
      let params: Record<string, unknown>;
      try {
        const done = await reauthenticate(ctx, req, requester, uiaBody);
        sessionId = done.sessionId;
        // The latest request's parameters win; an empty one falls back to the first.
        const { auth: _a, ...rest } = uiaBody;
        params = Object.keys(rest).length > 0 ? rest : done.clientdict;
      } catch (err) {
        // Keep a password given before UIA finished, hashed, so the last request need not repeat it.
        if (err instanceof UiaRequired && newPassword) await accounts.keepPendingPassword(err.body.session, newPassword);
        throw err;
      }

      // Without a new password here, the one kept in the UIA session is used.
      const secret = newPassword ? { password: newPassword } : { uiaSession: sessionId };
      const logoutDevices = params['logout_devices'] !== false;
      await accounts.setPassword(requester.userId, secret, { logoutDevices, exceptTokenId: requester.tokenId, exceptDeviceId: requester.deviceId });
      req.log.info({ user_id: requester.userId, logout_devices: logoutDevices }, 'password changed');
      return {};
    });

    app.post(`${prefix}/account/deactivate`, async (req) => {
      const body = jsonObjectBody(req);
      const erase = optionalBool(body, 'erase') ?? false;
      optionalString(body, 'id_server');
      const requester = await requireUser(ctx, req);
      await reauthenticate(ctx, req, requester, body);
      // As Synapse: account data (push rules, ignored users, ...) goes with the account.
      await accounts.deactivateAccount(requester.userId, { erase, deleteAccountData: true });
      req.log.info({ user_id: requester.userId, erase }, 'account deactivated');
      // Axon binds no third-party ids to identity servers, so it has nothing to unbind.
      return { id_server_unbind_result: 'no-support' };
    });
  }
};

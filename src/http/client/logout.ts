/**
 * POST /logout and /logout/all, under r0 and v3. As in Synapse, logging out
 * removes the device itself along with its tokens, and an access token that
 * has merely expired may still log out. Both take effect for the very next
 * request (the token cache is cleared).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError, missingToken } from '../../matrix-error.js';
import type { SessionOwner } from '../../services/devices.js';
import { accessTokenOf, requireUser } from '../auth.js';
import type { AppContext, PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

/** The caller, accepting an expired access token (a soft-logged-out client may still log out). */
async function caller(ctx: AppContext, req: FastifyRequest): Promise<SessionOwner> {
  try {
    return await requireUser(ctx, req, { allowGuest: true });
  } catch (err) {
    if (!(err instanceof MatrixError) || err.extra['soft_logout'] !== true) throw err;
    const token = accessTokenOf(req);
    if (!token) throw missingToken();
    return ctx.services.auth.ownerOfToken(token);
  }
}

export const logoutPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { devices } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/logout`, async (req) => {
      const who = await caller(ctx, req);
      // A token without a device (an admin's puppet token): only the token goes.
      await devices.logout(who);
      req.log.info({ user_id: who.userId, device_id: who.deviceId }, 'logged out');
      return {};
    });

    app.post(`${prefix}/logout/all`, async (req) => {
      const who = await caller(ctx, req);
      await devices.logoutAll(who.userId);
      req.log.info({ user_id: who.userId }, 'logged out everywhere');
      return {};
    });
  }
};

/**
 * POST /logout and /logout/all, under r0 and v3. As in Synapse, logging out
 * removes the device itself along with its tokens, and an access token that
 * has merely expired may still log out. Both take effect for the very next
 * request (the token cache is cleared).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError, missingToken, unknownToken } from '../../matrix-error.js';
import { announceDeviceListChange } from '../../services/e2ee/device-lists.js';
import { tokenHash } from '../../services/tokens.js';
import { deleteAccessTokenById, findAccessToken } from '../../storage/tokens.js';
import { accessTokenOf, requireUser } from '../auth.js';
import type { AppContext, PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, removeDevices } from './session-helpers.js';

interface Caller {
  userId: string;
  deviceId: string | null;
  tokenId: number;
}

/** The caller, accepting an expired access token (a soft-logged-out client may still log out). */
async function caller(ctx: AppContext, req: FastifyRequest): Promise<Caller> {
  try {
    return await requireUser(ctx, req, { allowGuest: true });
  } catch (err) {
    if (!(err instanceof MatrixError) || err.extra['soft_logout'] !== true) throw err;
    const token = accessTokenOf(req);
    if (!token) throw missingToken();
    const owner = await findAccessToken(ctx.database.db, tokenHash(token));
    if (!owner || owner.deactivated) throw unknownToken();
    return { userId: owner.puppets_user_id ?? owner.user_id, deviceId: owner.device_id, tokenId: owner.token_id };
  }
}

export const logoutPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { auth } = ctx.services;

  for (const prefix of CLIENT_PREFIXES) {
    app.post(`${prefix}/logout`, async (req) => {
      const who = await caller(ctx, req);
      await ctx.database.db.transaction().execute(async (tx) => {
        if (who.deviceId === null) {
          // A token without a device (an admin's puppet token): only the token goes.
          const hash = await deleteAccessTokenById(tx, who.tokenId);
          if (hash) auth.forget([hash]);
        } else {
          await removeDevices(ctx, tx, who.userId, { deviceIds: [who.deviceId] });
        }
      });
      // Once more after commit, so no request racing the transaction re-cached the token.
      auth.forgetUser(who.userId);
      if (who.deviceId !== null) await announceDeviceListChange(ctx.database.db, ctx.services.notifier, [who.userId], req.log);
      req.log.info({ user_id: who.userId, device_id: who.deviceId }, 'logged out');
      return {};
    });

    app.post(`${prefix}/logout/all`, async (req) => {
      const who = await caller(ctx, req);
      await ctx.database.db.transaction().execute(async (tx) => {
        await removeDevices(ctx, tx, who.userId, { allExceptDevice: null });
      });
      auth.forgetUser(who.userId);
      await announceDeviceListChange(ctx.database.db, ctx.services.notifier, [who.userId], req.log);
      req.log.info({ user_id: who.userId }, 'logged out everywhere');
      return {};
    });
  }
};

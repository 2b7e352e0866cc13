/**
 * Typing notifications: PUT /rooms/{roomId}/typing/{userId} with
 * `{typing, timeout}`. Only for oneself (403) and in a joined room (403);
 * the timeout defaults to 30 s and is capped at 120 s, as in Synapse.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

export const typingPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  for (const prefix of CLIENT_PREFIXES) {
    app.put<{ Params: { roomId: string; userId: string } }>(`${prefix}/rooms/:roomId/typing/:userId`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req);
      if (body['typing'] === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing typing');
      if (typeof body['typing'] !== 'boolean') throw new MatrixError(400, 'M_BAD_JSON', 'typing must be true or false');
      const timeout = body['timeout'];
      if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0)) {
        throw new MatrixError(400, 'M_INVALID_PARAM', 'timeout must be a non-negative integer (milliseconds)');
      }
      await ctx.services.typing.setTyping(requester.userId, req.params.roomId, req.params.userId, body['typing'], timeout);
      return {};
    });
  }
};

/**
 * GET /notifications?from&limit&only: the events that notified the user,
 * newest first, with the actions that matched, whether the user has read
 * them, and `next_token` (a stream position) when more may follow.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { toClientEvent } from '../../services/rooms/client-event.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from './session-helpers.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

export const notificationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  for (const prefix of CLIENT_PREFIXES) {
    app.get<{ Querystring: Record<string, unknown> }>(`${prefix}/notifications`, async (req) => {
      const requester = await requireUser(ctx, req);
      const q = req.query ?? {};
      let from: number | undefined;
      if (q['from'] !== undefined && q['from'] !== '') {
        from = /^\d{1,15}$/.test(String(q['from'])) ? Number(q['from']) : NaN;
        if (!Number.isSafeInteger(from)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Query parameter "from" contains unrecognised token');
      }
      let limit = DEFAULT_LIMIT;
      if (q['limit'] !== undefined) {
        if (!/^\d{1,9}$/.test(String(q['limit']))) throw new MatrixError(400, 'M_INVALID_PARAM', 'limit must be a non-negative integer');
        limit = Math.min(Number(q['limit']), MAX_LIMIT);
      }
      const { notifications, nextToken } = await ctx.services.push.notifications(requester.userId, { from, limit, onlyHighlight: q['only'] === 'highlight' });
      const now = Date.now();
      return {
        notifications: notifications.map((n) => {
          const { room_id: _roomId, ...event } = toClientEvent(n.event, now);
          return { actions: n.actions, event, read: n.read, room_id: n.room_id, ts: n.ts };
        }),
        ...(nextToken !== undefined ? { next_token: nextToken } : {}),
      };
    });
  }
};

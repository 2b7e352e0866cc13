/**
 * GET /notifications?from&limit&only: the events that notified the user,
 * newest first, with the actions that matched, whether the user has read
 * them, and `next_token` (a stream position) when more may follow.
 */
import type { FastifyPluginAsync } from 'fastify';
import { toClientEvent } from '../../services/rooms/client-event.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

/** `from` a stream position (empty: the start), `limit` a non-negative integer, `only` (`highlight` is the one value read). */
const NOTIFICATIONS_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string', pattern: '^([0-9]{1,15})?$' },
    limit: { type: 'string', pattern: '^[0-9]{1,9}$' },
    only: { type: 'string' },
  },
};

export const notificationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  for (const prefix of CLIENT_PREFIXES) {
    app.get<{ Querystring: { from?: string; limit?: string; only?: string } }>(`${prefix}/notifications`, { schema: { querystring: NOTIFICATIONS_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const q = req.query;
      const from = q.from === undefined || q.from === '' ? undefined : Number(q.from);
      const limit = q.limit === undefined ? DEFAULT_LIMIT : Math.min(Number(q.limit), MAX_LIMIT);
      const { notifications, nextToken } = await ctx.services.push.notifications(requester.userId, { from, limit, onlyHighlight: q.only === 'highlight' });
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

/**
 * PUT/GET /_matrix/client/{r0,v3}/presence/{userId}/status.
 *
 * As Synapse:
 * - Only the user themself may set their presence (403 M_FORBIDDEN).
 *   The body is `presence` (online, unavailable, offline) and an optional
 *   string `status_msg`; anything else is 400. A set without `status_msg`
 *   clears the message.
 * - Reading another user's presence needs a joined room in common (403
 *   M_FORBIDDEN otherwise). A user with no presence yet is offline.
 * - With presence disabled (`presence.enabled: false`), PUT is accepted and
 *   ignored and GET answers `{"presence": "offline"}` for anyone; with
 *   `enabled: untracked`, PUT is ignored but reads work.
 * - PUT counts against `rc_presence.per_user` (0.1/s, burst 1 by default):
 *   over it is 429 M_LIMIT_EXCEEDED and the update is dropped.
 * - Guests may do neither (403 M_GUEST_ACCESS_FORBIDDEN).
 */
import type { FastifyPluginAsync } from 'fastify';
import { isValidUserId } from '../../core/auth/ids.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { PRESENCE_STATES, type PresenceState } from '../../services/presence.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** PUT presence: `presence` (required) and `status_msg` (null: none), nothing else. */
const PRESENCE_BODY = {
  type: 'object',
  required: ['presence'],
  additionalProperties: false,
  properties: {
    presence: { type: 'string', enum: [...PRESENCE_STATES], errcode: 'M_INVALID_PARAM' },
    status_msg: { type: ['string', 'null'], errcode: 'M_INVALID_PARAM' },
  },
};

function checkUserId(userId: string): void {
  if (!isValidUserId(userId) || Buffer.byteLength(userId) > 255) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid user id');
}

export const presencePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const rc = ctx.config.rc_presence.per_user;

  for (const prefix of CLIENT_PREFIXES) {
    const path = `${prefix}/presence/:userId/status`;

    app.get<{ Params: { userId: string } }>(path, async (req) => {
      const requester = await requireUser(ctx, req);
      const { userId } = req.params;
      checkUserId(userId);
      const presence = ctx.services.presence;
      if (!presence?.enabled) return { presence: 'offline' };
      if (!(await presence.isVisible(requester.userId, userId))) throw forbidden('You are not allowed to see their presence.');
      return presence.get(userId);
    });

    app.put<{ Params: { userId: string } }>(path, { schema: { body: PRESENCE_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const { userId } = req.params;
      checkUserId(userId);
      if (requester.userId !== userId) throw forbidden('Can only set your own presence state');
      ctx.services.rateLimiter.check(`presence:${requester.userId}`, rc, { user: requester.userId });
      const body = jsonObjectBody(req);
      const msg = (body['status_msg'] as string | null | undefined) ?? null;
      if (msg !== null) rejectNul(msg, 'status_msg');
      await ctx.services.presence?.set(userId, body['presence'] as PresenceState, msg);
      return {};
    });
  }
};

/**
 * Typing notifications: PUT /rooms/{roomId}/typing/{userId} with
 * `{typing, timeout}`. Only for oneself (403) and in a joined room (403);
 * the timeout defaults to 30 s and is capped at 120 s, as in Synapse.
 */
import type { FastifyPluginAsync } from 'fastify';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';

/** The spec's body: `typing` (required) and `timeout` in milliseconds. */
const TYPING_BODY = {
  type: 'object',
  required: ['typing'],
  properties: {
    typing: { type: 'boolean' },
    timeout: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, errcode: 'M_INVALID_PARAM' },
  },
};

interface TypingBody {
  typing: boolean;
  timeout?: number;
}

export const typingPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  for (const prefix of CLIENT_PREFIXES) {
    app.put<{ Params: { roomId: string; userId: string } }>(`${prefix}/rooms/:roomId/typing/:userId`, { schema: { body: TYPING_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req) as unknown as TypingBody;
      await ctx.services.typing.setTyping(requester.userId, req.params.roomId, req.params.userId, body.typing, body.timeout);
      return {};
    });
  }
};

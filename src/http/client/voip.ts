/**
 * GET /_matrix/client/{r0,v3}/voip/turnServer (and Synapse's legacy
 * api/v1 path): TURN credentials for the signed-in user. Guests may call it
 * unless `turn_allow_guests: false`, in which case they get 403
 * M_GUEST_ACCESS_FORBIDDEN as Synapse answers. When TURN is not configured
 * the answer is `{}`, which clients read as "no TURN server".
 */
import type { FastifyPluginAsync } from 'fastify';
import { turnCredentials } from '../../services/turn.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

const responseSchema = {
  200: {
    type: 'object',
    properties: {
      username: { type: 'string' },
      password: { type: 'string' },
      ttl: { type: 'integer' },
      uris: { type: 'array', items: { type: 'string' } },
    },
  },
} as const;

export const voipPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  // Synapse also serves this one under the old api/v1 prefix.
  for (const prefix of [...CLIENT_PREFIXES, '/_matrix/client/api/v1']) {
    app.get(`${prefix}/voip/turnServer`, { schema: { response: responseSchema } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: ctx.config.turn_allow_guests });
      return turnCredentials(ctx.config, requester.userId) ?? {};
    });
  }
};

/** POST /user/{userId}/openid/request_token (r0 and v3): an OpenID token for the requester (services/openid.ts). */
import type { FastifyPluginAsync } from 'fastify';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

export const openIdPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  for (const p of CLIENT_PREFIXES) {
    app.post<{ Params: { userId: string } }>(`${p}/user/:userId/openid/request_token`, async (req) => {
      const requester = await requireUser(ctx, req);
      jsonObjectBody(req, 'emptyIsObject');
      return ctx.services.openId.requestToken(requester.userId, req.params.userId);
    });
  }
};

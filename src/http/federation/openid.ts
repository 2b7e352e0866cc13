/**
 * GET /_matrix/federation/v1/openid/userinfo?access_token=: whose OpenID
 * token this is (`{sub}`). Third parties call it, so it takes no X-Matrix
 * signature; it is served on `federation` and `openid` listeners.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { QUERY_STRING, queryString } from '../query-schema.js';
import { raiseSchemaError } from '../request-schema.js';

const QUERY = { type: 'object', properties: { access_token: QUERY_STRING } };

export const federationOpenIdPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  app.get('/_matrix/federation/v1/openid/userinfo', { schema: { querystring: QUERY } }, async (req) => {
    raiseSchemaError(req);
    return ctx.services.openId.userInfo(queryString(req, 'access_token'));
  });
};

/** GET /_matrix/federation/v1/hierarchy/{roomId}: a space and its children for another server (services/federation/hierarchy.ts). */
import type { FastifyPluginAsync } from 'fastify';
import type { PluginOptions } from '../context.js';
import { QUERY_BOOLEAN, queryFlag } from '../query-schema.js';
import { requireOrigin } from './origin.js';

const QUERY = { type: 'object', properties: { suggested_only: QUERY_BOOLEAN } };

export const federationHierarchyPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  app.get<{ Params: { roomId: string } }>('/_matrix/federation/v1/hierarchy/:roomId', { schema: { querystring: QUERY } }, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return ctx.services.federationHierarchy.hierarchy(origin, req.params.roomId, queryFlag(req, 'suggested_only') === true);
  });
};

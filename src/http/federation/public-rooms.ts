/**
 * GET and POST /_matrix/federation/v1/publicRooms: our room directory for
 * other servers, when `allow_public_rooms_over_federation` is on (off by
 * default, as Synapse; then 403 M_FORBIDDEN). Signed requests only; the
 * POST body is the client API's (`public-rooms-request.ts`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { limitOf, PUBLIC_ROOMS_BODY, publicRoomsRequest } from '../public-rooms-request.js';
import { QUERY_BOOLEAN, QUERY_STRING, queryFlag, queryString } from '../query-schema.js';
import { requireOrigin } from './origin.js';

const QUERY = {
  type: 'object',
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,15}$' },
    since: QUERY_STRING,
    include_all_networks: QUERY_BOOLEAN,
    third_party_instance_id: QUERY_STRING,
  },
};

export const federationPublicRoomsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { directory } = ctx.services;
  const allowed = (origin: string) => {
    if (!ctx.config.allow_public_rooms_over_federation) throw new MatrixError(403, 'M_FORBIDDEN', `Federation denied with ${origin}.`);
  };

  app.get('/_matrix/federation/v1/publicRooms', { schema: { querystring: QUERY } }, async (req) => {
    allowed(await requireOrigin(ctx, req));
    const since = queryString(req, 'since');
    return directory.publicRooms(
      publicRoomsRequest({
        limit: limitOf(queryString(req, 'limit')),
        ...(since !== undefined && { since }),
        ...(queryFlag(req, 'include_all_networks') !== undefined && { include_all_networks: queryFlag(req, 'include_all_networks') }),
        ...(queryString(req, 'third_party_instance_id') !== undefined && { third_party_instance_id: queryString(req, 'third_party_instance_id') }),
      }),
    );
  });

  app.post('/_matrix/federation/v1/publicRooms', { schema: { body: PUBLIC_ROOMS_BODY } }, async (req) => {
    allowed(await requireOrigin(ctx, req));
    return directory.publicRooms(publicRoomsRequest(jsonObjectBody(req)));
  });
};

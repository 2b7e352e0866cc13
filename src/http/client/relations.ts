/**
 * Event relationships (v1): GET /rooms/{roomId}/relations/{eventId}
 * [/{relType}[/{eventType}]] and GET /rooms/{roomId}/threads.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { countOf, QUERY_COUNT, queryEnum, queryInteger, queryString } from './timeline.js';

const V1 = '/_matrix/client/v1';

const BOOLEAN = { type: 'string', enum: ['true', 'false'] };

/** GET /relations: tokens, `limit`, `dir` (b by default) and `recurse` (also under its MSC3981 name). */
const RELATIONS_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    limit: QUERY_COUNT,
    dir: { type: 'string', enum: ['b', 'f'] },
    recurse: BOOLEAN,
    'org.matrix.msc3981.recurse': BOOLEAN,
  },
};

interface RelationsQuery {
  from?: string;
  to?: string;
  limit?: string;
  dir?: 'b' | 'f';
  recurse?: 'true' | 'false';
  'org.matrix.msc3981.recurse'?: 'true' | 'false';
}

type RelationsRoute = { Params: { roomId: string; eventId: string; relType?: string; eventType?: string }; Querystring: RelationsQuery };

export const relationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { relationPages } = ctx.services;

  const relations = async (req: FastifyRequest<RelationsRoute>) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const q = req.query;
    const recurse = q.recurse ?? q['org.matrix.msc3981.recurse'];
    return relationPages.relations(requester.userId, req.params.roomId, req.params.eventId, {
      relType: req.params.relType,
      eventType: req.params.eventType,
      from: q.from || undefined,
      to: q.to || undefined,
      limit: countOf(q.limit),
      dir: q.dir ?? 'b',
      recurse: recurse === undefined ? undefined : recurse === 'true',
      deviceId: requester.deviceId,
    });
  };
  const opts = { schema: { querystring: RELATIONS_QUERY } };
  app.get(`${V1}/rooms/:roomId/relations/:eventId`, opts, relations);
  app.get(`${V1}/rooms/:roomId/relations/:eventId/:relType`, opts, relations);
  app.get(`${V1}/rooms/:roomId/relations/:eventId/:relType/:eventType`, opts, relations);

  app.get<{ Params: { roomId: string } }>(`${V1}/rooms/:roomId/threads`, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const limit = queryInteger(req, 'limit');
    if (limit !== undefined && limit < 1) throw new MatrixError(400, 'M_INVALID_PARAM', 'limit must be an integer greater than zero');
    return relationPages.threads(requester.userId, req.params.roomId, {
      include: queryEnum(req, 'include', ['all', 'participated'] as const, 'all') as 'all' | 'participated',
      from: queryString(req, 'from') || undefined,
      limit,
      deviceId: requester.deviceId,
    });
  });
};

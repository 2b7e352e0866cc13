/**
 * Event relationships (v1): GET /rooms/{roomId}/relations/{eventId}
 * [/{relType}[/{eventType}]] and GET /rooms/{roomId}/threads.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { queryEnum, queryInteger, queryString } from './timeline.js';

const V1 = '/_matrix/client/v1';

function queryBoolean(req: FastifyRequest, name: string): boolean | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new MatrixError(400, 'M_INVALID_PARAM', `Boolean query parameter ${name} must be one of ['true', 'false']`);
}

export const relationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { relationPages } = ctx.services;

  const relations = async (req: FastifyRequest<{ Params: { roomId: string; eventId: string; relType?: string; eventType?: string } }>) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const limit = queryInteger(req, 'limit');
    return relationPages.relations(requester.userId, req.params.roomId, req.params.eventId, {
      relType: req.params.relType,
      eventType: req.params.eventType,
      from: queryString(req, 'from') || undefined,
      to: queryString(req, 'to') || undefined,
      limit,
      dir: queryEnum(req, 'dir', ['b', 'f'] as const, 'b') as 'b' | 'f',
      recurse: queryBoolean(req, 'recurse') ?? queryBoolean(req, 'org.matrix.msc3981.recurse'),
      deviceId: requester.deviceId,
    });
  };
  app.get(`${V1}/rooms/:roomId/relations/:eventId`, relations);
  app.get(`${V1}/rooms/:roomId/relations/:eventId/:relType`, relations);
  app.get(`${V1}/rooms/:roomId/relations/:eventId/:relType/:eventType`, relations);

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

/**
 * /_synapse/admin/v1/federation/destinations: the federation sender's
 * destinations, with Synapse's shapes — the list (from, limit, order_by,
 * dir, a `destination` substring filter; `next_token` while more remain),
 * one destination's retry state, the rooms queued for it, and
 * reset_connection (clears a backoff and tries the destination now).
 * An unknown destination is 404 M_NOT_FOUND "Unknown destination".
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { DESTINATION_ORDER_BY, type DestinationOrderBy, type DestinationRow } from '../../services/federation/sender/federation-sender.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { QUERY_DIR, QUERY_INTEGER, QUERY_STRING, queryChoice, queryEnumSchema, queryNumber, queryString } from '../query-schema.js';

const PREFIX = '/_synapse/admin/v1/federation/destinations';

const LIST_QUERY = {
  type: 'object',
  properties: { from: QUERY_INTEGER, limit: QUERY_INTEGER, destination: QUERY_STRING, order_by: queryEnumSchema(DESTINATION_ORDER_BY), dir: QUERY_DIR },
};
const ROOMS_QUERY = { type: 'object', properties: { from: QUERY_INTEGER, limit: QUERY_INTEGER, dir: QUERY_DIR } };

const unknownDestination = () => new MatrixError(404, 'M_NOT_FOUND', 'Unknown destination');

/** from and limit as Synapse reads them (defaults 0 and 100). */
function page(req: FastifyRequest): { from: number; limit: number; dir: 'f' | 'b' } {
  return { from: queryNumber(req, 'from') ?? 0, limit: queryNumber(req, 'limit') ?? 100, dir: queryChoice<'f' | 'b'>(req, 'dir') ?? 'f' };
}

function withNextToken(body: Record<string, unknown>, from: number, limit: number, returned: number, total: number): Record<string, unknown> {
  if (from + limit < total) body['next_token'] = String(from + returned);
  return body;
}

export const adminFederationDestinationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { federationSender: sender } = ctx.services;

  app.get(PREFIX, { schema: { querystring: LIST_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const { from, limit, dir } = page(req);
    const filter = queryString(req, 'destination');
    const orderBy = queryChoice<DestinationOrderBy>(req, 'order_by') ?? 'destination';
    const { rows, total } = await sender.listDestinations({ from, limit, dir, orderBy, ...(filter ? { filter } : {}) });
    const destinations = rows.map((r: DestinationRow) => ({
      destination: r.destination,
      retry_last_ts: r.retry_last_ts ?? 0,
      retry_interval: r.retry_interval ?? 0,
      failure_ts: r.failure_ts,
      last_successful_stream_ordering: r.last_successful_stream_ordering,
    }));
    return withNextToken({ destinations, total }, from, limit, rows.length, total);
  });

  app.get<{ Params: { destination: string } }>(`${PREFIX}/:destination`, async (req) => {
    await requireAdmin(ctx, req);
    const r = await sender.getDestination(req.params.destination);
    if (!r) throw unknownDestination();
    return {
      destination: r.destination,
      retry_last_ts: r.retry_last_ts ?? 0,
      retry_interval: r.retry_interval ?? 0,
      failure_ts: r.failure_ts,
      last_successful_stream_ordering: r.last_successful_stream_ordering,
    };
  });

  app.get<{ Params: { destination: string } }>(`${PREFIX}/:destination/rooms`, { schema: { querystring: ROOMS_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const { from, limit, dir } = page(req);
    const res = await sender.destinationRooms({ destination: req.params.destination, from, limit, dir });
    if (!res) throw unknownDestination();
    return withNextToken({ rooms: res.rows, total: res.total }, from, limit, res.rows.length, res.total);
  });

  app.post<{ Params: { destination: string } }>(`${PREFIX}/:destination/reset_connection`, async (req) => {
    await requireAdmin(ctx, req);
    const result = await sender.resetConnection(req.params.destination);
    if (result === 'unknown') throw unknownDestination();
    if (result === 'not_backing_off') throw new MatrixError(400, 'M_UNKNOWN', 'The retry timing does not need to be reset for this destination.');
    return {};
  });
};

/**
 * Membership endpoints beside the ones in rooms.ts, under r0 and v3:
 * POST /join/{roomIdOrAlias}, POST /knock/{roomIdOrAlias} and
 * POST /rooms/{roomId}/forget.
 *
 * A join goes through services/federation/room-joins.ts: here when this
 * server is in the room, else through another server (`via`,
 * `server_name`, the alias's servers). Knocks on rooms this server does
 * not hold are answered 404 M_NOT_FOUND for now.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { JsonObject } from '../../core/pdu.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';
import { QUERY_STRING, queryStrings } from '../query-schema.js';

/** A membership change's optional `reason` (null is "not given", as Synapse). */
export const REASON = { type: ['string', 'null'] };

/** The body of join, leave and knock: an optional `reason`. */
export const REASON_BODY = { type: 'object', properties: { reason: REASON } };

/**
 * The `reason` of a body its route schema has checked, for the member
 * event's content; U+0000 is refused (the database could not hold it).
 */
export function memberReason(body: Record<string, unknown>): { reason?: string } {
  const r = body['reason'] as string | null | undefined;
  if (typeof r !== 'string') return {};
  rejectNul(r, 'reason');
  return { reason: r };
}

type Params = { Params: { roomIdOrAlias: string } };

/** `via` and the older `server_name`: the servers to join through. */
const JOIN_QUERY = { type: 'object', properties: { via: QUERY_STRING, server_name: QUERY_STRING } };

export const membershipPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const rooms = ctx.services.rooms;

  for (const p of CLIENT_PREFIXES) {
    app.post<Params>(`${p}/join/:roomIdOrAlias`, { schema: { body: REASON_BODY, querystring: JOIN_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const body = jsonObjectBody(req, 'allowEmpty');
      const servers = [...queryStrings(req, 'via'), ...queryStrings(req, 'server_name')];
      const { roomId } = await ctx.services.joins.join(requester, req.params.roomIdOrAlias, { servers, content: memberReason(body) });
      return { room_id: roomId };
    });

    app.post<Params>(`${p}/knock/:roomIdOrAlias`, { schema: { body: REASON_BODY, querystring: JOIN_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const servers = [...queryStrings(req, 'via'), ...queryStrings(req, 'server_name')];
      const { roomId } = await ctx.services.joins.knock(requester, req.params.roomIdOrAlias, { servers, content: memberReason(body) });
      return { room_id: roomId };
    });

    app.post(`${p}/rooms/:roomId/forget`, async (req: FastifyRequest<{ Params: { roomId: string } }>) => {
      const requester = await requireUser(ctx, req);
      await rooms.forget(requester.userId, req.params.roomId);
      return {};
    });
  }
};

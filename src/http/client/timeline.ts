/**
 * Reading rooms: /messages, /context, /event, /members, /joined_members
 * (r0 and v3) and /timestamp_to_event (v1).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { parseRoomEventFilterParam } from '../../services/rooms/event-filter.js';
import { MEMBERSHIPS, type Membership } from '../../services/rooms/timeline.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES } from '../request-toolkit.js';

type Query = Record<string, unknown>;

/** A query parameter's single value (the first, if repeated). */
export function queryString(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Query | undefined)?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return typeof one === 'string' ? one : undefined;
}

/** A non-negative integer query parameter (as Synapse's parse_integer). */
export function queryInteger(req: FastifyRequest, name: string, opts: { required?: boolean; allowNegative?: boolean } = {}): number | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) {
    if (opts.required) throw new MatrixError(400, 'M_MISSING_PARAM', `Missing required integer query parameter ${name}`);
    return undefined;
  }
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(Number(raw))) throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter ${name} must be an integer`);
  const n = Number(raw);
  if (n < 0 && !opts.allowNegative) throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter ${name} must be a positive integer`);
  return n;
}

/** One of the allowed values, or the default; anything else is 400 M_INVALID_PARAM. */
export function queryEnum<T extends string>(req: FastifyRequest, name: string, allowed: readonly T[], fallback?: T): T | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new MatrixError(400, 'M_INVALID_PARAM', `Query parameter ${name} must be one of [${allowed.join(', ')}]`);
  return raw as T;
}

/** A non-negative integer in a query string, as Synapse's parse_integer reads it (spaces around it allowed). */
export const QUERY_COUNT = { type: 'string', pattern: '^\\s*[0-9]{1,15}\\s*$' };

/** A `limit` the schema let through, as a number. */
export const countOf = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

/** GET /messages: `dir` (b or f; the spec requires it, Synapse reads a missing one as forwards), tokens, `limit`, a filter. */
const MESSAGES_QUERY = {
  type: 'object',
  properties: {
    dir: { type: 'string', enum: ['b', 'f'] },
    from: { type: 'string' },
    to: { type: 'string' },
    limit: QUERY_COUNT,
    filter: { type: 'string' },
  },
};

/** GET /context: `limit` and a filter. */
const CONTEXT_QUERY = { type: 'object', properties: { limit: QUERY_COUNT, filter: { type: 'string' } } };

interface MessagesQuery {
  dir?: 'b' | 'f';
  from?: string;
  to?: string;
  limit?: string;
  filter?: string;
}

export const timelinePlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { timeline } = ctx.services;

  for (const p of CLIENT_PREFIXES) {
    app.get<{ Params: { roomId: string }; Querystring: MessagesQuery }>(`${p}/rooms/:roomId/messages`, { schema: { querystring: MESSAGES_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const q = req.query;
      return timeline.messages(requester.userId, req.params.roomId, {
        dir: q.dir ?? 'f',
        from: q.from || undefined,
        to: q.to || undefined,
        limit: countOf(q.limit),
        filter: parseRoomEventFilterParam(q.filter),
        deviceId: requester.deviceId,
      });
    });

    type ContextRoute = { Params: { roomId: string; eventId: string }; Querystring: { limit?: string; filter?: string } };
    app.get<ContextRoute>(`${p}/rooms/:roomId/context/:eventId`, { schema: { querystring: CONTEXT_QUERY } }, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const limit = countOf(req.query.limit) ?? 10;
      const filter = parseRoomEventFilterParam(req.query.filter);
      return timeline.context(requester.userId, req.params.roomId, req.params.eventId, limit, filter, requester.deviceId);
    });

    app.get<{ Params: { roomId: string; eventId: string } }>(`${p}/rooms/:roomId/event/:eventId`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return timeline.event(requester.userId, req.params.roomId, req.params.eventId, requester.deviceId);
    });

    app.get<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/members`, async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      return timeline.members(requester.userId, req.params.roomId, {
        at: queryString(req, 'at') || undefined,
        membership: queryEnum<Membership>(req, 'membership', MEMBERSHIPS),
        notMembership: queryEnum<Membership>(req, 'not_membership', MEMBERSHIPS),
      });
    });

    app.get<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/joined_members`, async (req) => {
      const requester = await requireUser(ctx, req);
      return timeline.joinedMembers(requester.userId, req.params.roomId);
    });
  }

  app.get<{ Params: { roomId: string } }>('/_matrix/client/v1/rooms/:roomId/timestamp_to_event', async (req) => {
    const requester = await requireUser(ctx, req);
    const ts = queryInteger(req, 'ts', { required: true }) as number;
    const dir = queryEnum(req, 'dir', ['f', 'b'] as const, 'f') as 'f' | 'b';
    return timeline.timestampToEvent(requester.userId, req.params.roomId, ts, dir);
  });
};

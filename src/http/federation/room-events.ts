/**
 * The federation read endpoints other servers use to fetch events, state and
 * history (services/federation/served-events.ts): GET /event/{eventId},
 * /state/{roomId}, /state_ids/{roomId}, /event_auth/{roomId}/{eventId},
 * /backfill/{roomId}, /timestamp_to_event/{roomId} and POST
 * /get_missing_events/{roomId}, all under /_matrix/federation/v1 and signed.
 * Query parameters are read after the signature, with Synapse's wording
 * for their errors.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { invalidParam, missingParam } from '../../matrix-error.js';
import { DEFAULT_MISSING_EVENTS } from '../../services/federation/served-events.js';
import type { PluginOptions } from '../context.js';
import { jsonObjectBody } from '../json-body.js';
import { queryString, queryStrings } from '../query-schema.js';
import { requireOrigin } from './origin.js';

const V1 = '/_matrix/federation/v1';

/** Event ids in a body: at most this many per list. */
const MAX_BODY_EVENT_IDS = 1000;
const EVENT_ID_LIST = { type: 'array', maxItems: MAX_BODY_EVENT_IDS, items: { type: 'string' } };
/** Synapse reads the lists as empty when missing; the spec calls them required. */
const MISSING_EVENTS_BODY = {
  type: 'object',
  properties: {
    earliest_events: EVENT_ID_LIST,
    latest_events: EVENT_ID_LIST,
    limit: { type: 'integer' },
    min_depth: { type: 'integer' },
  },
};

/** A required string parameter, as Synapse's parse_string_from_args. */
function requiredString(req: FastifyRequest, name: string): string {
  const v = queryString(req, name);
  if (v === undefined) throw missingParam(`Missing string query parameter '${name}'`);
  return v;
}

/** A non-negative integer parameter, as Synapse's parse_integer_from_args (blanks and a sign allowed). */
function integerParam(req: FastifyRequest, name: string, required: boolean): number | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) {
    if (required) throw missingParam(`Missing required integer query parameter ${name}`);
    return undefined;
  }
  const n = Number(raw.trim());
  if (!/^\s*[+-]?[0-9]+\s*$/.test(raw) || !Number.isSafeInteger(n)) throw invalidParam(`Query parameter ${name} must be an integer`);
  if (n < 0) throw invalidParam(`Query parameter ${name} must be a positive integer.`);
  return n;
}

export const federationRoomEventsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const served = ctx.services.servedEvents;

  app.get<{ Params: { eventId: string } }>(`${V1}/event/:eventId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return served.event(origin, req.params.eventId);
  });

  app.get<{ Params: { roomId: string } }>(`${V1}/state/:roomId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return served.state(origin, req.params.roomId, requiredString(req, 'event_id'));
  });

  app.get<{ Params: { roomId: string } }>(`${V1}/state_ids/:roomId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return served.stateIds(origin, req.params.roomId, requiredString(req, 'event_id'));
  });

  app.get<{ Params: { roomId: string; eventId: string } }>(`${V1}/event_auth/:roomId/:eventId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    return served.eventAuth(origin, req.params.roomId, req.params.eventId);
  });

  app.get<{ Params: { roomId: string } }>(`${V1}/backfill/:roomId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    const from = queryStrings(req, 'v');
    if (from.length === 0) throw missingParam("Missing string query parameter 'v'");
    const limit = integerParam(req, 'limit', false);
    // As Synapse: no limit, or 0, is refused with this wording.
    if (!limit) throw missingParam('Did not include limit param');
    return served.backfill(origin, req.params.roomId, from, limit);
  });

  app.post<{ Params: { roomId: string } }>(`${V1}/get_missing_events/:roomId`, { schema: { body: MISSING_EVENTS_BODY } }, async (req) => {
    const origin = await requireOrigin(ctx, req);
    const body = jsonObjectBody(req);
    return served.missingEvents(origin, req.params.roomId, {
      earliestEvents: (body['earliest_events'] as string[] | undefined) ?? [],
      latestEvents: (body['latest_events'] as string[] | undefined) ?? [],
      limit: (body['limit'] as number | undefined) ?? DEFAULT_MISSING_EVENTS,
      minDepth: (body['min_depth'] as number | undefined) ?? 0,
    });
  });

  app.get<{ Params: { roomId: string } }>(`${V1}/timestamp_to_event/:roomId`, async (req) => {
    const origin = await requireOrigin(ctx, req);
    const ts = integerParam(req, 'ts', true) as number;
    const dir = requiredString(req, 'dir');
    if (dir !== 'f' && dir !== 'b') throw invalidParam("Query parameter 'dir' must be one of ['f', 'b']");
    return served.timestampToEvent(origin, req.params.roomId, ts, dir);
  });
};

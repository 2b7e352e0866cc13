/**
 * Room aliases and the published room directory, under r0 and v3:
 * GET/PUT/DELETE /directory/room/{roomAlias}, GET /rooms/{roomId}/aliases,
 * GET/PUT /directory/list/room/{roomId}, GET/POST /publicRooms.
 *
 * Only this server's aliases and directory: a remote alias resolves to 404
 * and a remote `server` for /publicRooms is 404 until Axon federates.
 * `allow_public_rooms_without_auth` lets GET /publicRooms go without an
 * access token (an invalid one is then ignored too, as Synapse does).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import type { PublicRoomsRequest } from '../../services/rooms/directory.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from './session-helpers.js';
import { jsonObjectBody } from '../json-body.js';

const SERVER_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$/;

/** A non-negative integer `limit`; undefined when absent. */
function parseLimit(v: unknown, errcode: 'M_INVALID_PARAM' | 'M_BAD_JSON'): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new MatrixError(400, errcode, 'limit must be a non-negative integer');
  return n;
}

export const directoryPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { aliases, directory } = ctx.services;

  /** Remote directories need federation. */
  const checkServer = (server: string | undefined): void => {
    if (server === undefined || server === '' || server === ctx.config.server_name) return;
    if (!SERVER_NAME.test(server)) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid server name: ${server}`);
    throw new MatrixError(404, 'M_NOT_FOUND', `Cannot fetch the room directory of ${server}: Axon does not federate yet`);
  };

  for (const p of CLIENT_PREFIXES) {
    app.get<{ Params: { roomAlias: string } }>(`${p}/directory/room/:roomAlias`, async (req) => aliases.resolve(req.params.roomAlias));

    app.put<{ Params: { roomAlias: string } }>(`${p}/directory/room/:roomAlias`, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const roomId = body['room_id'];
      if (roomId === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing room_id');
      if (typeof roomId !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'room_id must be a string');
      const servers = body['servers'];
      if (servers !== undefined && servers !== null && (!Array.isArray(servers) || !servers.every((s) => typeof s === 'string'))) {
        throw new MatrixError(400, 'M_BAD_JSON', 'servers must be a list of server names');
      }
      rejectNul(roomId, 'room_id');
      await aliases.create(requester, req.params.roomAlias, roomId);
      req.log.info({ alias: req.params.roomAlias, room_id: roomId }, 'room alias created');
      return {};
    });

    app.delete<{ Params: { roomAlias: string } }>(`${p}/directory/room/:roomAlias`, async (req) => {
      const requester = await requireUser(ctx, req);
      const roomId = await aliases.delete(requester, req.params.roomAlias);
      req.log.info({ alias: req.params.roomAlias, room_id: roomId }, 'room alias deleted');
      return {};
    });

    app.get<{ Params: { roomId: string } }>(`${p}/rooms/:roomId/aliases`, async (req) => {
      const requester = await requireUser(ctx, req);
      return { aliases: await aliases.listForRoom(requester, req.params.roomId) };
    });

    app.get<{ Params: { roomId: string } }>(`${p}/directory/list/room/:roomId`, async (req) => ({ visibility: await directory.visibility(req.params.roomId) }));

    app.put<{ Params: { roomId: string } }>(`${p}/directory/list/room/:roomId`, async (req) => {
      const requester = await requireUser(ctx, req);
      const body = jsonObjectBody(req);
      const visibility = body['visibility'] ?? 'public';
      if (visibility !== 'public' && visibility !== 'private') throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid visibility setting');
      await directory.setVisibility(requester, req.params.roomId, visibility);
      req.log.info({ room_id: req.params.roomId, visibility }, 'room directory visibility changed');
      return {};
    });

    app.get(`${p}/publicRooms`, async (req: FastifyRequest<{ Querystring: Record<string, unknown> }>) => {
      const q = req.query ?? {};
      const server = typeof q['server'] === 'string' ? q['server'] : undefined;
      try {
        await requireUser(ctx, req, { allowGuest: true });
      } catch (err) {
        // Synapse: without a (valid) token only the local list, and only when configured.
        if (!ctx.config.allow_public_rooms_without_auth || !(err instanceof MatrixError) || err.statusCode !== 401 || server) throw err;
      }
      checkServer(server);
      const since = q['since'];
      return directory.publicRooms({ limit: parseLimit(q['limit'], 'M_INVALID_PARAM'), since: typeof since === 'string' && since !== '' ? since : undefined });
    });

    app.post(`${p}/publicRooms`, async (req: FastifyRequest<{ Querystring: Record<string, unknown> }>) => {
      await requireUser(ctx, req, { allowGuest: true });
      const server = typeof req.query?.['server'] === 'string' ? (req.query['server'] as string) : undefined;
      const body = jsonObjectBody(req);
      const r: PublicRoomsRequest = { limit: parseLimit(body['limit'], 'M_BAD_JSON') };
      const since = body['since'];
      if (since !== undefined && since !== null) {
        if (typeof since !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'since must be a string');
        if (since !== '') r.since = since;
      }
      const filter = body['filter'];
      if (filter !== undefined && filter !== null) {
        if (typeof filter !== 'object' || Array.isArray(filter)) throw new MatrixError(400, 'M_BAD_JSON', 'filter must be an object');
        const f = filter as Record<string, unknown>;
        const term = f['generic_search_term'];
        if (term !== undefined && term !== null) {
          if (typeof term !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'generic_search_term must be a string');
          rejectNul(term, 'generic_search_term');
          if (term.trim() !== '') r.search = term;
        }
        const types = f['room_types'];
        if (types !== undefined && types !== null) {
          if (!Array.isArray(types) || !types.every((t) => t === null || typeof t === 'string')) throw new MatrixError(400, 'M_BAD_JSON', 'room_types must be a list of strings and nulls');
          rejectNul(types, 'room_types');
          r.roomTypes = types as (string | null)[];
        }
      }
      const all = body['include_all_networks'];
      if (all !== undefined && typeof all !== 'boolean') throw new MatrixError(400, 'M_BAD_JSON', 'include_all_networks must be a boolean');
      const instance = body['third_party_instance_id'];
      if (instance !== undefined && instance !== null) {
        if (typeof instance !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'third_party_instance_id must be a string');
        if (all === true) throw new MatrixError(400, 'M_INVALID_PARAM', "Can't use include_all_networks with an explicit network");
        r.thirdPartyInstanceId = instance;
      }
      checkServer(server);
      return directory.publicRooms(r);
    });
  }
};

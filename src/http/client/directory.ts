/**
 * Room aliases and the published room directory, under r0 and v3:
 * GET/PUT/DELETE /directory/room/{roomAlias}, GET /rooms/{roomId}/aliases,
 * GET/PUT /directory/list/room/{roomId}, GET/POST /publicRooms.
 *
 * A remote alias is asked of its server (AliasService.resolve); a remote
 * `server` for /publicRooms is asked for its list over federation.
 * `allow_public_rooms_without_auth` lets GET /publicRooms go without an
 * access token (an invalid one is then ignored too, as Synapse does).
 */
import type { FastifyPluginAsync } from 'fastify';
import { MatrixError } from '../../matrix-error.js';
import { requireUser } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { CLIENT_PREFIXES, rejectNul } from '../request-toolkit.js';
import { jsonObjectBody } from '../json-body.js';
import { limitOf, PUBLIC_ROOMS_BODY, publicRoomsRequest } from '../public-rooms-request.js';
import { raiseSchemaError } from '../request-schema.js';

const SERVER_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$/;

/** PUT /directory/room/{roomAlias}: the room (required) and, unused until federation, `servers`. */
const ALIAS_BODY = {
  type: 'object',
  required: ['room_id'],
  properties: { room_id: { type: 'string' }, servers: { type: ['array', 'null'], items: { type: 'string' } } },
};

/** PUT /directory/list/room/{roomId}: `visibility`, public when absent (or null). */
const VISIBILITY_BODY = {
  type: 'object',
  properties: { visibility: { enum: ['public', 'private', null], errcode: 'M_INVALID_PARAM' } },
};

/** GET /publicRooms: `limit` a non-negative integer, `since` a token, `server` a server name. */
const PUBLIC_ROOMS_QUERY = {
  type: 'object',
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,15}$' },
    since: { type: 'string' },
    server: { type: 'string' },
  },
};

export const directoryPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const { aliases, directory } = ctx.services;

  /** Another server's name, when the list asked for is not ours. */
  const remoteServer = (server: string | undefined): string | undefined => {
    if (server === undefined || server === '' || server === ctx.config.server_name) return undefined;
    if (!SERVER_NAME.test(server)) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid server name: ${server}`);
    return server;
  };

  for (const p of CLIENT_PREFIXES) {
    app.get<{ Params: { roomAlias: string } }>(`${p}/directory/room/:roomAlias`, async (req) => aliases.resolve(req.params.roomAlias));

    app.put<{ Params: { roomAlias: string } }>(`${p}/directory/room/:roomAlias`, { schema: { body: ALIAS_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const roomId = jsonObjectBody(req)['room_id'] as string;
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

    app.put<{ Params: { roomId: string } }>(`${p}/directory/list/room/:roomId`, { schema: { body: VISIBILITY_BODY } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const visibility = (jsonObjectBody(req)['visibility'] as 'public' | 'private' | null | undefined) ?? 'public';
      await directory.setVisibility(requester, req.params.roomId, visibility);
      req.log.info({ room_id: req.params.roomId, visibility }, 'room directory visibility changed');
      return {};
    });

    app.get<{ Querystring: { limit?: string; since?: string; server?: string } }>(`${p}/publicRooms`, { schema: { querystring: PUBLIC_ROOMS_QUERY } }, async (req) => {
      const { server, since, limit } = req.query;
      try {
        await requireUser(ctx, req, { allowGuest: true });
      } catch (err) {
        // Synapse: without a (valid) token only the local list, and only when configured.
        if (!ctx.config.allow_public_rooms_without_auth || !(err instanceof MatrixError) || err.statusCode !== 401 || server) throw err;
        raiseSchemaError(req);
      }
      const r = { limit: limitOf(limit), since: since !== undefined && since !== '' ? since : undefined };
      const other = remoteServer(server);
      return other === undefined ? directory.publicRooms(r) : directory.remotePublicRooms(other, r);
    });

    app.post<{ Querystring: { server?: unknown } }>(`${p}/publicRooms`, { schema: { body: PUBLIC_ROOMS_BODY } }, async (req) => {
      await requireUser(ctx, req, { allowGuest: true });
      const server = typeof req.query?.server === 'string' ? req.query.server : undefined;
      const r = publicRoomsRequest(jsonObjectBody(req));
      const other = remoteServer(server);
      return other === undefined ? directory.publicRooms(r) : directory.remotePublicRooms(other, r);
    });
  }
};

/**
 * The media admin API, with Synapse's shapes: a user's media (list,
 * delete), a room's media (list, quarantine), one item (query, delete,
 * quarantine, protect), bulk deletion by age and size, and the purge of
 * the remote media cache.
 *
 * Quarantined media stays on disk but is not served; protected media is
 * never quarantined. The handlers parse and shape; MediaAdminService reads
 * and writes (each write one transaction; deletions remove the rows, then
 * the files).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { invalidParam, MatrixError } from '../../matrix-error.js';
import { isValidMediaId, isValidServerName } from '../../services/media/layout.js';
import { USER_MEDIA_ORDER_BY, type UserMediaOrderBy, type UserMediaPage } from '../../services/media/media-admin.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { localUserId, parseUserId, userNotFound } from './params.js';
import { QUERY_BOOLEAN, QUERY_DIR, QUERY_INTEGER, queryChoice, queryEnumSchema, queryFlag, queryNumber } from '../query-schema.js';

type UserParams = { Params: { userId: string } };
type RoomParams = { Params: { roomId: string } };
type MediaParams = { Params: { serverName: string; mediaId: string } };

const unknownMedia = () => new MatrixError(404, 'M_NOT_FOUND', 'Unknown media');
const notLocalMedia = () => new MatrixError(400, 'M_UNKNOWN', 'Can only delete local media');

/** Before this, a "millisecond" timestamp is surely in seconds (Synapse's check). */
const YEAR_1970_MS_LIMIT = 30_000_000_000;

/** A room id from the path, with Synapse's RoomID parsing errors. */
function parseRoomId(s: string): string {
  if (!s.startsWith('!')) throw invalidParam("Expected RoomID string to start with '!'");
  if (!s.slice(1).includes(':')) throw invalidParam("Expected RoomID of the form '!localname:domain'");
  return s;
}

/** A user's media, listed or deleted: a page of it, in an order. */
const USER_MEDIA_QUERY = {
  type: 'object',
  properties: { from: QUERY_INTEGER, limit: QUERY_INTEGER, order_by: queryEnumSchema(USER_MEDIA_ORDER_BY), dir: QUERY_DIR },
};

/** Bulk deletion: media last used before `before_ts` (required), larger than `size_gt`, profile pictures kept or not. */
const DELETE_OLD_QUERY = {
  type: 'object',
  required: ['before_ts'],
  properties: { before_ts: QUERY_INTEGER, size_gt: QUERY_INTEGER, keep_profiles: QUERY_BOOLEAN },
};

/** The remote cache's purge: media last used before `before_ts` (required). */
const PURGE_CACHE_QUERY = { type: 'object', required: ['before_ts'], properties: { before_ts: QUERY_INTEGER } };

/** `before_ts` (required by the route schema): a millisecond timestamp, not one that reads as 1970. */
function beforeTsParam(req: FastifyRequest): number {
  const ts = queryNumber(req, 'before_ts')!;
  if (ts < YEAR_1970_MS_LIMIT) {
    throw invalidParam('Query parameter before_ts you provided is from the year 1970. Double check that you are providing a timestamp in milliseconds.');
  }
  return ts;
}

/** from / limit / order_by / dir, as Synapse reads them for a user's media. */
function userMediaPage(req: FastifyRequest): UserMediaPage {
  const from = queryNumber(req, 'from') ?? 0;
  const limit = queryNumber(req, 'limit') ?? 100;
  const q = (req.query ?? {}) as Record<string, unknown>;
  // Neither given: newest first, as Synapse keeps for older clients.
  if (!('order_by' in q) && !('dir' in q)) return { from, limit, orderBy: 'created_ts', dir: 'b' };
  const orderBy = queryChoice<UserMediaOrderBy>(req, 'order_by') ?? 'created_ts';
  const dir = queryChoice<'f' | 'b'>(req, 'dir') ?? 'f';
  return { from, limit, orderBy, dir };
}

export const adminMediaPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const serverName = ctx.config.server_name;
  const isMine = (server: string) => server === serverName;
  const { mediaAdmin: media } = ctx.services;
  const localUser = (raw: string) => localUserId(ctx, raw, 'Can only look up local users');

  // ---- a user's media ----
  app.get<UserParams>('/_synapse/admin/v1/users/:userId/media', { schema: { querystring: USER_MEDIA_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUser(req.params.userId);
    const listed = await media.userMedia(userId, () => userMediaPage(req));
    if (!listed) throw userNotFound();
    const { media: items, total, page } = listed;
    const res: Record<string, unknown> = { media: items, total };
    if (page.from + page.limit < total) res['next_token'] = page.from + items.length;
    return res;
  });

  app.delete<UserParams>('/_synapse/admin/v1/users/:userId/media', { schema: { querystring: USER_MEDIA_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const userId = localUser(req.params.userId);
    const deleted = await media.deleteUserMedia(userId, () => userMediaPage(req));
    if (!deleted) throw userNotFound();
    return { deleted_media: deleted, total: deleted.length };
  });

  app.post<UserParams>('/_synapse/admin/v1/user/:userId/media/quarantine', async (req) => {
    const requester = await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    return { num_quarantined: await media.quarantineUser(userId, requester.userId) };
  });

  // ---- a room's media ----
  app.get<RoomParams>('/_synapse/admin/v1/room/:roomId/media', async (req) => {
    await requireAdmin(ctx, req);
    const roomId = parseRoomId(req.params.roomId);
    const found = await media.roomMedia(roomId);
    if (!found) throw new MatrixError(404, 'M_NOT_FOUND', 'Room not found');
    return found;
  });

  const quarantineRoom = async (req: FastifyRequest<RoomParams>) => {
    const requester = await requireAdmin(ctx, req);
    const roomId = parseRoomId(req.params.roomId);
    return { num_quarantined: await media.quarantineRoom(roomId, requester.userId) };
  };
  app.post<RoomParams>('/_synapse/admin/v1/room/:roomId/media/quarantine', quarantineRoom);
  app.post<RoomParams>('/_synapse/admin/v1/quarantine_media/:roomId', quarantineRoom);

  // ---- one item ----
  app.get<MediaParams>('/_synapse/admin/v1/media/:serverName/:mediaId', async (req) => {
    await requireAdmin(ctx, req);
    const { serverName: origin, mediaId } = req.params;
    if (!isValidServerName(origin) || !isValidMediaId(mediaId)) throw unknownMedia();
    const found = await media.info(origin, mediaId);
    if (!found) throw unknownMedia();
    if ('local' in found) {
      const m = found.local;
      return {
        media_info: {
          media_origin: origin,
          user_id: m.user_id,
          media_id: m.media_id,
          media_type: m.media_type,
          media_length: m.media_length,
          upload_name: m.upload_name,
          created_ts: m.created_ts,
          filesystem_id: m.media_id,
          url_cache: null,
          last_access_ts: m.last_access_ts,
          quarantined_by: m.quarantined_by,
          authenticated: m.authenticated,
          safe_from_quarantine: m.safe_from_quarantine,
          sha256: m.sha256,
        },
      };
    }
    const r = found.remote;
    return {
      media_info: {
        media_origin: r.media_origin,
        user_id: null,
        media_id: r.media_id,
        media_type: r.media_type,
        media_length: r.media_length,
        upload_name: r.upload_name,
        created_ts: r.created_ts,
        filesystem_id: r.filesystem_id,
        url_cache: null,
        last_access_ts: r.last_access_ts,
        quarantined_by: r.quarantined_by,
        authenticated: r.authenticated,
        safe_from_quarantine: null,
        sha256: r.sha256,
      },
    };
  });

  app.delete<MediaParams>('/_synapse/admin/v1/media/:serverName/:mediaId', async (req) => {
    await requireAdmin(ctx, req);
    const { serverName: origin, mediaId } = req.params;
    if (!isMine(origin)) throw notLocalMedia();
    const deleted = await media.deleteOne(mediaId);
    if (!deleted) throw unknownMedia();
    return { deleted_media: deleted, total: deleted.length };
  });

  const setQuarantine = (quarantine: boolean) => async (req: FastifyRequest<MediaParams>) => {
    const requester = await requireAdmin(ctx, req);
    const { serverName: origin, mediaId } = req.params;
    // Unknown media: nothing to mark, and Synapse answers {} all the same.
    if (!isValidServerName(origin) || !isValidMediaId(mediaId)) return {};
    await media.setQuarantine(origin, mediaId, quarantine ? requester.userId : null);
    return {};
  };
  app.post<MediaParams>('/_synapse/admin/v1/media/quarantine/:serverName/:mediaId', setQuarantine(true));
  app.post<MediaParams>('/_synapse/admin/v1/media/unquarantine/:serverName/:mediaId', setQuarantine(false));

  const setProtected = (safe: boolean) => async (req: FastifyRequest<{ Params: { mediaId: string } }>) => {
    await requireAdmin(ctx, req);
    const { mediaId } = req.params;
    if (!isValidMediaId(mediaId)) return {};
    await media.setProtected(mediaId, safe);
    return {};
  };
  app.post<{ Params: { mediaId: string } }>('/_synapse/admin/v1/media/protect/:mediaId', setProtected(true));
  app.post<{ Params: { mediaId: string } }>('/_synapse/admin/v1/media/unprotect/:mediaId', setProtected(false));

  // ---- bulk deletion by age and size ----
  const deleteOld = async (req: FastifyRequest<{ Params: { serverName?: string } }>) => {
    await requireAdmin(ctx, req);
    if (req.params.serverName !== undefined && !isMine(req.params.serverName)) throw notLocalMedia();
    const beforeTs = beforeTsParam(req);
    const sizeGt = queryNumber(req, 'size_gt') ?? 0;
    const keepProfiles = queryFlag(req, 'keep_profiles') ?? true;
    const deleted = await media.deleteOld({ beforeTs, sizeGt, keepProfiles });
    return { deleted_media: deleted, total: deleted.length };
  };
  app.post('/_synapse/admin/v1/media/delete', { schema: { querystring: DELETE_OLD_QUERY } }, deleteOld);
  app.post<{ Params: { serverName: string } }>('/_synapse/admin/v1/media/:serverName/delete', { schema: { querystring: DELETE_OLD_QUERY } }, deleteOld);

  // ---- remote media cache ----
  app.post('/_synapse/admin/v1/purge_media_cache', { schema: { querystring: PURGE_CACHE_QUERY } }, async (req) => {
    await requireAdmin(ctx, req);
    const beforeTs = beforeTsParam(req);
    return { deleted: await media.purgeRemoteCache(beforeTs) };
  });
};

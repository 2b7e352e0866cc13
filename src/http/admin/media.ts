/**
 * The media admin API, with Synapse's shapes: a user's media (list,
 * delete), a room's media (list, quarantine), one item (query, delete,
 * quarantine, protect), bulk deletion by age and size, and the purge of
 * the remote media cache.
 *
 * Quarantined media stays on disk but is not served; protected media is
 * never quarantined. Deletions remove the rows in one transaction, then the
 * files (MediaAdminService).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { invalidParam, MatrixError, missingParam } from '../../matrix-error.js';
import { isValidMediaId, isValidServerName } from '../../services/media/layout.js';
import {
  getLocalMediaInfo,
  getRemoteMediaInfo,
  listUserMedia,
  mxcUrisInRoom,
  oldLocalMediaIds,
  quarantineMediaList,
  quarantineUserMedia,
  setLocalQuarantine,
  setMediaProtected,
  setRemoteQuarantine,
  USER_MEDIA_ORDER_BY,
  type UserMediaOrderBy,
  type UserMediaPage,
} from '../../storage/media-admin.js';
import { getRoom } from '../../storage/rooms.js';
import { getUser } from '../../storage/users.js';
import { requireAdmin } from '../auth.js';
import type { PluginOptions } from '../context.js';
import { localUserId, parseUserId, queryBoolean, queryEnum, queryInteger, queryString, userNotFound } from './params.js';

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

/** `before_ts`: a required millisecond timestamp, not one that reads as 1970. */
function beforeTsParam(req: FastifyRequest): number {
  if (queryString(req, 'before_ts') === undefined) throw missingParam("Missing integer query parameter 'before_ts'");
  const ts = queryInteger(req, 'before_ts')!;
  if (ts < YEAR_1970_MS_LIMIT) {
    throw invalidParam(
      'Query parameter before_ts you provided is from the year 1970. Double check that you are providing a timestamp in milliseconds.',
    );
  }
  return ts;
}

/** from / limit / order_by / dir, as Synapse reads them for a user's media. */
function userMediaPage(req: FastifyRequest): UserMediaPage {
  const from = queryInteger(req, 'from') ?? 0;
  const limit = queryInteger(req, 'limit') ?? 100;
  const q = (req.query ?? {}) as Record<string, unknown>;
  // Neither given: newest first, as Synapse keeps for older clients.
  if (!('order_by' in q) && !('dir' in q)) return { from, limit, orderBy: 'created_ts', dir: 'b' };
  const orderBy: UserMediaOrderBy = queryEnum(req, 'order_by', USER_MEDIA_ORDER_BY) ?? 'created_ts';
  const dir = queryEnum(req, 'dir', ['f', 'b'] as const) ?? 'f';
  return { from, limit, orderBy, dir };
}

/** mxc://server/id split into its parts; undefined for anything else. */
function parseMxc(uri: string): { server: string; mediaId: string } | undefined {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(uri);
  if (!m || !isValidServerName(m[1]!) || !isValidMediaId(m[2]!)) return undefined;
  return { server: m[1]!, mediaId: m[2]! };
}

export const adminMediaPlugin: FastifyPluginAsync<PluginOptions> = async (app, { ctx }) => {
  const db = () => ctx.database.db;
  const serverName = ctx.config.server_name;
  const isMine = (server: string) => server === serverName;
  const { mediaAdmin: media } = ctx.services;

  async function existingLocalUser(raw: string): Promise<string> {
    const userId = localUserId(ctx, raw, 'Can only look up local users');
    if (!(await getUser(db(), userId))) throw userNotFound();
    return userId;
  }

  /** The room's media, as mxc URIs split into this server's and others'. */
  async function roomMedia(roomId: string): Promise<{ local: string[]; remote: string[]; localIds: string[]; remoteIds: { origin: string; mediaId: string }[] }> {
    const out = { local: [] as string[], remote: [] as string[], localIds: [] as string[], remoteIds: [] as { origin: string; mediaId: string }[] };
    for (const uri of await mxcUrisInRoom(db(), roomId)) {
      const p = parseMxc(uri);
      if (!p) continue;
      if (isMine(p.server)) {
        out.local.push(uri);
        out.localIds.push(p.mediaId);
      } else {
        out.remote.push(uri);
        out.remoteIds.push({ origin: p.server, mediaId: p.mediaId });
      }
    }
    return out;
  }

  // ---- a user's media ----
  app.get<UserParams>('/_synapse/admin/v1/users/:userId/media', async (req) => {
    await requireAdmin(ctx, req);
    const userId = await existingLocalUser(req.params.userId);
    const page = userMediaPage(req);
    const { media: items, total } = await listUserMedia(db(), userId, page);
    const res: Record<string, unknown> = { media: items, total };
    if (page.from + page.limit < total) res['next_token'] = page.from + items.length;
    return res;
  });

  app.delete<UserParams>('/_synapse/admin/v1/users/:userId/media', async (req) => {
    await requireAdmin(ctx, req);
    const userId = await existingLocalUser(req.params.userId);
    const page = userMediaPage(req);
    const ids = (await listUserMedia(db(), userId, page)).media.map((m) => m.media_id);
    const deleted = await media.deleteLocal(ids);
    return { deleted_media: deleted, total: deleted.length };
  });

  app.post<UserParams>('/_synapse/admin/v1/user/:userId/media/quarantine', async (req) => {
    const requester = await requireAdmin(ctx, req);
    const userId = parseUserId(req.params.userId);
    const n = await db()
      .transaction()
      .execute((tx) => quarantineUserMedia(tx, userId, requester.userId));
    req.log.info({ count: n }, 'quarantined user media');
    return { num_quarantined: n };
  });

  // ---- a room's media ----
  app.get<RoomParams>('/_synapse/admin/v1/room/:roomId/media', async (req) => {
    await requireAdmin(ctx, req);
    const roomId = parseRoomId(req.params.roomId);
    if (!(await getRoom(db(), roomId))) throw new MatrixError(404, 'M_NOT_FOUND', 'Room not found');
    const { local, remote } = await roomMedia(roomId);
    return { local, remote };
  });

  const quarantineRoom = async (req: FastifyRequest<RoomParams>) => {
    const requester = await requireAdmin(ctx, req);
    const roomId = parseRoomId(req.params.roomId);
    const { localIds, remoteIds } = await roomMedia(roomId);
    const n = await db()
      .transaction()
      .execute((tx) => quarantineMediaList(tx, localIds, remoteIds, requester.userId));
    req.log.info({ count: n }, 'quarantined room media');
    return { num_quarantined: n };
  };
  app.post<RoomParams>('/_synapse/admin/v1/room/:roomId/media/quarantine', quarantineRoom);
  app.post<RoomParams>('/_synapse/admin/v1/quarantine_media/:roomId', quarantineRoom);

  // ---- one item ----
  app.get<MediaParams>('/_synapse/admin/v1/media/:serverName/:mediaId', async (req) => {
    await requireAdmin(ctx, req);
    const { serverName: origin, mediaId } = req.params;
    if (!isValidServerName(origin) || !isValidMediaId(mediaId)) throw unknownMedia();
    if (isMine(origin)) {
      const m = await getLocalMediaInfo(db(), mediaId);
      if (!m) throw unknownMedia();
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
    const r = await getRemoteMediaInfo(db(), origin, mediaId);
    if (!r) throw unknownMedia();
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
    if (!isValidMediaId(mediaId) || !(await getLocalMediaInfo(db(), mediaId))) throw unknownMedia();
    const deleted = await media.deleteLocal([mediaId]);
    return { deleted_media: deleted, total: deleted.length };
  });

  const setQuarantine = (quarantine: boolean) => async (req: FastifyRequest<MediaParams>) => {
    const requester = await requireAdmin(ctx, req);
    const { serverName: origin, mediaId } = req.params;
    // Unknown media: nothing to mark, and Synapse answers {} all the same.
    if (!isValidServerName(origin) || !isValidMediaId(mediaId)) return {};
    const by = quarantine ? requester.userId : null;
    await db()
      .transaction()
      .execute((tx) => (isMine(origin) ? setLocalQuarantine(tx, mediaId, by) : setRemoteQuarantine(tx, origin, mediaId, by)));
    req.log.info({ origin, mediaId, quarantine }, 'media quarantine changed');
    return {};
  };
  app.post<MediaParams>('/_synapse/admin/v1/media/quarantine/:serverName/:mediaId', setQuarantine(true));
  app.post<MediaParams>('/_synapse/admin/v1/media/unquarantine/:serverName/:mediaId', setQuarantine(false));

  const setProtected = (safe: boolean) => async (req: FastifyRequest<{ Params: { mediaId: string } }>) => {
    await requireAdmin(ctx, req);
    const { mediaId } = req.params;
    if (!isValidMediaId(mediaId)) return {};
    await db()
      .transaction()
      .execute((tx) => setMediaProtected(tx, mediaId, safe));
    return {};
  };
  app.post<{ Params: { mediaId: string } }>('/_synapse/admin/v1/media/protect/:mediaId', setProtected(true));
  app.post<{ Params: { mediaId: string } }>('/_synapse/admin/v1/media/unprotect/:mediaId', setProtected(false));

  // ---- bulk deletion by age and size ----
  const deleteOld = async (req: FastifyRequest<{ Params: { serverName?: string } }>) => {
    await requireAdmin(ctx, req);
    if (req.params.serverName !== undefined && !isMine(req.params.serverName)) throw notLocalMedia();
    const beforeTs = beforeTsParam(req);
    const sizeGt = queryInteger(req, 'size_gt') ?? 0;
    const keepProfiles = queryBoolean(req, 'keep_profiles') ?? true;
    const ids = await oldLocalMediaIds(db(), { beforeTs, sizeGt, keepProfiles, serverName });
    const deleted = await media.deleteLocal(ids);
    return { deleted_media: deleted, total: deleted.length };
  };
  app.post('/_synapse/admin/v1/media/delete', deleteOld);
  app.post<{ Params: { serverName: string } }>('/_synapse/admin/v1/media/:serverName/delete', deleteOld);

  // ---- remote media cache ----
  app.post('/_synapse/admin/v1/purge_media_cache', async (req) => {
    await requireAdmin(ctx, req);
    const beforeTs = beforeTsParam(req);
    return { deleted: await media.purgeRemoteCache(beforeTs) };
  });
};

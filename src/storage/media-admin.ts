/**
 * Queries behind the media admin API: a user's uploads (paginated, in
 * Synapse's orders), one item's full row, deletion by id / age and size,
 * quarantine and protection flags, the media referenced by a room's events,
 * and the remote media cache's old entries.
 *
 * Only rows change here; the files they describe are removed by the caller
 * once the transaction has committed (a file left behind is harmless, a row
 * pointing at a missing file is not).
 */
import { type Selectable, sql } from 'kysely';
import { getLocalMedia } from './media.js';
import type { LocalMediaTable, RemoteMediaTable, Schema } from './schema.js';
import type { Db } from './db.js';

export const USER_MEDIA_ORDER_BY = ['media_id', 'upload_name', 'created_ts', 'last_access_ts', 'media_length', 'media_type', 'quarantined_by', 'safe_from_quarantine'] as const;
export type UserMediaOrderBy = (typeof USER_MEDIA_ORDER_BY)[number];

/** One entry of GET /_synapse/admin/v1/users/<user_id>/media. */
export interface UserMediaEntry {
  media_id: string;
  media_type: string | null;
  media_length: number;
  upload_name: string | null;
  created_ts: number;
  last_access_ts: number | null;
  quarantined_by: string | null;
  safe_from_quarantine: boolean;
}

export interface UserMediaPage {
  from: number;
  limit: number;
  orderBy: UserMediaOrderBy;
  dir: 'f' | 'b';
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * A user's completed uploads (reservations still waiting for their content
 * have no length and are left out), ordered by the given column and then by
 * media id, as Synapse orders them.
 */
export async function listUserMedia(db: Db, userId: string, page: UserMediaPage): Promise<{ media: UserMediaEntry[]; total: number }> {
  const base = db.selectFrom('local_media').where('user_id', '=', userId).where('media_length', 'is not', null);
  const countRow = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
  const direction = page.dir === 'b' ? sql`DESC` : sql`ASC`;
  const rows = await base
    .select(['media_id', 'media_type', 'media_length', 'upload_name', 'created_ts', 'last_access_ts', 'quarantined_by', 'safe_from_quarantine'])
    .orderBy(sql`${sql.ref(page.orderBy)} ${direction}`)
    .orderBy('media_id', 'asc')
    .limit(page.limit)
    .offset(page.from)
    .execute();
  return {
    total: num(countRow.total),
    media: rows.map((r) => ({
      media_id: r.media_id,
      media_type: r.media_type,
      media_length: num(r.media_length),
      upload_name: r.upload_name,
      created_ts: num(r.created_ts),
      last_access_ts: numOrNull(r.last_access_ts),
      quarantined_by: r.quarantined_by,
      safe_from_quarantine: r.safe_from_quarantine,
    })),
  };
}

/** A local media row as the admin API reports it (everything but the reservation's expiry). */
export type LocalMediaInfo = Omit<Selectable<LocalMediaTable>, 'unused_expires_at'>;

export async function getLocalMediaInfo(db: Db, mediaId: string): Promise<LocalMediaInfo | undefined> {
  const m = await getLocalMedia(db, mediaId);
  if (!m) return undefined;
  const { unused_expires_at: _, ...info } = m;
  return info;
}

/** A cached remote media row. */
export type RemoteMediaInfo = Selectable<RemoteMediaTable>;

export async function getRemoteMediaInfo(db: Db, origin: string, mediaId: string): Promise<RemoteMediaInfo | undefined> {
  const r = await db.selectFrom('remote_media').selectAll().where('media_origin', '=', origin).where('media_id', '=', mediaId).executeTakeFirst();
  if (!r) return undefined;
  return { ...r, media_length: numOrNull(r.media_length), created_ts: num(r.created_ts), last_access_ts: numOrNull(r.last_access_ts) };
}

export interface OldMediaFilter {
  /** Last used (last access, or upload when never accessed) strictly before this, in ms. */
  beforeTs: number;
  /** Only media larger than this many bytes. */
  sizeGt: number;
  /** Keep media used as a user's avatar, a room member's avatar or a room avatar. */
  keepProfiles: boolean;
  /** This server's name, to recognise its own mxc URIs. */
  serverName: string;
}

/**
 * Local media that POST /_synapse/admin/v1/media/delete may remove: old and
 * large enough, and neither quarantined (kept as evidence) nor protected,
 * as Synapse's defaults for that API.
 */
export async function oldLocalMediaIds(db: Db, f: OldMediaFilter): Promise<string[]> {
  const prefix = `mxc://${f.serverName}/`;
  const keep = f.keepProfiles
    ? sql`AND m.media_id NOT IN (
        SELECT substr(u.url, ${prefix.length + 1}) FROM (
          SELECT avatar_url AS url FROM profiles WHERE avatar_url IS NOT NULL
          UNION
          SELECT e.json->'content'->>'avatar_url' FROM current_state cs JOIN events e ON e.event_id = cs.event_id
            WHERE cs.type = 'm.room.member'
          UNION
          SELECT e.json->'content'->>'url' FROM current_state cs JOIN events e ON e.event_id = cs.event_id
            WHERE cs.type = 'm.room.avatar' AND cs.state_key = ''
        ) u WHERE u.url IS NOT NULL AND starts_with(u.url, ${prefix}))`
    : sql``;
  const rows = await sql<{ media_id: string }>`
    SELECT m.media_id FROM local_media m
    WHERE COALESCE(m.last_access_ts, m.created_ts) < ${f.beforeTs}
      AND m.media_length IS NOT NULL AND m.media_length > ${f.sizeGt}
      AND m.quarantined_by IS NULL AND NOT m.safe_from_quarantine
      ${keep}
    ORDER BY m.media_id`.execute(db);
  return rows.rows.map((r) => r.media_id);
}

/**
 * Quarantines (by = an admin's user id) or releases (by = null) one local
 * item. Protected media is never quarantined. When quarantining, other
 * copies of the same content (same sha256, local or cached remote) are
 * quarantined too, as Synapse does since it tracks hashes.
 */
export async function setLocalQuarantine(tx: Db, mediaId: string, by: string | null): Promise<number> {
  if (by === null) {
    const r = await tx.updateTable('local_media').set({ quarantined_by: null }).where('media_id', '=', mediaId).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
  const rows = await tx
    .updateTable('local_media')
    .set({ quarantined_by: by })
    .where('media_id', '=', mediaId)
    .where('safe_from_quarantine', '=', false)
    .returning('sha256')
    .execute();
  const hash = rows[0]?.sha256;
  if (hash) await quarantineByHash(tx, hash, by);
  return rows.length;
}

export async function setRemoteQuarantine(tx: Db, origin: string, mediaId: string, by: string | null): Promise<number> {
  const rows = await tx.updateTable('remote_media').set({ quarantined_by: by }).where('media_origin', '=', origin).where('media_id', '=', mediaId).returning('sha256').execute();
  const hash = rows[0]?.sha256;
  if (by !== null && hash) await quarantineByHash(tx, hash, by);
  return rows.length;
}

async function quarantineByHash(tx: Db, sha256: string, by: string): Promise<void> {
  await tx
    .updateTable('local_media')
    .set({ quarantined_by: by })
    .where('sha256', '=', sha256)
    .where('quarantined_by', 'is', null)
    .where('safe_from_quarantine', '=', false)
    .execute();
  await tx.updateTable('remote_media').set({ quarantined_by: by }).where('sha256', '=', sha256).where('quarantined_by', 'is', null).execute();
}

/** Quarantines every unprotected upload of a user; answers how many items that covers. */
export async function quarantineUserMedia(tx: Db, userId: string, by: string): Promise<number> {
  const r = await tx.updateTable('local_media').set({ quarantined_by: by }).where('user_id', '=', userId).where('safe_from_quarantine', '=', false).executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Quarantines the given local ids (unprotected ones) and cached remote items; answers the number of rows marked. */
export async function quarantineMediaList(tx: Db, local: readonly string[], remote: readonly { origin: string; mediaId: string }[], by: string): Promise<number> {
  let n = 0;
  if (local.length > 0) {
    const r = await tx
      .updateTable('local_media')
      .set({ quarantined_by: by })
      .where('media_id', 'in', [...local])
      .where('safe_from_quarantine', '=', false)
      .executeTakeFirst();
    n += Number(r.numUpdatedRows);
  }
  for (const { origin, mediaId } of remote) {
    const r = await tx.updateTable('remote_media').set({ quarantined_by: by }).where('media_origin', '=', origin).where('media_id', '=', mediaId).executeTakeFirst();
    n += Number(r.numUpdatedRows);
  }
  return n;
}

/** Marks local media safe from quarantine (or not); answers whether it exists. */
export async function setMediaProtected(tx: Db, mediaId: string, safe: boolean): Promise<boolean> {
  const r = await tx.updateTable('local_media').set({ safe_from_quarantine: safe }).where('media_id', '=', mediaId).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/**
 * Every mxc URI the room's accepted events carry in `content.url` or
 * `content.info.thumbnail_url` (messages, stickers, room avatars...), as
 * Synapse lists room media. Redacted events have lost their content, and
 * encrypted ones never show it, so neither contributes.
 */
export async function mxcUrisInRoom(db: Db, roomId: string): Promise<string[]> {
  const rows = await sql<{ url: string }>`
    SELECT DISTINCT u.url FROM (
      SELECT e.json->'content'->>'url' AS url, e.stream_ordering FROM events e
        WHERE e.room_id = ${roomId} AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed
          AND jsonb_typeof(e.json->'content'->'url') = 'string'
      UNION ALL
      SELECT e.json->'content'->'info'->>'thumbnail_url', e.stream_ordering FROM events e
        WHERE e.room_id = ${roomId} AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed
          AND jsonb_typeof(e.json->'content'->'info'->'thumbnail_url') = 'string'
    ) u
    WHERE starts_with(u.url, 'mxc://')
    ORDER BY u.url`.execute(db);
  return rows.rows.map((r) => r.url);
}

export interface CachedRemoteMedia {
  media_origin: string;
  media_id: string;
  filesystem_id: string;
}

/**
 * Deletes the rows of cached remote media last used before `beforeTs` (a
 * never-accessed copy counts from when it was fetched); quarantined copies
 * stay, as evidence. Answers what was removed, for the files to follow.
 */
export async function deleteOldRemoteMedia(tx: Db, beforeTs: number): Promise<CachedRemoteMedia[]> {
  const rows = await sql<CachedRemoteMedia>`
    DELETE FROM remote_media
    WHERE COALESCE(last_access_ts, created_ts) < ${beforeTs} AND quarantined_by IS NULL
    RETURNING media_origin, media_id, filesystem_id`.execute(tx);
  return rows.rows;
}

/**
 * Queries on the media repository's metadata (migration 0011): local media
 * rows (uploads and `/create` reservations) and their thumbnails. The files
 * live under `media_store_path` (see services/media/layout.ts); nothing here
 * touches them. The admin API's bulk queries are in media-admin.ts.
 */
import type { Selectable } from 'kysely';
import type { LocalMediaTable, Schema } from './schema.js';
import type { Db } from './db.js';

/** A local media row (`media_length` is null while a `/create` reservation waits for its content). */
export type LocalMedia = Selectable<LocalMediaTable>;

export interface ThumbnailInfo {
  width: number;
  height: number;
  type: string;
  method: string;
  length: number;
}

const LOCAL_COLUMNS = [
  'media_id',
  'media_type',
  'media_length',
  'upload_name',
  'user_id',
  'created_ts',
  'last_access_ts',
  'unused_expires_at',
  'quarantined_by',
  'safe_from_quarantine',
  'authenticated',
  'sha256',
] as const;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toLocal(r: LocalMedia): LocalMedia {
  return {
    ...r,
    media_length: num(r.media_length),
    created_ts: Number(r.created_ts),
    last_access_ts: num(r.last_access_ts),
    unused_expires_at: num(r.unused_expires_at),
  };
}

export interface NewLocalMedia {
  media_id: string;
  media_type: string;
  media_length: number;
  upload_name: string | null;
  user_id: string;
  created_ts: number;
  authenticated: boolean;
  sha256: string;
}

/** Records an uploaded file (its bytes are already in place). */
export async function insertLocalMedia(db: Db, m: NewLocalMedia): Promise<void> {
  await db
    .insertInto('local_media')
    .values({ ...m, last_access_ts: m.created_ts, unused_expires_at: null, quarantined_by: null })
    .execute();
}

/** Records a `/create` reservation: no content yet, usable until `unused_expires_at`. */
export async function insertReservation(db: Db, r: { media_id: string; user_id: string; created_ts: number; unused_expires_at: number; authenticated: boolean }): Promise<void> {
  await db
    .insertInto('local_media')
    .values({
      ...r,
      media_type: null,
      media_length: null,
      upload_name: null,
      last_access_ts: null,
      quarantined_by: null,
      sha256: null,
    })
    .execute();
}

export async function getLocalMedia(db: Db, mediaId: string, opts: { forUpdate?: boolean } = {}): Promise<LocalMedia | undefined> {
  let q = db.selectFrom('local_media').select(LOCAL_COLUMNS).where('media_id', '=', mediaId);
  if (opts.forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row ? toLocal(row) : undefined;
}

/** Fills a reservation with its content; false when it was filled already (or is gone). */
export async function completeReservation(
  db: Db,
  mediaId: string,
  c: { media_type: string; media_length: number; upload_name: string | null; sha256: string; now: number },
): Promise<boolean> {
  const res = await db
    .updateTable('local_media')
    .set({
      media_type: c.media_type,
      media_length: c.media_length,
      upload_name: c.upload_name,
      sha256: c.sha256,
      last_access_ts: c.now,
      unused_expires_at: null,
    })
    .where('media_id', '=', mediaId)
    .where('media_length', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** A user's reservations still waiting for content and not yet expired: how many, and when the first one lapses. */
export async function pendingReservations(db: Db, userId: string, now: number): Promise<{ count: number; firstExpiry: number | null }> {
  const row = await db
    .selectFrom('local_media')
    .select((eb) => [eb.fn.countAll<number | string>().as('n'), eb.fn.min('unused_expires_at').as('first')])
    .where('user_id', '=', userId)
    .where('media_length', 'is', null)
    .where('unused_expires_at', '>', now)
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), firstExpiry: num(row.first as number | string | null) };
}

/** Drops a user's lapsed reservations (they never had a file); returns how many. */
export async function deleteExpiredReservations(db: Db, userId: string, now: number): Promise<number> {
  const res = await db.deleteFrom('local_media').where('user_id', '=', userId).where('media_length', 'is', null).where('unused_expires_at', '<=', now).executeTakeFirst();
  return Number(res.numDeletedRows);
}

export async function touchLocalMedia(db: Db, mediaId: string, ts: number): Promise<void> {
  await db.updateTable('local_media').set({ last_access_ts: ts }).where('media_id', '=', mediaId).execute();
}

/** Deletes a media row and (by cascade) its thumbnail rows; false when there was none. */
export async function deleteLocalMediaRow(db: Db, mediaId: string): Promise<boolean> {
  const res = await db.deleteFrom('local_media').where('media_id', '=', mediaId).executeTakeFirst();
  return Number(res.numDeletedRows) === 1;
}

/** Quarantines (`by` a user id) or releases (`null`) one local media item; false when it does not exist. */
export async function setLocalQuarantined(db: Db, mediaId: string, by: string | null): Promise<boolean> {
  const res = await db.updateTable('local_media').set({ quarantined_by: by }).where('media_id', '=', mediaId).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function getLocalThumbnails(db: Db, mediaId: string): Promise<ThumbnailInfo[]> {
  const rows = await db.selectFrom('local_media_thumbnails').select(['width', 'height', 'type', 'method', 'length']).where('media_id', '=', mediaId).execute();
  return rows.map((r) => ({ ...r, width: Number(r.width), height: Number(r.height), length: Number(r.length) }));
}

/** Records a generated thumbnail (its file is already in place); a row already there is kept. */
export async function insertLocalThumbnail(db: Db, mediaId: string, t: ThumbnailInfo): Promise<void> {
  await db
    .insertInto('local_media_thumbnails')
    .values({ media_id: mediaId, ...t })
    .onConflict((oc) => oc.columns(['media_id', 'width', 'height', 'type', 'method']).doNothing())
    .execute();
}

export async function deleteLocalThumbnailRows(db: Db, mediaId: string): Promise<void> {
  await db.deleteFrom('local_media_thumbnails').where('media_id', '=', mediaId).execute();
}

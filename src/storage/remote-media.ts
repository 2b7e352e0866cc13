/**
 * The remote media cache's rows (migration 0011): other servers' media
 * fetched over federation (`remote_media`, the file stored under
 * `remote_content/<origin>/<filesystem_id>`) and the thumbnails made of
 * them here (`remote_media_thumbnails`). The admin API's queries on the
 * same tables are in media-admin.ts.
 */
import type { Selectable } from 'kysely';
import type { Db } from './db.js';
import type { ThumbnailInfo } from './media.js';
import type { RemoteMediaTable } from './schema.js';

export type RemoteMedia = Selectable<RemoteMediaTable>;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

export async function getRemoteMedia(db: Db, origin: string, mediaId: string): Promise<RemoteMedia | undefined> {
  const r = await db.selectFrom('remote_media').selectAll().where('media_origin', '=', origin).where('media_id', '=', mediaId).executeTakeFirst();
  if (!r) return undefined;
  return { ...r, media_length: num(r.media_length), created_ts: Number(r.created_ts), last_access_ts: num(r.last_access_ts) };
}

export interface NewRemoteMedia {
  media_origin: string;
  media_id: string;
  filesystem_id: string;
  media_type: string;
  media_length: number;
  upload_name: string | null;
  created_ts: number;
  authenticated: boolean;
  sha256: string;
}

/**
 * Records a fetched file (already in place). A row already there (its file
 * had gone missing) takes the new file's details; its quarantine stays.
 */
export async function putRemoteMedia(db: Db, m: NewRemoteMedia): Promise<void> {
  const { media_origin: _o, media_id: _i, ...fresh } = m;
  await db
    .insertInto('remote_media')
    .values({ ...m, last_access_ts: m.created_ts, quarantined_by: null })
    .onConflict((oc) => oc.columns(['media_origin', 'media_id']).doUpdateSet({ ...fresh, last_access_ts: m.created_ts }))
    .execute();
}

export async function touchRemoteMedia(db: Db, origin: string, mediaId: string, ts: number): Promise<void> {
  await db.updateTable('remote_media').set({ last_access_ts: ts }).where('media_origin', '=', origin).where('media_id', '=', mediaId).execute();
}

export async function getRemoteThumbnails(db: Db, origin: string, mediaId: string): Promise<ThumbnailInfo[]> {
  const rows = await db
    .selectFrom('remote_media_thumbnails')
    .select(['width', 'height', 'type', 'method', 'length'])
    .where('media_origin', '=', origin)
    .where('media_id', '=', mediaId)
    .execute();
  return rows.map((r) => ({ ...r, width: Number(r.width), height: Number(r.height), length: Number(r.length) }));
}

/** Records a thumbnail made of cached remote media (its file is in place); a row already there is kept. */
export async function insertRemoteThumbnail(db: Db, origin: string, mediaId: string, t: ThumbnailInfo): Promise<void> {
  await db
    .insertInto('remote_media_thumbnails')
    .values({ media_origin: origin, media_id: mediaId, ...t })
    .onConflict((oc) => oc.columns(['media_origin', 'media_id', 'width', 'height', 'type', 'method']).doNothing())
    .execute();
}

/**
 * 0011: the media repository's metadata (the files live under
 * `media_store_path`, in Synapse's directory layout).
 *
 * - `local_media`: media uploaded here. `media_length` is null while an
 *   asynchronous upload (POST /create) waits for its PUT, and
 *   `unused_expires_at` says when such a reservation lapses.
 *   `quarantined_by` (a user id) hides it; `safe_from_quarantine` protects
 *   it from bulk quarantines. `authenticated`: uploaded once authenticated
 *   media was on, so only the authenticated endpoints serve it.
 * - `local_media_thumbnails`: thumbnails made of local media, one per
 *   (size, type, method).
 * - `remote_media` / `remote_media_thumbnails`: copies of other servers'
 *   media (filled by federation), with the id the file is stored under.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE local_media (
    media_id text PRIMARY KEY,
    media_type text,
    media_length bigint,
    upload_name text,
    user_id text,
    created_ts bigint NOT NULL,
    last_access_ts bigint,
    unused_expires_at bigint,
    quarantined_by text,
    safe_from_quarantine boolean NOT NULL DEFAULT false,
    authenticated boolean NOT NULL DEFAULT false,
    sha256 text)`.execute(db);
  await sql`CREATE INDEX local_media_user ON local_media (user_id, created_ts)`.execute(db);
  await sql`CREATE TABLE local_media_thumbnails (
    media_id text NOT NULL REFERENCES local_media (media_id) ON DELETE CASCADE,
    width integer NOT NULL, height integer NOT NULL, type text NOT NULL, method text NOT NULL,
    length bigint NOT NULL,
    PRIMARY KEY (media_id, width, height, type, method))`.execute(db);
  await sql`CREATE TABLE remote_media (
    media_origin text NOT NULL,
    media_id text NOT NULL,
    filesystem_id text NOT NULL,
    media_type text,
    media_length bigint,
    upload_name text,
    created_ts bigint NOT NULL,
    last_access_ts bigint,
    quarantined_by text,
    authenticated boolean NOT NULL DEFAULT false,
    sha256 text,
    PRIMARY KEY (media_origin, media_id))`.execute(db);
  await sql`CREATE INDEX remote_media_last_access ON remote_media (last_access_ts)`.execute(db);
  await sql`CREATE TABLE remote_media_thumbnails (
    media_origin text NOT NULL, media_id text NOT NULL,
    width integer NOT NULL, height integer NOT NULL, type text NOT NULL, method text NOT NULL,
    length bigint NOT NULL,
    PRIMARY KEY (media_origin, media_id, width, height, type, method),
    FOREIGN KEY (media_origin, media_id) REFERENCES remote_media (media_origin, media_id) ON DELETE CASCADE)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['remote_media_thumbnails', 'remote_media', 'local_media_thumbnails', 'local_media']) {
    await sql`DROP TABLE ${sql.table(t)}`.execute(db);
  }
}

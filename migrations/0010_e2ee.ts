/**
 * 0010: end-to-end encryption plumbing. The server never sees plaintext;
 * these tables carry keys, to-device messages and key backups as the
 * client-server API describes them.
 *
 * - `e2e_device_keys`: each device's signed identity keys (`device_keys` of
 *   /keys/upload), as uploaded, signatures by the device itself included.
 * - `e2e_one_time_keys`: unclaimed one-time keys; a claim deletes the row it
 *   hands out (`DELETE … RETURNING`), so each key goes to one claimer.
 * - `e2e_fallback_keys`: at most one per device and algorithm; `used` once
 *   handed out, reported in `device_unused_fallback_key_types` until then.
 * - `e2e_cross_signing_keys`: a user's master, self-signing and
 *   user-signing keys (the latest of each), `stream_id` from the device
 *   lists stream they changed.
 * - `e2e_cross_signing_signatures`: signatures made by one user's key over
 *   another key (a device's, or a user's master key), merged into
 *   /keys/query answers.
 * - `device_lists_stream`: a row each time a user's devices or keys change
 *   (stream position from `device_lists_stream_seq`); /sync's
 *   `device_lists` and /keys/changes read it by position.
 * - `device_inbox`: to-device messages waiting for a device, in the
 *   to-device stream's order (`device_inbox_seq`); deleted once the device
 *   syncs with a token past them.
 * - `to_device_txns`: (sender, device, txn id) of /sendToDevice requests
 *   already done, so a retry is not delivered twice.
 * - `e2e_room_keys_versions` / `e2e_room_keys`: server-side key backup.
 *   Versions are numbered per user and never reused; a deleted version
 *   keeps its row (`deleted`). `etag` changes with every write of keys.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE e2e_device_keys (
    user_id text NOT NULL, device_id text NOT NULL, key_json jsonb NOT NULL, ts bigint NOT NULL,
    PRIMARY KEY (user_id, device_id))`.execute(db);
  await sql`CREATE TABLE e2e_one_time_keys (
    user_id text NOT NULL, device_id text NOT NULL, algorithm text NOT NULL, key_id text NOT NULL,
    key_json jsonb NOT NULL, ts bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id))`.execute(db);
  // Claims take a device's oldest key first: this order lets one skip to it (and past rows locked by concurrent claims).
  await sql`CREATE INDEX e2e_one_time_keys_order ON e2e_one_time_keys (user_id, device_id, algorithm, ts, key_id)`.execute(db);
  await sql`CREATE TABLE e2e_fallback_keys (
    user_id text NOT NULL, device_id text NOT NULL, algorithm text NOT NULL, key_id text NOT NULL,
    key_json jsonb NOT NULL, used boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, device_id, algorithm))`.execute(db);
  await sql`CREATE SEQUENCE device_lists_stream_seq`.execute(db);
  await sql`CREATE TABLE device_lists_stream (
    stream_id bigint PRIMARY KEY DEFAULT nextval('device_lists_stream_seq'),
    user_id text NOT NULL, device_id text NOT NULL DEFAULT '', ts bigint NOT NULL)`.execute(db);
  await sql`CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id)`.execute(db);
  await sql`CREATE TABLE e2e_cross_signing_keys (
    user_id text NOT NULL, key_type text NOT NULL, key_json jsonb NOT NULL, stream_id bigint NOT NULL,
    PRIMARY KEY (user_id, key_type))`.execute(db);
  await sql`CREATE TABLE e2e_cross_signing_signatures (
    user_id text NOT NULL, key_id text NOT NULL, target_user_id text NOT NULL, target_device_id text NOT NULL,
    signature text NOT NULL,
    PRIMARY KEY (target_user_id, target_device_id, user_id, key_id))`.execute(db);
  await sql`CREATE SEQUENCE device_inbox_seq`.execute(db);
  await sql`CREATE TABLE device_inbox (
    stream_id bigint PRIMARY KEY DEFAULT nextval('device_inbox_seq'),
    user_id text NOT NULL, device_id text NOT NULL, message_json jsonb NOT NULL, ts bigint NOT NULL)`.execute(db);
  await sql`CREATE INDEX device_inbox_device ON device_inbox (user_id, device_id, stream_id)`.execute(db);
  await sql`CREATE TABLE to_device_txns (
    user_id text NOT NULL, device_id text NOT NULL, txn_id text NOT NULL, ts bigint NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id))`.execute(db);
  await sql`CREATE TABLE e2e_room_keys_versions (
    user_id text NOT NULL, version bigint NOT NULL, algorithm text NOT NULL, auth_data jsonb NOT NULL,
    etag bigint NOT NULL DEFAULT 0, deleted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, version))`.execute(db);
  await sql`CREATE TABLE e2e_room_keys (
    user_id text NOT NULL, version bigint NOT NULL, room_id text NOT NULL, session_id text NOT NULL,
    first_message_index integer NOT NULL, forwarded_count integer NOT NULL, is_verified boolean NOT NULL,
    session_data jsonb NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'e2e_room_keys',
    'e2e_room_keys_versions',
    'to_device_txns',
    'device_inbox',
    'e2e_cross_signing_signatures',
    'e2e_cross_signing_keys',
    'device_lists_stream',
    'e2e_fallback_keys',
    'e2e_one_time_keys',
    'e2e_device_keys',
  ]) {
    await sql`DROP TABLE ${sql.table(t)}`.execute(db);
  }
  await sql`DROP SEQUENCE device_inbox_seq`.execute(db);
  await sql`DROP SEQUENCE device_lists_stream_seq`.execute(db);
}

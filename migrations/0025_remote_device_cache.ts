/**
 * 0025: the cache of other servers' users' device lists (Synapse's
 * `device_lists_remote_cache` and its companions), kept for the users who
 * share a room with one of ours and filled from their server's
 * /user/devices, then kept current by `m.device_list_update` and
 * `m.signing_key_update`.
 *
 * - `remote_device_users`: one row per remote user whose list we hold:
 *   the position of their server's stream we hold it at (`stream_id`, the
 *   `prev_id` the next update must name), whether an update was missed
 *   (`stale`: it is fetched again before it is used), and when it was last
 *   written (`updated_ts`).
 * - `remote_devices`: their devices, with the display name their server
 *   shows us and the signed identity keys (null for a device without keys).
 * - `remote_cross_signing_keys`: their master and self-signing keys.
 * Devices and keys go with their user (ON DELETE CASCADE).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE remote_device_users (
    user_id text PRIMARY KEY,
    stream_id bigint NOT NULL,
    stale boolean NOT NULL DEFAULT false,
    updated_ts bigint NOT NULL)`.execute(db);
  await sql`CREATE TABLE remote_devices (
    user_id text NOT NULL REFERENCES remote_device_users (user_id) ON DELETE CASCADE,
    device_id text NOT NULL,
    display_name text,
    keys jsonb,
    PRIMARY KEY (user_id, device_id))`.execute(db);
  await sql`CREATE TABLE remote_cross_signing_keys (
    user_id text NOT NULL REFERENCES remote_device_users (user_id) ON DELETE CASCADE,
    key_type text NOT NULL CHECK (key_type IN ('master', 'self_signing')),
    key_json jsonb NOT NULL,
    PRIMARY KEY (user_id, key_type))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE remote_cross_signing_keys`.execute(db);
  await sql`DROP TABLE remote_devices`.execute(db);
  await sql`DROP TABLE remote_device_users`.execute(db);
}

/**
 * 0014: pushers, the per-device endpoints that notifications are sent to
 * (POST /pushers/set), and how far each has got.
 *
 * - One row per (user, app_id, pushkey). `device_id` is the device whose
 *   access token set the pusher: deleting the device (or logging it out)
 *   deletes its pushers.
 * - `last_stream_ordering`: the pusher has dealt with every notification
 *   (event_push_actions row) of its user up to this event position; set to
 *   the newest event when the pusher is made, so it never sends history.
 *   Kept per pusher so one failing gateway does not hold the others back,
 *   and in the database so a restart neither re-sends nor skips.
 * - `failing_since`: when sending started failing (null while it works);
 *   after a day of failures the notification is given up.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pushers')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('pushkey', 'text', (c) => c.notNull())
    .addColumn('pushkey_ts', 'bigint', (c) => c.notNull())
    .addColumn('app_display_name', 'text', (c) => c.notNull())
    .addColumn('device_display_name', 'text', (c) => c.notNull())
    .addColumn('profile_tag', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('lang', 'text', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addColumn('last_stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('last_success', 'bigint')
    .addColumn('failing_since', 'bigint')
    .addUniqueConstraint('pushers_user_app_pushkey', ['user_id', 'app_id', 'pushkey'])
    .execute();
  // POST /pushers/set without `append`: the same (app_id, pushkey) of other users.
  await db.schema.createIndex('pushers_app_pushkey').on('pushers').columns(['app_id', 'pushkey']).execute();
  // The sending loop starts with the HTTP pushers.
  await sql`CREATE INDEX pushers_http ON pushers (id) WHERE kind = 'http'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('pushers').execute();
}

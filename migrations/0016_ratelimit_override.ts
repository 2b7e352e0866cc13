/**
 * 0016: `ratelimit_override`, Synapse's per-user rate-limit overrides, set
 * through POST /_synapse/admin/v1/users/<user_id>/override_ratelimit. A row
 * with messages_per_second 0 takes the user out of every rate limit; other
 * values replace rc_message for that user. One row per user.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ratelimit_override')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('messages_per_second', 'bigint', (c) => c.notNull())
    .addColumn('burst_count', 'bigint', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('ratelimit_override').execute();
}

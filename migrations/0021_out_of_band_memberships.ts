/**
 * 0021: `events.out_of_band`, for memberships this server holds without
 * the room: an invite from another server to a room we are not in, and the
 * leave that rejects it. They are outliers (no place in the DAG, no state)
 * that are nevertheless the user's current membership, so /sync reads them
 * where it reads membership events, and nothing else does.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('events')
    .addColumn('out_of_band', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').dropColumn('out_of_band').execute();
}

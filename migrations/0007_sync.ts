/**
 * 0007: what /sync and filters need.
 *
 * - `user_filters`: filters uploaded through POST /user/{userId}/filter, as
 *   Synapse keeps them: per-user integer ids from 0, the JSON as given
 *   (after the timeline limit is capped).
 * - Indexes for the sync path, so that every query there is an index scan:
 *   the user's own membership events by stream position (which rooms were
 *   joined, left, invited since a token), state events of a room by stream
 *   position (the state delta over a gap), account data by stream position
 *   (finding the newest fully committed position), transaction ids by
 *   event (`unsigned.transaction_id`), and members of a room by membership
 *   in stream order (member counts and heroes of the room summary).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_filters')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('filter_id', 'bigint', (c) => c.notNull())
    .addColumn('filter_json', 'jsonb', (c) => c.notNull())
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_filters_pk', ['user_id', 'filter_id'])
    .execute();

  await sql`CREATE INDEX events_user_membership ON events (state_key, stream_ordering) WHERE type = 'm.room.member'`.execute(db);
  await sql`CREATE INDEX events_room_state_stream ON events (room_id, stream_ordering) WHERE state_key IS NOT NULL`.execute(db);
  await sql`CREATE INDEX account_data_stream_id ON account_data (stream_id)`.execute(db);
  await sql`CREATE INDEX event_txn_ids_event ON event_txn_ids (event_id)`.execute(db);
  await sql`CREATE INDEX current_state_room_members ON current_state (room_id, membership, stream_ordering) WHERE type = 'm.room.member'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const i of ['current_state_room_members', 'event_txn_ids_event', 'account_data_stream_id', 'events_room_state_stream', 'events_user_membership']) {
    await sql`DROP INDEX IF EXISTS ${sql.id(i)}`.execute(db);
  }
  await db.schema.dropTable('user_filters').execute();
}

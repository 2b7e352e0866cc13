/**
 * 0005: room aliases, forgotten rooms, users waiting to be parted from
 * their rooms after deactivation, and the indexes the room directory needs.
 *
 * - `room_aliases`: local aliases only (remote ones are federation's), with
 *   the user who made each, for Synapse's "the creator may delete it".
 * - `room_forgotten`: a user forgot a room while `event_id` was their
 *   membership event there. The room counts as forgotten as long as that
 *   event is still their current membership; any later membership change
 *   (a rejoin, a new invite) un-forgets it, as Synapse's per-membership flag
 *   does, without touching the event pipeline.
 * - `users_pending_deactivation`: written in the deactivation's own
 *   transaction, cleared once the user has left every room, so a crash in
 *   between is finished at the next start.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('room_aliases')
    .addColumn('room_alias', 'text', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('creator', 'text')
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('room_aliases_room').on('room_aliases').columns(['room_id', 'room_alias']).execute();

  await db.schema
    .createTable('room_forgotten')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('room_forgotten_pk', ['user_id', 'room_id'])
    .execute();

  await db.schema
    .createTable('users_pending_deactivation')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .execute();

  // Joined-member counts per room (the directory's order), from the index alone.
  await sql`CREATE INDEX current_state_joined ON current_state (room_id) WHERE type = 'm.room.member' AND membership = 'join'`.execute(db);
  // The published rooms, without scanning every room.
  await sql`CREATE INDEX rooms_public ON rooms (room_id) WHERE is_public`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS rooms_public`.execute(db);
  await sql`DROP INDEX IF EXISTS current_state_joined`.execute(db);
  for (const t of ['users_pending_deactivation', 'room_forgotten', 'room_aliases']) await db.schema.dropTable(t).execute();
}

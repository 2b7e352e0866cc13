/**
 * 0017: what the event persister records for any PDU (local, received or
 * backfilled):
 * - `events.state_group_after`: the state after the event (the group before
 *   it plus the event itself when it is an accepted state event). Filled for
 *   the events stored so far: a state event's group is the first group that
 *   holds it; any other event's is the group before it.
 * - `events.soft_failed`: accepted by its auth events and the state before it,
 *   but not by the room's current state; kept for state resolution, never
 *   served to clients, never a forward extremity.
 * - `events_backfill_stream`: backfilled events take their stream ordering
 *   from here, -1, -2, …, so they sort before every live event: /sync (which
 *   reads positions above its token) never shows old history as new, and
 *   /messages pages by (depth, stream ordering) through both.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('state_group_after', 'bigint').execute();
  await db.schema
    .alterTable('events')
    .addColumn('soft_failed', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await sql`
    UPDATE events e SET state_group_after = first.state_group
    FROM (SELECT DISTINCT ON (event_id) event_id, state_group FROM state_groups_state ORDER BY event_id, state_group) first
    WHERE e.state_key IS NOT NULL AND e.rejected_reason IS NULL AND NOT e.outlier AND first.event_id = e.event_id`.execute(db);
  await sql`UPDATE events SET state_group_after = state_group_before WHERE state_group_after IS NULL AND NOT outlier`.execute(db);
  await sql`CREATE SEQUENCE events_backfill_stream INCREMENT BY -1 START WITH -1 MAXVALUE -1`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP SEQUENCE events_backfill_stream`.execute(db);
  await db.schema.alterTable('events').dropColumn('soft_failed').execute();
  await db.schema.alterTable('events').dropColumn('state_group_after').execute();
}

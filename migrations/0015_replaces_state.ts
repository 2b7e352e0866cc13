/**
 * 0015: `events.replaces_state`, the state event a state event replaced
 * (the one its key held in the state before it), recorded when the event is
 * persisted: '' when it replaced nothing, NULL for events stored before this
 * column existed (their `unsigned.replaces_state` / `prev_content` are then
 * found by walking the state groups, as before). Timelines full of state
 * events (an initial sync of 200 new rooms) then read `prev_content` by id
 * instead of walking a state-group chain per event.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE events ADD COLUMN replaces_state text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE events DROP COLUMN replaces_state`.execute(db);
}

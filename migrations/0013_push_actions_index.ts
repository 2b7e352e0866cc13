/**
 * 0013: redactions find the notifications to drop by the redacted event's
 * stream position instead of its id. In a big room every message adds a
 * row per local member to event_push_actions; an index on the event id (a
 * ~45-byte text key) cost as much to maintain as the rest of the insert,
 * one on the bigint position far less (bench/explain.ts, bench/push.ts).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX event_push_actions_event`.execute(db);
  await sql`CREATE INDEX event_push_actions_stream ON event_push_actions (stream_ordering)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX event_push_actions_stream`.execute(db);
  await sql`CREATE INDEX event_push_actions_event ON event_push_actions (event_id)`.execute(db);
}

/**
 * 0008: read receipts, push rules, and the notifications they produce.
 *
 * - `receipts`: the latest receipt per (room, type, user, thread), with
 *   `thread_id` '' for an unthreaded receipt. `stream_id` is the receipts
 *   stream position sync reads from: every write takes a new one.
 *   `event_stream_ordering` is where the receipt points, so receipts only
 *   move forward and unread counts compare positions, not event ids.
 * - `push_rules`: a user's own rules (the server-default ones live in code);
 *   `priority` orders rules of one kind, highest first.
 * - `push_rules_defaults`: a user's changes to a server-default rule
 *   (enabled, actions); null where left as it is.
 * - `event_push_actions`: one row per (user, event) that notifies the user,
 *   written in the event's own transaction, with its thread and whether it
 *   highlights. Unread counts are the rows after the user's read position.
 * - `push_read_marks`: the user's latest own event per room and thread,
 *   which reads everything before it, as the spec says sending an event does.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('receipts')
    .addColumn('stream_id', 'bigserial', (c) => c.notNull().unique())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('receipt_type', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('thread_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('data', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('receipts_pk', ['room_id', 'receipt_type', 'user_id', 'thread_id'])
    .execute();
  // Sync: "receipts in these rooms since position N".
  await db.schema.createIndex('receipts_room_stream').on('receipts').columns(['room_id', 'stream_id']).execute();
  // Unread counts and /notifications: "this user's receipts in these rooms".
  await db.schema.createIndex('receipts_user_room').on('receipts').columns(['user_id', 'room_id']).execute();

  await db.schema
    .createTable('push_rules')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('conditions', 'jsonb')
    .addColumn('pattern', 'text')
    .addColumn('actions', 'jsonb', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addPrimaryKeyConstraint('push_rules_pk', ['user_id', 'kind', 'rule_id'])
    .execute();

  await db.schema
    .createTable('push_rules_defaults')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean')
    .addColumn('actions', 'jsonb')
    .addPrimaryKeyConstraint('push_rules_defaults_pk', ['user_id', 'kind', 'rule_id'])
    .execute();

  await db.schema
    .createTable('event_push_actions')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('thread_id', 'text', (c) => c.notNull())
    .addColumn('actions', 'jsonb', (c) => c.notNull())
    .addColumn('highlight', 'boolean', (c) => c.notNull())
    .addColumn('ts', 'bigint', (c) => c.notNull())
    // Unread counts: a range scan over the rows after the read position.
    .addPrimaryKeyConstraint('event_push_actions_pk', ['user_id', 'room_id', 'stream_ordering'])
    .execute();
  // GET /notifications, newest first, and its only=highlight form.
  await db.schema.createIndex('event_push_actions_user_stream').on('event_push_actions').columns(['user_id', 'stream_ordering']).execute();
  await sql`CREATE INDEX event_push_actions_user_highlight ON event_push_actions (user_id, stream_ordering) WHERE highlight`.execute(db);
  // Redactions drop the redacted event's notifications.
  await db.schema.createIndex('event_push_actions_event').on('event_push_actions').column('event_id').execute();

  await db.schema
    .createTable('push_read_marks')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('thread_id', 'text', (c) => c.notNull())
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('push_read_marks_pk', ['user_id', 'room_id', 'thread_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['push_read_marks', 'event_push_actions', 'push_rules_defaults', 'push_rules', 'receipts']) {
    await db.schema.dropTable(t).execute();
  }
}

/**
 * 0006: event relationships (`m.relates_to`) and thread summaries.
 *
 * `event_relations` holds one row per event that relates to another, with
 * the child's sender, type and topological position copied in, so that
 * /relations pages, edits, references and thread participation are answered
 * from this table's indexes without touching `events` until the page is
 * known. A redacted child loses its row (its content, and so its relation,
 * is gone).
 *
 * `threads` keeps one row per thread root: the latest reply's position (the
 * /threads order) and the reply count, updated as replies arrive or are
 * redacted.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('event_relations')
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('relates_to_id', 'text', (c) => c.notNull())
    .addColumn('relation_type', 'text', (c) => c.notNull())
    .addColumn('aggregation_key', 'text')
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('depth', 'bigint', (c) => c.notNull())
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
    .execute();
  // Children of a parent, by relation type, in topological order: /relations pages, thread summaries, edits.
  await db.schema.createIndex('event_relations_parent').on('event_relations').columns(['relates_to_id', 'relation_type', 'depth', 'stream_ordering']).execute();
  // "Has this user replied in the thread / reacted with this key already".
  await db.schema.createIndex('event_relations_parent_sender').on('event_relations').columns(['relates_to_id', 'sender', 'relation_type']).execute();

  await db.schema
    .createTable('threads')
    .addColumn('thread_id', 'text', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('latest_event_id', 'text', (c) => c.notNull())
    .addColumn('latest_depth', 'bigint', (c) => c.notNull())
    .addColumn('latest_stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('reply_count', 'integer', (c) => c.notNull())
    .execute();
  await sql`CREATE INDEX threads_room_latest ON threads (room_id, latest_depth DESC, latest_stream_ordering DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('threads').execute();
  await db.schema.dropTable('event_relations').execute();
}

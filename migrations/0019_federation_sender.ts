/**
 * 0019: the outbound federation sender's durable state.
 *
 * - `federation_stream_position`: one row, the last events stream ordering
 *   whose fan-out to other servers has been queued. Set here to the newest
 *   event at migration time, so history from before the sender is not sent.
 * - `federation_destinations`: one row per server we have queued anything
 *   for, with the retry state (Synapse's `destinations`): when we last tried
 *   and failed, the interval before the next try, when the failures began,
 *   the stream ordering of the newest PDU it accepted, the transaction in
 *   flight (its id), if any, and whether it has failed since its last
 *   success (`catching_up`: its backlog is trimmed before the next try).
 * - `federation_destination_rooms`: per (destination, room), the stream
 *   ordering of the newest PDU queued for it (Synapse's `destination_rooms`).
 * - `federation_outbox_pdus` / `federation_outbox_edus`: what is still to be
 *   sent to each destination, in order of `id`. A row taken into the
 *   transaction in flight carries its `txn_id` and is deleted once the
 *   destination answers 200. An EDU with a `edu_key` replaces the unsent
 *   EDU of the same (destination, type, key).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('federation_stream_position')
    .addColumn('lock', 'boolean', (c) =>
      c
        .primaryKey()
        .defaultTo(true)
        .check(sql`lock`),
    )
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .execute();
  await sql`INSERT INTO federation_stream_position (lock, stream_ordering)
            SELECT true, GREATEST(COALESCE(MAX(stream_ordering), 0), 0) FROM events`.execute(db);

  await db.schema
    .createTable('federation_destinations')
    .addColumn('destination', 'text', (c) => c.primaryKey())
    .addColumn('retry_last_ts', 'bigint')
    .addColumn('retry_interval', 'bigint')
    .addColumn('failure_ts', 'bigint')
    .addColumn('last_successful_stream_ordering', 'bigint')
    .addColumn('txn_id', 'text')
    .addColumn('catching_up', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  await db.schema
    .createTable('federation_destination_rooms')
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('federation_destination_rooms_pkey', ['destination', 'room_id'])
    .execute();

  await db.schema
    .createTable('federation_outbox_pdus')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addColumn('txn_id', 'text')
    .execute();
  await db.schema.createIndex('federation_outbox_pdus_destination').on('federation_outbox_pdus').columns(['destination', 'id']).execute();

  await db.schema
    .createTable('federation_outbox_edus')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('destination', 'text', (c) => c.notNull())
    .addColumn('edu_type', 'text', (c) => c.notNull())
    .addColumn('edu_key', 'text')
    .addColumn('content', 'jsonb', (c) => c.notNull())
    .addColumn('txn_id', 'text')
    .execute();
  await db.schema.createIndex('federation_outbox_edus_destination').on('federation_outbox_edus').columns(['destination', 'id']).execute();
  // At most one unsent EDU per (destination, type, key): a newer one replaces it.
  await sql`CREATE UNIQUE INDEX federation_outbox_edus_key ON federation_outbox_edus (destination, edu_type, edu_key)
            WHERE edu_key IS NOT NULL AND txn_id IS NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['federation_outbox_edus', 'federation_outbox_pdus', 'federation_destination_rooms', 'federation_destinations', 'federation_stream_position']) {
    await db.schema.dropTable(t).execute();
  }
}

/**
 * 0004: rooms and their events. Every PDU we hold is a row in `events`
 * (with its stream position, the room DAG's edges and auth edges, outlier
 * and rejection flags) so that federation later adds code, not a new model.
 *
 * State is kept as groups: a group is a delta (changed keys only) on a
 * parent group, and a chain is cut with a full snapshot every
 * STATE_DELTA_CHAIN_MAX hops, so a 10,000-member room never copies its
 * whole state per event. `events.state_group_before` is the state before an
 * event (what its auth checks ran against); `current_state` is the room's
 * present state, for fast reads.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rooms')
    .addColumn('room_id', 'text', (c) => c.primaryKey())
    .addColumn('room_version', 'text', (c) => c.notNull())
    .addColumn('creator', 'text')
    .addColumn('is_public', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('current_state_group', 'bigint')
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('stream_ordering', 'bigserial', (c) => c.notNull().unique())
    .addColumn('event_id', 'text', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('state_key', 'text')
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('depth', 'bigint', (c) => c.notNull())
    .addColumn('origin_server_ts', 'bigint', (c) => c.notNull())
    .addColumn('json', 'jsonb', (c) => c.notNull())
    .addColumn('outlier', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('rejected_reason', 'text')
    .addColumn('state_group_before', 'bigint')
    .addColumn('redacted_by', 'text')
    .execute();
  await db.schema.createIndex('events_room_stream').on('events').columns(['room_id', 'stream_ordering']).execute();
  await db.schema.createIndex('events_room_topo').on('events').columns(['room_id', 'depth', 'stream_ordering']).execute();
  await db.schema.createIndex('events_room_ts').on('events').columns(['room_id', 'origin_server_ts']).execute();

  await db.schema
    .createTable('event_edges')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('prev_event_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('event_edges_pk', ['event_id', 'prev_event_id'])
    .execute();
  await db.schema.createIndex('event_edges_prev').on('event_edges').column('prev_event_id').execute();
  await db.schema
    .createTable('event_auth_edges')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('auth_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('event_auth_edges_pk', ['event_id', 'auth_id'])
    .execute();
  await db.schema
    .createTable('forward_extremities')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('forward_extremities_pk', ['room_id', 'event_id'])
    .execute();

  await db.schema
    .createTable('state_groups')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('prev_group', 'bigint')
    .addColumn('chain_depth', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('state_groups_state')
    .addColumn('state_group', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('state_key', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('state_groups_state_pk', ['state_group', 'type', 'state_key'])
    .execute();

  await db.schema
    .createTable('current_state')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('state_key', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('membership', 'text')
    .addColumn('stream_ordering', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('current_state_pk', ['room_id', 'type', 'state_key'])
    .execute();
  // "Which rooms is this user in": members by user, for sync and joined_rooms.
  await sql`CREATE INDEX current_state_members ON current_state (state_key, membership, room_id) WHERE type = 'm.room.member'`.execute(db);

  await db.schema
    .createTable('event_txn_ids')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('txn_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('event_txn_ids_pk', ['user_id', 'device_id', 'txn_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['event_txn_ids', 'current_state', 'state_groups_state', 'state_groups', 'forward_extremities', 'event_auth_edges', 'event_edges', 'events', 'rooms']) {
    await db.schema.dropTable(t).execute();
  }
}

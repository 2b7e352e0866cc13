/**
 * The queries /sync runs. Each one covers every room of the sync at once
 * (arrays and LATERAL joins), so that a user in 200 rooms costs a handful
 * of queries, not hundreds; each one is an index scan (see migrations 0004
 * and 0007).
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { timelineCondition, type EventSqlFilter } from './event-filter-sql.js';
import type { Schema } from './schema.js';
import type { TimelineEvent } from './timeline.js';
import { textArray } from './sql-arrays.js';
import type { Db } from './db.js';

/** An event as sync reads it: the stored event plus the state group before it. */
export type SyncEventRow = TimelineEvent;

const EVENT_COLS = sql.raw(
  'e.event_id, e.room_id, e.type, e.state_key, e.sender, e.depth, e.origin_server_ts, e.stream_ordering, e.json, e.redacted_by, e.rejected_reason, e.state_group_before',
);

function bigintArray(values: readonly number[]): RawBuilder<number[]> {
  return sql`${sql.val([...values])}::bigint[]`;
}

const num = (v: unknown): number => Number(v);

function normalise(r: SyncEventRow): SyncEventRow {
  return {
    ...r,
    depth: num(r.depth),
    origin_server_ts: num(r.origin_server_ts),
    stream_ordering: num(r.stream_ordering),
    state_group_before: r.state_group_before === null ? null : num(r.state_group_before),
  };
}

// ---------------------------------------------------------------- positions

/** The database streams a sync token carries, each a table and its position column. */
export const DB_STREAMS = {
  events: { table: 'events', column: 'stream_ordering' },
  accountData: { table: 'account_data', column: 'stream_id' },
  toDevice: { table: 'device_inbox', column: 'stream_id' },
  deviceLists: { table: 'device_lists_stream', column: 'stream_id' },
} as const;

export type DbStream = keyof typeof DB_STREAMS;
export const DB_STREAM_NAMES = Object.keys(DB_STREAMS) as DbStream[];
export type DbPositions = Record<DbStream, number>;

export interface StreamHighWater {
  /** The newest committed position above the one given, or null when there is none. */
  max: number | null;
  /** How many rows lie above the position given. */
  count: number;
}

/**
 * For each stream, the newest committed position above the one given and
 * how many rows lie above it: when the count equals the distance, no
 * position below the maximum is missing (none is still being written).
 */
export async function streamHighWater(db: Db, after: DbPositions): Promise<Record<DbStream, StreamHighWater>> {
  const parts = DB_STREAM_NAMES.map((name) => {
    const { table, column } = DB_STREAMS[name];
    const t = sql.table(table);
    const c = sql.ref(column);
    return sql`(SELECT max(${c}) FROM ${t} WHERE ${c} > ${after[name]}) AS ${sql.ref(`${name}_max`)},
           (SELECT count(*) FROM ${t} WHERE ${c} > ${after[name]}) AS ${sql.ref(`${name}_n`)}`;
  });
  const res = await sql<Record<string, unknown>>`SELECT ${sql.join(parts)}`.execute(db);
  const r = res.rows[0] ?? {};
  const out = {} as Record<DbStream, StreamHighWater>;
  for (const name of DB_STREAM_NAMES) {
    const max = r[`${name}_max`];
    out[name] = { max: max === null || max === undefined ? null : num(max), count: num(r[`${name}_n`] ?? 0) };
  }
  return out;
}

/**
 * The last position of the unbroken run of committed positions just above
 * `after` (up to 10,000 of them): everything at or below it is settled
 * whatever is still being written above it.
 */
export async function contiguousUpTo(db: Db, stream: DbStream, after: number): Promise<number> {
  const { table, column } = DB_STREAMS[stream];
  const col = sql.ref(column);
  const res = await sql<{ p: number }>`SELECT ${col} AS p FROM ${sql.table(table)} WHERE ${col} > ${after} ORDER BY ${col} LIMIT 10000`.execute(db);
  let last = after;
  for (const r of res.rows) {
    const p = num(r.p);
    if (p !== last + 1) break;
    last = p;
  }
  return last;
}

/**
 * The newest positions once every transaction still writing to these tables
 * has finished: a SHARE lock waits for them (and holds new writers back
 * only while the maxima are read). Undefined when the lock is not granted
 * within `lockTimeoutMs`.
 */
export async function settledStreamMax(db: Kysely<Schema>, lockTimeoutMs: number): Promise<DbPositions | undefined> {
  try {
    return await db.transaction().execute(async (tx) => {
      await sql`SELECT set_config('lock_timeout', ${`${Math.max(1, Math.floor(lockTimeoutMs))}ms`}, true)`.execute(tx);
      const tables = DB_STREAM_NAMES.map((n) => sql.table(DB_STREAMS[n].table));
      await sql`LOCK TABLE ${sql.join(tables)} IN SHARE MODE`.execute(tx);
      const parts = DB_STREAM_NAMES.map((n) => sql`(SELECT max(${sql.ref(DB_STREAMS[n].column)}) FROM ${sql.table(DB_STREAMS[n].table)}) AS ${sql.ref(n)}`);
      const res = await sql<Record<string, unknown>>`SELECT ${sql.join(parts)}`.execute(tx);
      const r = res.rows[0] ?? {};
      const out = {} as DbPositions;
      for (const n of DB_STREAM_NAMES) out[n] = num(r[n] ?? 0);
      return out;
    });
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') return undefined;
    throw err;
  }
}

// -------------------------------------------------------------- memberships

export interface MembershipRow {
  room_id: string;
  membership: string;
  event_id: string;
  stream_ordering: number;
  sender: string;
}

/** The user's current membership in every room where they have one. */
export async function userMemberships(db: Db, userId: string): Promise<MembershipRow[]> {
  const res = await sql<MembershipRow>`
    SELECT c.room_id, c.membership, c.event_id, c.stream_ordering, e.sender
    FROM current_state c JOIN events e ON e.event_id = c.event_id
    WHERE c.type = 'm.room.member' AND c.state_key = ${userId} AND c.membership IS NOT NULL`.execute(db);
  return res.rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

/** The user's own membership events with a position in (after, upto], oldest first. */
export async function userMembershipEvents(db: Db, userId: string, after: number, upto: number): Promise<MembershipRow[]> {
  const res = await sql<MembershipRow>`
    SELECT room_id, event_id, stream_ordering, sender, coalesce(json->'content'->>'membership', '') AS membership
    FROM events
    WHERE type = 'm.room.member' AND state_key = ${userId} AND stream_ordering > ${after} AND stream_ordering <= ${upto}
      AND (NOT outlier OR out_of_band) AND rejected_reason IS NULL AND NOT soft_failed
    ORDER BY stream_ordering`.execute(db);
  return res.rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

/** Per room, the user's membership as of position `pos` (from their last membership event at or before it). */
export async function membershipAt(db: Db, userId: string, roomIds: readonly string[], pos: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (roomIds.length === 0) return out;
  const res = await sql<{ room_id: string; membership: string }>`
    SELECT DISTINCT ON (room_id) room_id, coalesce(json->'content'->>'membership', '') AS membership
    FROM events
    WHERE type = 'm.room.member' AND state_key = ${userId} AND stream_ordering <= ${pos}
      AND room_id = ANY(${textArray(roomIds)}) AND (NOT outlier OR out_of_band) AND rejected_reason IS NULL AND NOT soft_failed
    ORDER BY room_id, stream_ordering DESC`.execute(db);
  for (const r of res.rows) out.set(r.room_id, r.membership);
  return out;
}

/** All of the user's membership events in these rooms (position and membership), oldest first. */
export async function userMembershipHistory(db: Db, userId: string, roomIds: readonly string[]): Promise<{ room_id: string; stream_ordering: number; membership: string }[]> {
  if (roomIds.length === 0) return [];
  const res = await sql<{ room_id: string; stream_ordering: number; membership: string }>`
    SELECT room_id, stream_ordering, coalesce(json->'content'->>'membership', '') AS membership
    FROM events
    WHERE type = 'm.room.member' AND state_key = ${userId} AND room_id = ANY(${textArray(roomIds)})
      AND (NOT outlier OR out_of_band) AND rejected_reason IS NULL AND NOT soft_failed
    ORDER BY stream_ordering`.execute(db);
  return res.rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

// ----------------------------------------------------------------- timeline

/**
 * The newest `limit` events (that pass the filter) of each room with a
 * position in (after, upto], oldest first. One LATERAL index scan per room.
 */
export async function recentEvents(
  db: Db,
  rooms: readonly { roomId: string; after: number; upto: number }[],
  limit: number,
  filter?: EventSqlFilter,
): Promise<Map<string, SyncEventRow[]>> {
  const out = new Map<string, SyncEventRow[]>();
  if (rooms.length === 0 || limit <= 0) return out;
  const res = await sql<SyncEventRow>`
    SELECT ${EVENT_COLS}
    FROM unnest(${textArray(rooms.map((r) => r.roomId))}, ${bigintArray(rooms.map((r) => r.after))}, ${bigintArray(rooms.map((r) => r.upto))})
      AS r(room_id, after_pos, upto_pos)
    CROSS JOIN LATERAL (
      SELECT * FROM events e
      WHERE e.room_id = r.room_id AND e.stream_ordering > r.after_pos AND e.stream_ordering <= r.upto_pos AND ${timelineCondition(filter)}
      ORDER BY e.stream_ordering DESC
      LIMIT ${limit}
    ) e`.execute(db);
  for (const raw of res.rows) {
    const r = normalise(raw);
    let list = out.get(r.room_id);
    if (!list) out.set(r.room_id, (list = []));
    list.push(r);
  }
  for (const list of out.values()) list.sort((a, b) => a.stream_ordering - b.stream_ordering);
  return out;
}

/**
 * Every event (that passes the filter) of these rooms in the window
 * (after, upto], oldest first: one scan of the stream index over the window,
 * for short windows (a long-poll woken by a new event).
 */
export async function eventsInWindow(db: Db, roomIds: readonly string[], after: number, upto: number, filter?: EventSqlFilter): Promise<SyncEventRow[]> {
  if (roomIds.length === 0 || upto <= after) return [];
  const res = await sql<SyncEventRow>`
    SELECT ${EVENT_COLS} FROM events e
    WHERE e.stream_ordering > ${after} AND e.stream_ordering <= ${upto} AND e.room_id = ANY(${textArray(roomIds)}) AND ${timelineCondition(filter)}
    ORDER BY e.stream_ordering`.execute(db);
  return res.rows.map(normalise);
}

/**
 * Every timeline event of every room in the window (after, upto], oldest
 * first: one scan of the stream index. Syncs woken by the same commit share
 * one such read and pick their rooms from it.
 */
export async function eventsBetween(db: Db, after: number, upto: number): Promise<SyncEventRow[]> {
  if (upto <= after) return [];
  const res = await sql<SyncEventRow>`
    SELECT ${EVENT_COLS} FROM events e
    WHERE e.stream_ordering > ${after} AND e.stream_ordering <= ${upto} AND (NOT e.outlier OR e.out_of_band) AND e.rejected_reason IS NULL AND NOT e.soft_failed
    ORDER BY e.stream_ordering`.execute(db);
  return res.rows.map(normalise);
}

/** The rooms (of these) that have any timeline event in their window (after, upto]. */
export async function roomsWithEvents(db: Db, rooms: readonly { roomId: string; after: number; upto: number }[]): Promise<Set<string>> {
  const live = rooms.filter((r) => r.upto > r.after);
  if (live.length === 0) return new Set();
  const res = await sql<{ room_id: string }>`
    SELECT r.room_id FROM unnest(${textArray(live.map((r) => r.roomId))}, ${bigintArray(live.map((r) => r.after))}, ${bigintArray(live.map((r) => r.upto))})
      AS r(room_id, after_pos, upto_pos)
    WHERE EXISTS (
      SELECT 1 FROM events e
      WHERE e.room_id = r.room_id AND e.stream_ordering > r.after_pos AND e.stream_ordering <= r.upto_pos AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed
    )`.execute(db);
  return new Set(res.rows.map((r) => r.room_id));
}

// -------------------------------------------------------------------- state

export interface StateRow {
  room_id: string;
  type: string;
  state_key: string;
  event_id: string;
  stream_ordering: number;
}

/**
 * Current state rows of these rooms. With `members`, member rows only for
 * those (room, user) pairs (lazy loading) and every other row in full.
 */
export async function currentStateRows(db: Db, roomIds: readonly string[], members?: readonly { roomId: string; userId: string }[]): Promise<StateRow[]> {
  if (roomIds.length === 0) return [];
  const rows: StateRow[] = [];
  if (!members) {
    const res = await sql<StateRow>`
      SELECT room_id, type, state_key, event_id, stream_ordering FROM current_state WHERE room_id = ANY(${textArray(roomIds)})`.execute(db);
    rows.push(...res.rows);
  } else {
    const res = await sql<StateRow>`
      SELECT room_id, type, state_key, event_id, stream_ordering FROM current_state
      WHERE room_id = ANY(${textArray(roomIds)}) AND type <> 'm.room.member'`.execute(db);
    rows.push(...res.rows);
    rows.push(...(await memberRows(db, members)));
  }
  return rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

/** The current member rows of these (room, user) pairs. */
export async function memberRows(db: Db, pairs: readonly { roomId: string; userId: string }[]): Promise<StateRow[]> {
  if (pairs.length === 0) return [];
  const res = await sql<StateRow>`
    SELECT c.room_id, c.type, c.state_key, c.event_id, c.stream_ordering
    FROM unnest(${textArray(pairs.map((x) => x.roomId))}, ${textArray(pairs.map((x) => x.userId))}) AS w(room_id, user_id)
    JOIN current_state c ON c.room_id = w.room_id AND c.type = 'm.room.member' AND c.state_key = w.user_id`.execute(db);
  return res.rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

/** The joined members of these rooms. */
export async function joinedMembers(db: Db, roomIds: readonly string[]): Promise<string[]> {
  if (roomIds.length === 0) return [];
  const res = await sql<{ user_id: string }>`
    SELECT DISTINCT state_key AS user_id FROM current_state
    WHERE room_id = ANY(${textArray(roomIds)}) AND type = 'm.room.member' AND membership = 'join'`.execute(db);
  return res.rows.map((r) => r.user_id);
}

/** The (type, state_key) pairs of state events in each room with a position in (after, before). */
export async function stateKeysChanged(db: Db, rooms: readonly { roomId: string; after: number; before: number }[]): Promise<Map<string, { type: string; state_key: string }[]>> {
  const out = new Map<string, { type: string; state_key: string }[]>();
  const live = rooms.filter((r) => r.before - 1 > r.after);
  if (live.length === 0) return out;
  const res = await sql<{ room_id: string; type: string; state_key: string }>`
    SELECT DISTINCT r.room_id, e.type, e.state_key
    FROM unnest(${textArray(live.map((r) => r.roomId))}, ${bigintArray(live.map((r) => r.after))}, ${bigintArray(live.map((r) => r.before))})
      AS r(room_id, after_pos, before_pos)
    JOIN events e ON e.room_id = r.room_id AND e.state_key IS NOT NULL
      AND e.stream_ordering > r.after_pos AND e.stream_ordering < r.before_pos
      AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed`.execute(db);
  for (const r of res.rows) {
    let list = out.get(r.room_id);
    if (!list) out.set(r.room_id, (list = []));
    list.push({ type: r.type, state_key: r.state_key });
  }
  return out;
}

// ------------------------------------------------------------------ summary

/** Joined and invited member counts per room. */
export async function memberCounts(db: Db, roomIds: readonly string[]): Promise<Map<string, { joined: number; invited: number }>> {
  const out = new Map<string, { joined: number; invited: number }>();
  if (roomIds.length === 0) return out;
  const res = await sql<{ room_id: string; membership: string; n: number }>`
    SELECT room_id, membership, count(*) AS n FROM current_state
    WHERE type = 'm.room.member' AND room_id = ANY(${textArray(roomIds)}) AND membership IN ('join', 'invite')
    GROUP BY room_id, membership`.execute(db);
  for (const r of res.rows) {
    let c = out.get(r.room_id);
    if (!c) out.set(r.room_id, (c = { joined: 0, invited: 0 }));
    if (r.membership === 'join') c.joined = num(r.n);
    else c.invited = num(r.n);
  }
  return out;
}

/**
 * Up to `n` members of each room other than `userId`, in the order they got
 * their membership: joined or invited ones, or, where there are none, those
 * who left or were banned (the spec's heroes).
 */
export async function heroes(db: Db, roomIds: readonly string[], userId: string, n: number): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (roomIds.length === 0) return out;
  const query = (ids: readonly string[], memberships: string[]) =>
    sql<{ room_id: string; user_id: string }>`
    SELECT r.room_id, m.state_key AS user_id
    FROM unnest(${textArray(ids)}) AS r(room_id)
    CROSS JOIN LATERAL (
      SELECT c.state_key, c.stream_ordering FROM current_state c
      WHERE c.room_id = r.room_id AND c.type = 'm.room.member' AND c.membership = ANY(${textArray(memberships)}) AND c.state_key <> ${userId}
      ORDER BY c.stream_ordering, c.state_key
      LIMIT ${n}
    ) m
    ORDER BY r.room_id, m.stream_ordering, m.state_key`.execute(db);
  for (const r of (await query(roomIds, ['join', 'invite'])).rows) {
    let l = out.get(r.room_id);
    if (!l) out.set(r.room_id, (l = []));
    l.push(r.user_id);
  }
  const empty = roomIds.filter((id) => !out.has(id));
  if (empty.length > 0) {
    for (const r of (await query(empty, ['leave', 'ban'])).rows) {
      let l = out.get(r.room_id);
      if (!l) out.set(r.room_id, (l = []));
      l.push(r.user_id);
    }
  }
  return out;
}

/** The content of chosen current state events (name, alias, stripped state) per room. */
export async function currentStateContents(
  db: Db,
  roomIds: readonly string[],
  types: readonly string[],
): Promise<{ room_id: string; type: string; state_key: string; event_id: string; sender: string; content: Record<string, unknown> }[]> {
  if (roomIds.length === 0 || types.length === 0) return [];
  const res = await sql<{ room_id: string; type: string; state_key: string; event_id: string; sender: string; content: Record<string, unknown> | null }>`
    SELECT c.room_id, c.type, c.state_key, c.event_id, e.sender, e.json->'content' AS content
    FROM current_state c JOIN events e ON e.event_id = c.event_id
    WHERE c.room_id = ANY(${textArray(roomIds)}) AND c.type = ANY(${textArray(types)}) AND c.state_key = ''`.execute(db);
  return res.rows.map((r) => ({ ...r, content: r.content ?? {} }));
}

// ------------------------------------------------------------- account data

/** The user's account data written in (after, upto], oldest first (global entries have room_id ''). */
export async function accountDataBetween(
  db: Db,
  userId: string,
  after: number,
  upto: number,
): Promise<{ room_id: string; type: string; content: Record<string, unknown>; stream_id: number }[]> {
  if (upto <= after) return [];
  const rows = await db
    .selectFrom('account_data')
    .select(['room_id', 'type', 'content', 'stream_id'])
    .where('user_id', '=', userId)
    .where('stream_id', '>', after)
    .where('stream_id', '<=', upto)
    .orderBy('stream_id')
    .execute();
  return rows.map((r) => ({ ...r, stream_id: num(r.stream_id) }));
}

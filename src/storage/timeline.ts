/**
 * Reading a room's timeline: pages in topological order (depth, then stream
 * ordering) over `events_room_topo`, positions for tokens, the event nearest
 * a timestamp (`events_room_ts`), and state at a group restricted to one
 * event type. Outliers and rejected events are never part of a timeline.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { StoredEvent } from './events.js';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;

/** A position in a room's topological order: (depth, stream ordering). */
export interface TopoPosition {
  depth: number;
  stream: number;
}

/** A timeline event with the state group before it (for history visibility). */
export interface TimelineEvent extends StoredEvent {
  state_group_before: number | null;
}

const COLUMNS = [
  'event_id',
  'room_id',
  'type',
  'state_key',
  'sender',
  'depth',
  'origin_server_ts',
  'stream_ordering',
  'json',
  'redacted_by',
  'rejected_reason',
  'state_group_before',
] as const;

/** What a RoomEventFilter asks of each event, as SQL can check it. */
export interface EventSqlFilter {
  types?: readonly string[];
  notTypes?: readonly string[];
  senders?: readonly string[];
  notSenders?: readonly string[];
  containsUrl?: boolean;
}

function likePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
}

export interface PageQuery {
  dir: 'b' | 'f';
  /** Backwards: events at or before it; forwards: events after it. Absent: from the room's end (b) or start (f). */
  from?: TopoPosition;
  /** Backwards: events after it; forwards: events at or before it. */
  to?: TopoPosition;
  limit: number;
  filter?: EventSqlFilter;
}

function timelinePageQuery(db: Db, roomId: string, q: PageQuery) {
  let query = db.selectFrom('events').select(COLUMNS).where('room_id', '=', roomId).where('outlier', '=', false).where('rejected_reason', 'is', null);
  const { from, to } = q;
  if (from) {
    query = query.where(q.dir === 'b' ? sql<boolean>`(depth, stream_ordering) <= (${from.depth}, ${from.stream})` : sql<boolean>`(depth, stream_ordering) > (${from.depth}, ${from.stream})`);
  }
  if (to) {
    query = query.where(q.dir === 'b' ? sql<boolean>`(depth, stream_ordering) > (${to.depth}, ${to.stream})` : sql<boolean>`(depth, stream_ordering) <= (${to.depth}, ${to.stream})`);
  }
  const f = q.filter;
  if (f) {
    const types = f.types;
    if (types !== undefined) {
      query = types.length === 0 ? query.where(sql<boolean>`false`) : query.where((eb) => eb.or(types.map((t) => (t.includes('*') ? eb('type', 'like', likePattern(t)) : eb('type', '=', t)))));
    }
    const notTypes = f.notTypes;
    if (notTypes !== undefined && notTypes.length > 0) {
      query = query.where((eb) => eb.not(eb.or(notTypes.map((t) => (t.includes('*') ? eb('type', 'like', likePattern(t)) : eb('type', '=', t))))));
    }
    if (f.senders !== undefined) query = f.senders.length === 0 ? query.where(sql<boolean>`false`) : query.where('sender', 'in', [...f.senders]);
    if (f.notSenders !== undefined && f.notSenders.length > 0) query = query.where('sender', 'not in', [...f.notSenders]);
    if (f.containsUrl !== undefined) {
      query = query.where(f.containsUrl ? sql<boolean>`jsonb_typeof(json->'content'->'url') = 'string'` : sql<boolean>`jsonb_typeof(json->'content'->'url') IS DISTINCT FROM 'string'`);
    }
  }
  const order = q.dir === 'b' ? 'desc' : 'asc';
  return query.orderBy('depth', order).orderBy('stream_ordering', order).limit(q.limit);
}

/** One page of a room's timeline in topological order (newest first going backwards). */
export async function timelinePage(db: Db, roomId: string, q: PageQuery): Promise<TimelineEvent[]> {
  return timelinePageQuery(db, roomId, q).execute();
}

/** EXPLAIN ANALYZE of the very query timelinePage runs (for the benchmark). */
export async function explainTimelinePage(db: Db, roomId: string, q: PageQuery): Promise<string[]> {
  const rows = await timelinePageQuery(db, roomId, q).explain(undefined, sql`analyze`);
  return rows.map((r) => String(Object.values(r)[0]));
}

/** The room's last event in topological order, as a position. */
export async function roomEndPosition(db: Db, roomId: string): Promise<TopoPosition | undefined> {
  const r = await db
    .selectFrom('events')
    .select(['depth', 'stream_ordering'])
    .where('room_id', '=', roomId)
    .orderBy('depth', 'desc')
    .orderBy('stream_ordering', 'desc')
    .limit(1)
    .executeTakeFirst();
  return r ? { depth: Number(r.depth), stream: Number(r.stream_ordering) } : undefined;
}

/**
 * The topological position of a stream position (a sync token): the depth
 * of the room's last event at or before it.
 */
export async function positionAtStream(db: Db, roomId: string, stream: number): Promise<TopoPosition> {
  const r = await db
    .selectFrom('events')
    .select(['depth'])
    .where('room_id', '=', roomId)
    .where('stream_ordering', '<=', stream)
    .orderBy('stream_ordering', 'desc')
    .limit(1)
    .executeTakeFirst();
  return { depth: r ? Number(r.depth) : 0, stream };
}

/** The last timeline event at or before a position. */
export async function lastEventAtOrBefore(db: Db, roomId: string, pos: TopoPosition): Promise<TimelineEvent | undefined> {
  const [e] = await timelinePage(db, roomId, { dir: 'b', from: pos, limit: 1 });
  return e;
}

export async function getTimelineEvent(db: Db, eventId: string): Promise<(TimelineEvent & { outlier: boolean }) | undefined> {
  return db.selectFrom('events').select([...COLUMNS, 'outlier']).where('event_id', '=', eventId).executeTakeFirst();
}

export async function getTimelineEvents(db: Db, ids: readonly string[]): Promise<Map<string, TimelineEvent>> {
  const out = new Map<string, TimelineEvent>();
  if (ids.length === 0) return out;
  const rows = await db.selectFrom('events').select(COLUMNS).where('event_id', 'in', [...new Set(ids)]).execute();
  for (const r of rows) out.set(r.event_id, r);
  return out;
}

/** The event nearest a timestamp: the first at or after it (f), or the last at or before it (b). */
export async function eventNearTimestamp(db: Db, roomId: string, ts: number, dir: 'f' | 'b'): Promise<{ event_id: string; origin_server_ts: number } | undefined> {
  const order = dir === 'f' ? 'asc' : 'desc';
  const r = await db
    .selectFrom('events')
    .select(['event_id', 'origin_server_ts'])
    .where('room_id', '=', roomId)
    .where('origin_server_ts', dir === 'f' ? '>=' : '<=', ts)
    .where('outlier', '=', false)
    .where('rejected_reason', 'is', null)
    .orderBy('origin_server_ts', order)
    .orderBy('depth', order)
    .orderBy('stream_ordering', order)
    .limit(1)
    .executeTakeFirst();
  return r ? { event_id: r.event_id, origin_server_ts: Number(r.origin_server_ts) } : undefined;
}

/** The state at a group, restricted to one event type: state key → event id. */
export async function stateOfTypeAtGroup(db: Db, group: number, type: string): Promise<Map<string, string>> {
  const res = await sql<{ state_key: string; event_id: string }>`
    WITH RECURSIVE chain(id, prev_group, hop) AS (
      SELECT id, prev_group, 0 FROM state_groups WHERE id = ${group}
      UNION ALL
      SELECT g.id, g.prev_group, c.hop + 1
      FROM chain c CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev_group OFFSET 0) g
    )
    SELECT DISTINCT ON (s.state_key) s.state_key, s.event_id
    FROM state_groups_state s JOIN chain c ON s.state_group = c.id
    WHERE s.type = ${type}
    ORDER BY s.state_key, c.hop ASC`.execute(db);
  const out = new Map<string, string>();
  for (const r of res.rows) out.set(r.state_key, r.event_id);
  return out;
}

/**
 * Selected state keys at several groups in one query: group → (`type NUL
 * state_key` → event id). Each group's delta chain is walked as in
 * stateAtGroup, and the nearest entry per key wins.
 */
export async function stateKeysAtGroups(db: Db, groups: readonly number[], keys: readonly (readonly [string, string])[]): Promise<Map<number, Map<string, string>>> {
  const out = new Map<number, Map<string, string>>();
  for (const g of groups) out.set(g, new Map());
  if (groups.length === 0 || keys.length === 0) return out;
  const res = await sql<{ start: number; type: string; state_key: string; event_id: string }>`
    WITH RECURSIVE chain(start, id, prev_group, hop) AS (
      SELECT id, id, prev_group, 0 FROM state_groups WHERE id IN (${sql.join([...new Set(groups)])})
      UNION ALL
      SELECT c.start, g.id, g.prev_group, c.hop + 1
      FROM chain c CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev_group OFFSET 0) g
    )
    SELECT DISTINCT ON (c.start, s.type, s.state_key) c.start, s.type, s.state_key, s.event_id
    FROM state_groups_state s JOIN chain c ON s.state_group = c.id
    WHERE (s.type, s.state_key) IN (${sql.join(keys.map(([t, k]) => sql`(${t}, ${k})`))})
    ORDER BY c.start, s.type, s.state_key, c.hop ASC`.execute(db);
  for (const r of res.rows) out.get(Number(r.start))?.set(`${r.type}\u0000${r.state_key}`, r.event_id);
  return out;
}

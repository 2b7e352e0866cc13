/**
 * Reading a room's timeline: pages in topological order (depth, then stream
 * ordering) over `events_room_topo`, positions for tokens, the event nearest
 * a timestamp (`events_room_ts`). Outliers and rejected events are never
 * part of a timeline.
 */
import { sql } from 'kysely';
import { timelineCondition, type EventSqlFilter } from './event-filter-sql.js';
import type { StoredEvent } from './events.js';
import type { Db } from './db.js';

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
  let query = db.selectFrom('events as e').select(COLUMNS).where('room_id', '=', roomId).where(timelineCondition(q.filter));
  const { from, to } = q;
  if (from) {
    query = query.where(
      q.dir === 'b' ? sql<boolean>`(depth, stream_ordering) <= (${from.depth}, ${from.stream})` : sql<boolean>`(depth, stream_ordering) > (${from.depth}, ${from.stream})`,
    );
  }
  if (to) {
    query = query.where(
      q.dir === 'b' ? sql<boolean>`(depth, stream_ordering) > (${to.depth}, ${to.stream})` : sql<boolean>`(depth, stream_ordering) <= (${to.depth}, ${to.stream})`,
    );
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

export async function getTimelineEvent(db: Db, eventId: string): Promise<(TimelineEvent & { outlier: boolean; soft_failed: boolean }) | undefined> {
  return db
    .selectFrom('events')
    .select([...COLUMNS, 'outlier', 'soft_failed'])
    .where('event_id', '=', eventId)
    .executeTakeFirst();
}

/** Events by id, with their state group (timeline or not); ids are read in chunks of 5000, as one array parameter each. */
export async function getTimelineEvents(db: Db, ids: readonly string[]): Promise<Map<string, TimelineEvent>> {
  const out = new Map<string, TimelineEvent>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 5000) {
    const chunk = unique.slice(i, i + 5000);
    const rows = await db
      .selectFrom('events')
      .select(COLUMNS)
      .where(sql<boolean>`event_id = ANY(${sql.val(chunk)}::text[])`)
      .execute();
    for (const r of rows) out.set(r.event_id, r);
  }
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
    .where('soft_failed', '=', false)
    .orderBy('origin_server_ts', order)
    .orderBy('depth', order)
    .orderBy('stream_ordering', order)
    .limit(1)
    .executeTakeFirst();
  return r ? { event_id: r.event_id, origin_server_ts: Number(r.origin_server_ts) } : undefined;
}

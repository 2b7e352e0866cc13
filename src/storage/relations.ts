/**
 * Queries on event relationships (`event_relations`) and thread summaries
 * (`threads`). Every query here starts from an index: children by parent
 * (`event_relations_parent`), children by parent and sender
 * (`event_relations_parent_sender`), threads by room in latest-reply order
 * (`threads_room_latest`).
 */
import { sql } from 'kysely';
import type { EventRelationsTable, Schema } from './schema.js';
import type { TopoPosition } from './timeline.js';
import type { Db } from './db.js';

export type RelationRow = EventRelationsTable;

export type { TopoPosition };

export async function insertRelation(db: Db, row: RelationRow): Promise<void> {
  await db
    .insertInto('event_relations')
    .values(row)
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
}

/** Removes an event's relation (it was redacted); returns the removed row, if there was one. */
export async function deleteRelation(db: Db, eventId: string): Promise<Pick<RelationRow, 'relates_to_id' | 'relation_type'> | undefined> {
  return db.deleteFrom('event_relations').where('event_id', '=', eventId).returning(['relates_to_id', 'relation_type']).executeTakeFirst();
}

/** The relation an event itself has, if any. */
export async function relationOf(db: Db, eventId: string): Promise<Pick<RelationRow, 'relates_to_id' | 'relation_type'> | undefined> {
  return db.selectFrom('event_relations').select(['relates_to_id', 'relation_type']).where('event_id', '=', eventId).executeTakeFirst();
}

/** Whether any stored event relates to `eventId`. */
export async function isRelationTarget(db: Db, eventId: string): Promise<boolean> {
  const r = await db.selectFrom('event_relations').select('event_id').where('relates_to_id', '=', eventId).limit(1).executeTakeFirst();
  return r !== undefined;
}

/** Which of these events have any children at all (one index probe each). */
export async function relationTargets(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('event_relations')
    .select('relates_to_id')
    .distinct()
    .where('relates_to_id', 'in', [...new Set(ids)])
    .execute();
  return new Set(rows.map((r) => r.relates_to_id));
}

/** Whether `sender` already annotated `parentId` with this event type and key. */
export async function hasAnnotated(db: Db, parentId: string, eventType: string, key: string, sender: string): Promise<boolean> {
  const r = await db
    .selectFrom('event_relations')
    .select('event_id')
    .where('relates_to_id', '=', parentId)
    .where('sender', '=', sender)
    .where('relation_type', '=', 'm.annotation')
    .where('type', '=', eventType)
    .where('aggregation_key', '=', key)
    .limit(1)
    .executeTakeFirst();
  return r !== undefined;
}

/** A thread reply arrived: count it and move the thread's latest reply forward if it is later. */
export async function addThreadReply(db: Db, r: { threadId: string; roomId: string; eventId: string; depth: number; stream: number }): Promise<void> {
  await sql`
    INSERT INTO threads (thread_id, room_id, latest_event_id, latest_depth, latest_stream_ordering, reply_count)
    VALUES (${r.threadId}, ${r.roomId}, ${r.eventId}, ${r.depth}, ${r.stream}, 1)
    ON CONFLICT (thread_id) DO UPDATE SET
      reply_count = threads.reply_count + 1,
      latest_event_id = CASE WHEN (EXCLUDED.latest_depth, EXCLUDED.latest_stream_ordering) > (threads.latest_depth, threads.latest_stream_ordering)
        THEN EXCLUDED.latest_event_id ELSE threads.latest_event_id END,
      latest_depth = GREATEST(threads.latest_depth, EXCLUDED.latest_depth),
      latest_stream_ordering = CASE WHEN (EXCLUDED.latest_depth, EXCLUDED.latest_stream_ordering) > (threads.latest_depth, threads.latest_stream_ordering)
        THEN EXCLUDED.latest_stream_ordering ELSE threads.latest_stream_ordering END`.execute(db);
}

/** Recomputes a thread's summary from its replies (after one was redacted); drops it when none are left. */
export async function recomputeThread(db: Db, threadId: string): Promise<void> {
  const latest = await db
    .selectFrom('event_relations')
    .select(['event_id', 'depth', 'stream_ordering'])
    .where('relates_to_id', '=', threadId)
    .where('relation_type', '=', 'm.thread')
    .orderBy('depth', 'desc')
    .orderBy('stream_ordering', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!latest) {
    await db.deleteFrom('threads').where('thread_id', '=', threadId).execute();
    return;
  }
  const count = await db
    .selectFrom('event_relations')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('relates_to_id', '=', threadId)
    .where('relation_type', '=', 'm.thread')
    .executeTakeFirstOrThrow();
  await db
    .updateTable('threads')
    .set({ latest_event_id: latest.event_id, latest_depth: latest.depth, latest_stream_ordering: latest.stream_ordering, reply_count: Number(count.n) })
    .where('thread_id', '=', threadId)
    .execute();
}

export interface RelationsPageQuery {
  parentId: string;
  roomId: string;
  relType?: string;
  eventType?: string;
  dir: 'b' | 'f';
  /** Backwards: rows at or before it; forwards: rows after it. */
  from?: TopoPosition;
  /** Backwards: rows after it; forwards: rows at or before it. */
  to?: TopoPosition;
  limit: number;
  /** Follow relations of relations, up to this many levels (1 = direct children only). */
  levels: number;
  /** Leave out edits (the parent is redacted, so its edits no longer apply). */
  excludeEdits: boolean;
}

/** A page of a parent's children in topological order (newest first going backwards). */
export async function relationsPage(db: Db, q: RelationsPageQuery): Promise<{ event_id: string; depth: number; stream_ordering: number }[]> {
  const conds = [sql`r.room_id = ${q.roomId}`];
  if (q.relType !== undefined) conds.push(sql`r.relation_type = ${q.relType}`);
  if (q.eventType !== undefined) conds.push(sql`r.type = ${q.eventType}`);
  if (q.excludeEdits) conds.push(sql`r.relation_type <> 'm.replace'`);
  if (q.from)
    conds.push(q.dir === 'b' ? sql`(r.depth, r.stream_ordering) <= (${q.from.depth}, ${q.from.stream})` : sql`(r.depth, r.stream_ordering) > (${q.from.depth}, ${q.from.stream})`);
  if (q.to) conds.push(q.dir === 'b' ? sql`(r.depth, r.stream_ordering) > (${q.to.depth}, ${q.to.stream})` : sql`(r.depth, r.stream_ordering) <= (${q.to.depth}, ${q.to.stream})`);
  const order = q.dir === 'b' ? sql`DESC` : sql`ASC`;
  const where = sql.join(conds, sql` AND `);
  if (q.levels <= 1) {
    const res = await sql<{ event_id: string; depth: number; stream_ordering: number }>`
      SELECT r.event_id, r.depth, r.stream_ordering FROM event_relations r
      WHERE r.relates_to_id = ${q.parentId} AND ${where}
      ORDER BY r.depth ${order}, r.stream_ordering ${order}
      LIMIT ${q.limit}`.execute(db);
    return res.rows.map(numeric);
  }
  const res = await sql<{ event_id: string; depth: number; stream_ordering: number }>`
    WITH RECURSIVE tree(event_id, level) AS (
      SELECT event_id, 1 FROM event_relations WHERE relates_to_id = ${q.parentId}
      UNION
      SELECT c.event_id, t.level + 1 FROM event_relations c JOIN tree t ON c.relates_to_id = t.event_id WHERE t.level < ${q.levels}
    )
    SELECT DISTINCT r.event_id, r.depth, r.stream_ordering FROM tree t JOIN event_relations r ON r.event_id = t.event_id
    WHERE ${where}
    ORDER BY r.depth ${order}, r.stream_ordering ${order}
    LIMIT ${q.limit}`.execute(db);
  return res.rows.map(numeric);
}

function numeric<T extends { depth: number; stream_ordering: number }>(r: T): T {
  return { ...r, depth: Number(r.depth), stream_ordering: Number(r.stream_ordering) };
}

export interface ThreadSummaryRow {
  thread_id: string;
  latest_event_id: string;
  reply_count: number;
}

export async function threadSummaries(db: Db, rootIds: readonly string[]): Promise<Map<string, ThreadSummaryRow>> {
  const out = new Map<string, ThreadSummaryRow>();
  if (rootIds.length === 0) return out;
  const rows = await db
    .selectFrom('threads')
    .select(['thread_id', 'latest_event_id', 'reply_count'])
    .where('thread_id', 'in', [...new Set(rootIds)])
    .execute();
  for (const r of rows) out.set(r.thread_id, r);
  return out;
}

/** The thread roots (of those given) where `userId` sent a reply. */
export async function threadsRepliedTo(db: Db, rootIds: readonly string[], userId: string): Promise<Set<string>> {
  if (rootIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('event_relations')
    .select('relates_to_id')
    .distinct()
    .where('relates_to_id', 'in', [...new Set(rootIds)])
    .where('sender', '=', userId)
    .where('relation_type', '=', 'm.thread')
    .execute();
  return new Set(rows.map((r) => r.relates_to_id));
}

/**
 * The edit that applies to each original: its latest `m.replace` child sent
 * by the same sender with the same type (highest origin_server_ts, then
 * highest event id, as the spec orders replacements).
 */
export async function latestEdits(db: Db, originals: readonly { event_id: string; sender: string; type: string }[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (originals.length === 0) return out;
  const tuples = sql.join(originals.map((o) => sql`(${o.event_id}, ${o.sender}, ${o.type})`));
  const res = await sql<{ relates_to_id: string; event_id: string }>`
    SELECT DISTINCT ON (relates_to_id) relates_to_id, event_id FROM event_relations
    WHERE (relates_to_id, sender, type) IN (${tuples}) AND relation_type = 'm.replace'
    ORDER BY relates_to_id, origin_server_ts DESC, event_id DESC`.execute(db);
  for (const r of res.rows) out.set(r.relates_to_id, r.event_id);
  return out;
}

/** `m.reference` children of each parent, oldest first. */
export async function referencesOf(db: Db, parentIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (parentIds.length === 0) return out;
  const rows = await db
    .selectFrom('event_relations')
    .select(['relates_to_id', 'event_id'])
    .where('relates_to_id', 'in', [...new Set(parentIds)])
    .where('relation_type', '=', 'm.reference')
    .orderBy('relates_to_id')
    .orderBy('depth')
    .orderBy('stream_ordering')
    .execute();
  for (const r of rows) {
    const list = out.get(r.relates_to_id) ?? [];
    list.push(r.event_id);
    out.set(r.relates_to_id, list);
  }
  return out;
}

/**
 * Thread roots of a room, latest reply first. `from` bounds the latest
 * reply's position (at or before it). With `participant`, only threads that
 * user started or replied in.
 */
export async function threadsPage(
  db: Db,
  roomId: string,
  opts: { from?: TopoPosition; limit: number; participant?: string },
): Promise<{ thread_id: string; latest_depth: number; latest_stream_ordering: number }[]> {
  let q = db.selectFrom('threads as t').select(['t.thread_id', 't.latest_depth', 't.latest_stream_ordering']).where('t.room_id', '=', roomId);
  if (opts.from) q = q.where(sql<boolean>`(t.latest_depth, t.latest_stream_ordering) <= (${opts.from.depth}, ${opts.from.stream})`);
  const user = opts.participant;
  if (user !== undefined) {
    q = q.where((eb) =>
      eb.or([
        eb.exists(eb.selectFrom('events as e').select('e.event_id').whereRef('e.event_id', '=', 't.thread_id').where('e.sender', '=', user)),
        eb.exists(
          eb
            .selectFrom('event_relations as r')
            .select('r.event_id')
            .whereRef('r.relates_to_id', '=', 't.thread_id')
            .where('r.sender', '=', user)
            .where('r.relation_type', '=', 'm.thread'),
        ),
      ]),
    );
  }
  const rows = await q.orderBy('t.latest_depth', 'desc').orderBy('t.latest_stream_ordering', 'desc').limit(opts.limit).execute();
  return rows.map((r) => ({ thread_id: r.thread_id, latest_depth: Number(r.latest_depth), latest_stream_ordering: Number(r.latest_stream_ordering) }));
}

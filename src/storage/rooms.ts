/** Queries on rooms and the room DAG's edges and forward extremities. */
import { sql } from 'kysely';
import type { RoomsTable, Schema } from './schema.js';
import type { Db } from './db.js';

export type RoomRow = Omit<RoomsTable, 'is_public'> & { is_public: boolean };

export async function getRoom(db: Db, roomId: string): Promise<RoomRow | undefined> {
  return db.selectFrom('rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
}

export async function insertRoom(db: Db, r: { roomId: string; version: string; creator: string; isPublic: boolean; now: number }): Promise<void> {
  await db
    .insertInto('rooms')
    .values({ room_id: r.roomId, room_version: r.version, creator: r.creator, is_public: r.isPublic, current_state_group: null, created_ts: r.now })
    .execute();
}

/** A room another server hosts, first known here (a join, an invite): its row unless one exists. */
export async function insertRoomIfMissing(db: Db, r: { roomId: string; version: string; creator: string; now: number }): Promise<void> {
  await db
    .insertInto('rooms')
    .values({ room_id: r.roomId, room_version: r.version, creator: r.creator, is_public: false, current_state_group: null, created_ts: r.now })
    .onConflict((oc) => oc.column('room_id').doNothing())
    .execute();
}

export async function setRoomStateGroup(db: Db, roomId: string, group: number): Promise<void> {
  await db.updateTable('rooms').set({ current_state_group: group }).where('room_id', '=', roomId).execute();
}

export async function setRoomPublic(db: Db, roomId: string, isPublic: boolean): Promise<void> {
  await db.updateTable('rooms').set({ is_public: isPublic }).where('room_id', '=', roomId).execute();
}

export async function forwardExtremities(db: Db, roomId: string): Promise<{ event_id: string; depth: number }[]> {
  return db
    .selectFrom('forward_extremities as f')
    .innerJoin('events as e', 'e.event_id', 'f.event_id')
    .select(['f.event_id', 'e.depth'])
    .where('f.room_id', '=', roomId)
    .orderBy('e.depth', 'desc')
    .execute();
}

/** The new event replaces the extremities it points at (and is not one itself when `eventId` is undefined: a stored event cites it). */
export async function advanceExtremities(db: Db, roomId: string, eventId: string | undefined, prevIds: string[]): Promise<void> {
  if (prevIds.length > 0) {
    await db.deleteFrom('forward_extremities').where('room_id', '=', roomId).where('event_id', 'in', prevIds).execute();
  }
  if (eventId !== undefined)
    await db
      .insertInto('forward_extremities')
      .values({ room_id: roomId, event_id: eventId })
      .onConflict((oc) => oc.doNothing())
      .execute();
}

/**
 * `advanceExtremities`, then the room's forward extremities as they are after it
 * (forwardExtremities' ids, in no order), in one statement.
 */
export async function advanceExtremitiesReturning(db: Db, roomId: string, eventId: string | undefined, prevIds: string[]): Promise<string[]> {
  const added = eventId === undefined ? [] : [eventId];
  // The statements of a WITH see the table as it was: the answer is the old rows less the prev events, plus the new one.
  const res = await sql<{ event_id: string }>`
    WITH gone AS (
      DELETE FROM forward_extremities WHERE room_id = ${roomId} AND event_id = ANY(${sql.val(prevIds)}::text[])
    ), put AS (
      INSERT INTO forward_extremities (room_id, event_id) SELECT ${roomId}, a FROM unnest(${sql.val(added)}::text[]) AS a ON CONFLICT DO NOTHING
    )
    SELECT f.event_id FROM forward_extremities f JOIN events e ON e.event_id = f.event_id
    WHERE f.room_id = ${roomId} AND NOT (f.event_id = ANY(${sql.val(prevIds)}::text[]))
    UNION
    SELECT a FROM unnest(${sql.val(added)}::text[]) AS a`.execute(db);
  return res.rows.map((r) => r.event_id);
}

/** The prev and auth edges of one event (one statement when it has both). */
export async function insertEdges(db: Db, eventId: string, prevIds: string[], authIds: string[]): Promise<void> {
  if (prevIds.length > 0 && authIds.length > 0) {
    await sql`
      WITH p AS (
        INSERT INTO event_edges (event_id, prev_event_id) SELECT ${eventId}, p FROM unnest(${sql.val(prevIds)}::text[]) AS p ON CONFLICT DO NOTHING
      )
      INSERT INTO event_auth_edges (event_id, auth_id) SELECT ${eventId}, a FROM unnest(${sql.val(authIds)}::text[]) AS a ON CONFLICT DO NOTHING`.execute(db);
    return;
  }
  if (prevIds.length > 0) {
    await db
      .insertInto('event_edges')
      .values(prevIds.map((p) => ({ event_id: eventId, prev_event_id: p })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
  if (authIds.length > 0) {
    await db
      .insertInto('event_auth_edges')
      .values(authIds.map((a) => ({ event_id: eventId, auth_id: a })))
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** The prev and auth edges of many events, in multi-row inserts (1,000 rows at a time). */
export async function insertEdgesMany(db: Db, events: readonly { eventId: string; prevIds: readonly string[]; authIds: readonly string[] }[]): Promise<void> {
  const prev = events.flatMap((e) => e.prevIds.map((p) => ({ event_id: e.eventId, prev_event_id: p })));
  const auth = events.flatMap((e) => e.authIds.map((a) => ({ event_id: e.eventId, auth_id: a })));
  for (let i = 0; i < prev.length; i += 1000)
    await db
      .insertInto('event_edges')
      .values(prev.slice(i, i + 1000))
      .onConflict((oc) => oc.doNothing())
      .execute();
  for (let i = 0; i < auth.length; i += 1000)
    await db
      .insertInto('event_auth_edges')
      .values(auth.slice(i, i + 1000))
      .onConflict((oc) => oc.doNothing())
      .execute();
}

/**
 * A room's backward extremities: events cited as prev events by events we
 * hold in the DAG, that we do not hold there ourselves (the edge of the
 * history we have, where backfill would go on). At most `limit`, deepest
 * first.
 */
export async function backwardExtremities(db: Db, roomId: string, limit: number): Promise<string[]> {
  const res = await sql<{ prev_event_id: string }>`
    SELECT x.prev_event_id, max(e.depth) AS depth
    FROM event_edges x JOIN events e ON e.event_id = x.event_id
    WHERE e.room_id = ${roomId} AND NOT e.outlier AND e.rejected_reason IS NULL
      AND NOT EXISTS (SELECT 1 FROM events p WHERE p.event_id = x.prev_event_id AND NOT p.outlier)
    GROUP BY x.prev_event_id
    ORDER BY depth DESC
    LIMIT ${limit}`.execute(db);
  return res.rows.map((r) => r.prev_event_id);
}

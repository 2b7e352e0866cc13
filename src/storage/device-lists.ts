/**
 * Queries on device-list changes (migration 0010's `device_lists_stream`):
 * a row each time a user's devices or keys change, at a position that sync
 * tokens carry, and the membership lookups that say who shares a room with
 * whom before and after a window of the events stream.
 */
import { sql } from 'kysely';
import { textArray } from './sql-arrays.js';
import type { Db } from './db.js';

const num = (v: unknown): number => Number(v);

/**
 * Records that a user's devices changed: one row per device named (or one
 * row with no device, for a change to the user's cross-signing keys when
 * none is named). Returns the newest position written.
 */
export async function recordDeviceListChange(db: Db, userId: string, deviceIds: readonly string[], ts: number): Promise<number> {
  const ids = deviceIds.length > 0 ? [...new Set(deviceIds)] : [''];
  const res = await sql<{ stream_id: number }>`
    INSERT INTO device_lists_stream (user_id, device_id, ts)
    SELECT ${userId}, d, ${ts}::bigint FROM unnest(${textArray(ids)}) AS d
    RETURNING stream_id`.execute(db);
  return Math.max(0, ...res.rows.map((r) => num(r.stream_id)));
}

/** A user's latest device-list change (its position and device, '' for cross-signing keys) and the position of the one before it, if any. */
export async function latestDeviceListRow(db: Db, userId: string): Promise<{ stream_id: number; device_id: string; prev_stream_id: number | undefined } | undefined> {
  const rows = await db.selectFrom('device_lists_stream').select(['stream_id', 'device_id']).where('user_id', '=', userId).orderBy('stream_id', 'desc').limit(2).execute();
  const [row, prev] = rows;
  return row ? { stream_id: num(row.stream_id), device_id: row.device_id, prev_stream_id: prev ? num(prev.stream_id) : undefined } : undefined;
}

/** The position of a user's latest device-list change (0 when there was none): `/user/devices`' `stream_id`. */
export async function latestDeviceListChange(db: Db, userId: string): Promise<number> {
  const row = await db
    .selectFrom('device_lists_stream')
    .select((eb) => eb.fn.max('stream_id').as('m'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.m === null || row?.m === undefined ? 0 : num(row.m);
}

/**
 * Users whose devices changed in (after, upto] and who are `userId` or are
 * joined to a room `userId` is joined to (now).
 */
export async function changedDeviceListsVisibleTo(db: Db, userId: string, after: number, upto: number): Promise<string[]> {
  if (upto <= after) return [];
  const res = await sql<{ user_id: string }>`
    SELECT c.user_id FROM (
      SELECT DISTINCT user_id FROM device_lists_stream WHERE stream_id > ${after} AND stream_id <= ${upto}
    ) c
    WHERE c.user_id = ${userId} OR EXISTS (
      SELECT 1 FROM current_state mine
      JOIN current_state theirs ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member'
        AND theirs.state_key = c.user_id AND theirs.membership = 'join'
      WHERE mine.type = 'm.room.member' AND mine.state_key = ${userId} AND mine.membership = 'join'
    )`.execute(db);
  return res.rows.map((r) => r.user_id);
}

export interface MemberChange {
  room_id: string;
  user_id: string;
  membership: string;
}

/**
 * Membership events with a position in (after, upto] in the rooms `userId`
 * is joined to now or had a membership event of their own in that window.
 */
export async function memberChangesInWindow(db: Db, userId: string, after: number, upto: number): Promise<MemberChange[]> {
  if (upto <= after) return [];
  const res = await sql<MemberChange>`
    WITH rooms AS (
      SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = ${userId} AND membership = 'join'
      UNION
      SELECT room_id FROM events
      WHERE type = 'm.room.member' AND state_key = ${userId} AND stream_ordering > ${after} AND stream_ordering <= ${upto}
    )
    SELECT e.room_id, e.state_key AS user_id, coalesce(e.json->'content'->>'membership', '') AS membership
    FROM events e
    WHERE e.type = 'm.room.member' AND e.state_key IS NOT NULL AND e.stream_ordering > ${after} AND e.stream_ordering <= ${upto}
      AND e.room_id IN (SELECT room_id FROM rooms) AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed
    ORDER BY e.stream_ordering`.execute(db);
  return res.rows;
}

/** Each (room, user)'s membership at position `pos` (from their last membership event at or before it); absent when none. */
export async function membershipsAt(db: Db, pairs: readonly { roomId: string; userId: string }[], pos: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (pairs.length === 0) return out;
  const res = await sql<{ room_id: string; user_id: string; membership: string }>`
    SELECT w.room_id, w.user_id, m.membership
    FROM unnest(${textArray(pairs.map((p) => p.roomId))}, ${textArray(pairs.map((p) => p.userId))}) AS w(room_id, user_id)
    CROSS JOIN LATERAL (
      SELECT coalesce(e.json->'content'->>'membership', '') AS membership FROM events e
      WHERE e.type = 'm.room.member' AND e.state_key = w.user_id AND e.room_id = w.room_id AND e.stream_ordering <= ${pos}
        AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed
      ORDER BY e.stream_ordering DESC
      LIMIT 1
    ) m`.execute(db);
  for (const r of res.rows) out.set(`${r.room_id}\u0000${r.user_id}`, r.membership);
  return out;
}

/** The current joined members of these rooms, per room. */
export async function joinedMembersByRoom(db: Db, roomIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (roomIds.length === 0) return out;
  const res = await sql<{ room_id: string; user_id: string }>`
    SELECT room_id, state_key AS user_id FROM current_state
    WHERE room_id = ANY(${textArray(roomIds)}) AND type = 'm.room.member' AND membership = 'join'`.execute(db);
  for (const r of res.rows) {
    let l = out.get(r.room_id);
    if (!l) out.set(r.room_id, (l = []));
    l.push(r.user_id);
  }
  return out;
}

/** Which of `candidates` are joined (now) to a room `userId` is joined to. */
export async function sharingARoomWith(db: Db, userId: string, candidates: readonly string[]): Promise<Set<string>> {
  if (candidates.length === 0) return new Set();
  const res = await sql<{ user_id: string }>`
    SELECT DISTINCT theirs.state_key AS user_id
    FROM current_state mine
    JOIN current_state theirs ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member' AND theirs.membership = 'join'
    WHERE mine.type = 'm.room.member' AND mine.state_key = ${userId} AND mine.membership = 'join'
      AND theirs.state_key = ANY(${textArray(candidates)})`.execute(db);
  return new Set(res.rows.map((r) => r.user_id));
}

/** The users joined to a room `userId` is joined to, and `userId`: whose syncs a change of theirs concerns. */
export async function usersToTell(db: Db, userId: string): Promise<string[]> {
  const res = await sql<{ user_id: string }>`
    SELECT DISTINCT theirs.state_key AS user_id
    FROM current_state mine
    JOIN current_state theirs ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member' AND theirs.membership = 'join'
    WHERE mine.type = 'm.room.member' AND mine.state_key = ${userId} AND mine.membership = 'join'`.execute(db);
  const out = new Set(res.rows.map((r) => r.user_id));
  out.add(userId);
  return [...out];
}

/**
 * Queries behind the federation read endpoints (services/federation/served-events.ts):
 * events with their place in the DAG, prev-event edges to walk, and the
 * membership of one server's users in the current state and in state groups.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** A stored event as the federation endpoints serve it. */
export interface ServedEventRow {
  event_id: string;
  room_id: string;
  type: string;
  state_key: string | null;
  depth: number;
  stream_ordering: number;
  json: Record<string, unknown>;
  outlier: boolean;
  rejected_reason: string | null;
  state_group_before: number | null;
  state_group_after: number | null;
}

const COLUMNS = ['event_id', 'room_id', 'type', 'state_key', 'depth', 'stream_ordering', 'json', 'outlier', 'rejected_reason', 'state_group_before', 'state_group_after'] as const;

/** Events by id (any room; rejected and outliers included: the caller decides), in chunks of 5000. */
export async function servedEvents(db: Db, ids: readonly string[]): Promise<Map<string, ServedEventRow>> {
  const out = new Map<string, ServedEventRow>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 5000) {
    const rows = await db
      .selectFrom('events')
      .select(COLUMNS)
      .where(sql<boolean>`event_id = ANY(${sql.val(unique.slice(i, i + 5000))}::text[])`)
      .execute();
    for (const r of rows) out.set(r.event_id, { ...r, depth: Number(r.depth), stream_ordering: Number(r.stream_ordering) });
  }
  return out;
}

/** Whether any user of `server` is joined to the room now (the user id's part after its first colon is the server name). */
export async function isHostJoined(db: Db, roomId: string, server: string): Promise<boolean> {
  const r = await db
    .selectFrom('current_state')
    .select('state_key')
    .where('room_id', '=', roomId)
    .where('type', '=', 'm.room.member')
    .where('membership', '=', 'join')
    .where(sql<boolean>`substr(state_key, strpos(state_key, ':') + 1) = ${server}`)
    .limit(1)
    .executeTakeFirst();
  return r !== undefined;
}

/** A prev event of one of the events asked about, with its place in the topological order. */
export interface PrevEdge {
  event_id: string;
  prev_event_id: string;
  depth: number;
  stream_ordering: number;
}

/** The prev events of `ids` that are stored in the room with a place in the DAG (not outliers). */
export async function storedPrevEvents(db: Db, roomId: string, ids: readonly string[]): Promise<PrevEdge[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('event_edges as x')
    .innerJoin('events as p', 'p.event_id', 'x.prev_event_id')
    .select(['x.event_id', 'x.prev_event_id', 'p.depth', 'p.stream_ordering'])
    .where(sql<boolean>`x.event_id = ANY(${sql.val([...new Set(ids)])}::text[])`)
    .where('p.room_id', '=', roomId)
    .where('p.outlier', '=', false)
    .execute();
  return rows.map((r) => ({ ...r, depth: Number(r.depth), stream_ordering: Number(r.stream_ordering) }));
}

/** The prev event ids `ids` cite, whether or not those are stored: event id → its prev event ids. */
export async function prevEventIds(db: Db, ids: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('event_edges')
    .select(['event_id', 'prev_event_id'])
    .where(sql<boolean>`event_id = ANY(${sql.val([...new Set(ids)])}::text[])`)
    .orderBy('event_id')
    .orderBy('prev_event_id')
    .execute();
  for (const r of rows) {
    let list = out.get(r.event_id);
    if (!list) out.set(r.event_id, (list = []));
    list.push(r.prev_event_id);
  }
  return out;
}

/** Whether any user of a server is joined, or invited, in a state. */
export interface ServerMembership {
  joined: boolean;
  invited: boolean;
}

/**
 * For each state group, whether a user of `server` is joined or invited in
 * it: the member entries of that server's users, nearest group first along
 * each group's delta chain (bounded by STATE_DELTA_CHAIN_MAX). A group where
 * the server has no member entry is absent from the answer.
 */
export async function serverMembershipAtGroups(db: Db, groups: readonly number[], server: string): Promise<Map<number, ServerMembership>> {
  const out = new Map<number, ServerMembership>();
  const unique = [...new Set(groups)];
  if (unique.length === 0) return out;
  const res = await sql<{ root: number; joined: boolean; invited: boolean }>`
    WITH RECURSIVE chain(root, id, prev_group, hop) AS (
      SELECT g.id, g.id, g.prev_group, 0 FROM state_groups g WHERE g.id = ANY(${sql.val(unique)}::bigint[])
      UNION ALL
      SELECT c.root, g.id, g.prev_group, c.hop + 1
      FROM chain c CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev_group OFFSET 0) g
    ),
    members AS (
      SELECT DISTINCT ON (c.root, s.state_key) c.root, s.event_id
      FROM chain c CROSS JOIN LATERAL (
        SELECT s.state_key, s.event_id FROM state_groups_state s
        WHERE s.state_group = c.id AND s.type = 'm.room.member' AND substr(s.state_key, strpos(s.state_key, ':') + 1) = ${server}
        OFFSET 0
      ) s
      ORDER BY c.root, s.state_key, c.hop ASC
    )
    SELECT m.root,
           bool_or(e.json->'content'->>'membership' = 'join') AS joined,
           bool_or(e.json->'content'->>'membership' = 'invite') AS invited
    FROM members m JOIN events e ON e.event_id = m.event_id
    GROUP BY m.root`.execute(db);
  for (const r of res.rows) out.set(Number(r.root), { joined: r.joined === true, invited: r.invited === true });
  return out;
}

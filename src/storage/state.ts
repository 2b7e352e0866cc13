/**
 * Room state: state groups (deltas on a parent, with a full snapshot every
 * STATE_DELTA_CHAIN_MAX hops) and each room's current state.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';

/** How many deltas may stack before a group stores the whole state again. */
export const STATE_DELTA_CHAIN_MAX = 100;

export type StateKeyTuple = readonly [type: string, stateKey: string];

/**
 * Creates the group for "prev plus these changes". Returns its id. When the
 * parent's chain is already STATE_DELTA_CHAIN_MAX long, the new group is a
 * full snapshot (parent state resolved, changes applied) with no parent.
 */
export async function createStateGroup(db: Db, roomId: string, prevGroup: number | null, changes: { type: string; state_key: string; event_id: string }[]): Promise<number> {
  let chainDepth = 0;
  let parent = prevGroup;
  let rows = changes;
  if (prevGroup !== null) {
    const p = await db.selectFrom('state_groups').select('chain_depth').where('id', '=', prevGroup).executeTakeFirstOrThrow();
    chainDepth = p.chain_depth + 1;
    if (chainDepth > STATE_DELTA_CHAIN_MAX) {
      const full = await stateAtGroup(db, prevGroup);
      for (const c of changes) full.set(`${c.type}\u0000${c.state_key}`, c.event_id);
      rows = [...full].map(([k, event_id]) => {
        const i = k.indexOf('\u0000');
        return { type: k.slice(0, i), state_key: k.slice(i + 1), event_id };
      });
      parent = null;
      chainDepth = 0;
    }
  }
  const g = await db.insertInto('state_groups').values({ room_id: roomId, prev_group: parent, chain_depth: chainDepth }).returning('id').executeTakeFirstOrThrow();
  for (let i = 0; i < rows.length; i += 1000) {
    await db
      .insertInto('state_groups_state')
      .values(rows.slice(i, i + 1000).map((r) => ({ state_group: g.id, type: r.type, state_key: r.state_key, event_id: r.event_id })))
      .execute();
  }
  return g.id;
}

/**
 * The state at a group, as `type NUL state_key` → event id: all of it, only
 * the keys listed, or (`{ type }`) every key of one event type.
 */
export async function stateAtGroup(db: Db, group: number, only?: readonly StateKeyTuple[] | { type: string }): Promise<Map<string, string>> {
  // Walk the chain (bounded by STATE_DELTA_CHAIN_MAX) and keep, per key, the nearest group's entry.
  let filter = sql``;
  if (only !== undefined && 'type' in only) filter = sql`AND s.type = ${only.type}`;
  else if (only !== undefined && only.length > 0) filter = sql`AND (s.type, s.state_key) IN (${sql.join(only.map(([t, k]) => sql`(${t}, ${k})`))})`;
  // Each step is a LATERAL primary-key probe: the planner misjudges a plain
  // recursive join here and scans whole tables (bench/explain.ts: 25-84 ms -> 0.4-26 ms).
  const res = await sql<{ type: string; state_key: string; event_id: string }>`
    WITH RECURSIVE chain(id, prev_group, hop) AS (
      SELECT id, prev_group, 0 FROM state_groups WHERE id = ${group}
      UNION ALL
      SELECT g.id, g.prev_group, c.hop + 1
      FROM chain c CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev_group OFFSET 0) g
    )
    SELECT DISTINCT ON (s.type, s.state_key) s.type, s.state_key, s.event_id
    FROM chain c CROSS JOIN LATERAL (
      SELECT type, state_key, event_id FROM state_groups_state s WHERE s.state_group = c.id ${filter} OFFSET 0
    ) s
    ORDER BY s.type, s.state_key, c.hop ASC`.execute(db);
  const out = new Map<string, string>();
  for (const r of res.rows) out.set(`${r.type}\u0000${r.state_key}`, r.event_id);
  return out;
}

export interface StateLookup {
  group: number;
  type: string;
  stateKey: string;
}

/**
 * The event holding each wanted (type, state_key) in each wanted state
 * group, walking each group's delta chain (bounded by
 * STATE_DELTA_CHAIN_MAX): group → `type NUL state_key` → event id. A key
 * absent from a group's state is absent from its map.
 */
export async function stateAtGroupsForKeys(db: Db, wanted: readonly StateLookup[]): Promise<Map<number, Map<string, string>>> {
  const out = new Map<number, Map<string, string>>();
  for (let i = 0; i < wanted.length; i += 2000) {
    const chunk = wanted.slice(i, i + 2000);
    // Each group's chain as an array (nearest first), then one primary-key probe per (key, group in chain):
    // written so that no plan can join the wanted keys against the whole of state_groups_state.
    const res = await sql<{ root: number; type: string; state_key: string; event_id: string }>`
      WITH RECURSIVE wanted(root, type, state_key) AS (
        SELECT * FROM unnest(${sql.val(chunk.map((w) => w.group))}::bigint[], ${sql.val(chunk.map((w) => w.type))}::text[], ${sql.val(chunk.map((w) => w.stateKey))}::text[])
      ),
      chain(root, id, prev_group, hop) AS (
        SELECT g.id, g.id, g.prev_group, 0 FROM state_groups g WHERE g.id = ANY(${sql.val([...new Set(chunk.map((w) => w.group))])}::bigint[])
        UNION ALL
        SELECT c.root, g.id, g.prev_group, c.hop + 1
        FROM chain c CROSS JOIN LATERAL (SELECT id, prev_group FROM state_groups WHERE id = c.prev_group OFFSET 0) g
      ),
      chains AS (SELECT root, array_agg(id ORDER BY hop) AS ids FROM chain GROUP BY root)
      SELECT w.root, w.type, w.state_key, x.event_id
      FROM wanted w
      JOIN chains ch ON ch.root = w.root
      CROSS JOIN LATERAL (
        SELECT s.event_id FROM state_groups_state s
        WHERE s.state_group = ANY(ch.ids) AND s.type = w.type AND s.state_key = w.state_key
        ORDER BY array_position(ch.ids, s.state_group)
        LIMIT 1
      ) x`.execute(db);
    for (const r of res.rows) {
      const g = Number(r.root);
      let m = out.get(g);
      if (!m) out.set(g, (m = new Map()));
      m.set(`${r.type}\u0000${r.state_key}`, r.event_id);
    }
  }
  return out;
}

export interface CurrentStateRow {
  type: string;
  state_key: string;
  event_id: string;
  membership: string | null;
  stream_ordering: number;
}

export async function currentState(db: Db, roomId: string, keys?: readonly StateKeyTuple[]): Promise<CurrentStateRow[]> {
  let q = db.selectFrom('current_state').select(['type', 'state_key', 'event_id', 'membership', 'stream_ordering']).where('room_id', '=', roomId);
  if (keys) {
    if (keys.length === 0) return [];
    q = q.where((eb) => eb.or(keys.map(([t, k]) => eb.and([eb('type', '=', t), eb('state_key', '=', k)]))));
  }
  return q.execute();
}

export async function setCurrentState(
  db: Db,
  roomId: string,
  row: { type: string; state_key: string; event_id: string; membership: string | null; stream_ordering: number },
): Promise<void> {
  await db
    .insertInto('current_state')
    .values({ room_id: roomId, ...row })
    .onConflict((oc) => oc.columns(['room_id', 'type', 'state_key']).doUpdateSet({ event_id: row.event_id, membership: row.membership, stream_ordering: row.stream_ordering }))
    .execute();
}

/** Rooms where the user's current membership is one of `memberships`. */
export async function roomsForUser(
  db: Db,
  userId: string,
  memberships: readonly string[],
): Promise<{ room_id: string; membership: string; event_id: string; stream_ordering: number }[]> {
  const rows = await db
    .selectFrom('current_state')
    .select(['room_id', 'membership', 'event_id', 'stream_ordering'])
    .where('type', '=', 'm.room.member')
    .where('state_key', '=', userId)
    .where('membership', 'in', [...memberships])
    .execute();
  return rows.map((r) => ({ ...r, membership: r.membership ?? '' }));
}

/** Current members of a room with the given memberships. */
export async function roomMembers(db: Db, roomId: string, memberships: readonly string[]): Promise<{ user_id: string; membership: string; event_id: string }[]> {
  const rows = await db
    .selectFrom('current_state')
    .select(['state_key', 'membership', 'event_id'])
    .where('room_id', '=', roomId)
    .where('type', '=', 'm.room.member')
    .where('membership', 'in', [...memberships])
    .execute();
  return rows.map((r) => ({ user_id: r.state_key, membership: r.membership ?? '', event_id: r.event_id }));
}

/**
 * Replaces part of a room's current state: each of `eventIds` (stored state
 * events) becomes the current event for its (type, state_key), with its
 * membership and stream ordering read from its row; each of `removed` keys
 * leaves the current state.
 */
export async function replaceCurrentState(db: Tx, roomId: string, eventIds: readonly string[], removed: readonly StateKeyTuple[] = []): Promise<void> {
  if (removed.length > 0) {
    await db
      .deleteFrom('current_state')
      .where('room_id', '=', roomId)
      .where((eb) => eb.or(removed.map(([t, k]) => eb.and([eb('type', '=', t), eb('state_key', '=', k)]))))
      .execute();
  }
  for (let i = 0; i < eventIds.length; i += 1000) {
    const chunk = eventIds.slice(i, i + 1000);
    await sql`
      INSERT INTO current_state (room_id, type, state_key, event_id, membership, stream_ordering)
      SELECT ${roomId}, e.type, e.state_key, e.event_id,
             CASE WHEN e.type = 'm.room.member' AND jsonb_typeof(e.json->'content'->'membership') = 'string' THEN e.json->'content'->>'membership' END,
             e.stream_ordering
      FROM events e WHERE e.event_id = ANY(${sql.val(chunk)}::text[]) AND e.state_key IS NOT NULL
      ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id, membership = EXCLUDED.membership, stream_ordering = EXCLUDED.stream_ordering`.execute(db);
  }
}

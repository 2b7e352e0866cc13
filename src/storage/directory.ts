/**
 * The published room directory: which rooms are listed (`rooms.is_public`)
 * and the summary of each that /publicRooms shows, read from the rooms'
 * current state. A room is shown, as in Synapse, when it is published, has
 * joined members, and can be entered or read by a stranger (join rule
 * public, knock or knock_restricted, or world-readable history).
 */
import { sql, type RawBuilder } from 'kysely';
import type { Db } from './db.js';

export interface PublicRoomRow {
  room_id: string;
  joined_members: number;
  name: string | null;
  topic: string | null;
  canonical_alias: string | null;
  avatar_url: string | null;
  join_rule: string | null;
  history_visibility: string | null;
  guest_access: string | null;
  room_type: string | null;
}

export interface PublicRoomsFilter {
  /** Case-insensitive substring of the name, topic or canonical alias. */
  search?: string;
  /** Room types to keep; null stands for rooms without a type. */
  roomTypes?: (string | null)[];
}

export interface PublicRoomsPage extends PublicRoomsFilter {
  /** Rows after (forwards) or before (backwards) this one, in the directory order. */
  bound?: { joinedMembers: number; roomId: string };
  forwards: boolean;
  limit: number;
}

/** A string field of a state event's content, or NULL when absent or not a string. */
function field(type: string, key: string): RawBuilder<unknown> {
  return sql`max(CASE WHEN s.type = ${type} AND jsonb_typeof(e.json->'content'->${sql.lit(key)}) = 'string' THEN e.json->'content'->>${sql.lit(key)} END)`;
}

const SUMMARY_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.topic',
  'm.room.canonical_alias',
  'm.room.avatar',
  'm.room.join_rules',
  'm.room.history_visibility',
  'm.room.guest_access',
];

function listed(): RawBuilder<PublicRoomRow> {
  return sql<PublicRoomRow>`
    SELECT r.room_id,
      (SELECT count(*) FROM current_state m WHERE m.room_id = r.room_id AND m.type = 'm.room.member' AND m.membership = 'join')::int AS joined_members,
      st.name, st.topic, st.canonical_alias, st.avatar_url, st.join_rule, st.history_visibility, st.guest_access, st.room_type
    FROM rooms r
    CROSS JOIN LATERAL (
      SELECT
        ${field('m.room.name', 'name')} AS name,
        ${field('m.room.topic', 'topic')} AS topic,
        ${field('m.room.canonical_alias', 'alias')} AS canonical_alias,
        ${field('m.room.avatar', 'url')} AS avatar_url,
        ${field('m.room.join_rules', 'join_rule')} AS join_rule,
        ${field('m.room.history_visibility', 'history_visibility')} AS history_visibility,
        ${field('m.room.guest_access', 'guest_access')} AS guest_access,
        ${field('m.room.create', 'type')} AS room_type
      FROM current_state s JOIN events e ON e.event_id = s.event_id
      WHERE s.room_id = r.room_id AND s.state_key = '' AND s.type IN (${sql.join(SUMMARY_TYPES)})
    ) st
    WHERE r.is_public`;
}

function conditions(f: PublicRoomsFilter): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [sql`(d.join_rule IN ('public', 'knock', 'knock_restricted') OR d.history_visibility = 'world_readable')`, sql`d.joined_members > 0`];
  if (f.search) {
    const term = f.search.toLowerCase();
    where.push(sql`(strpos(lower(d.name), ${term}) > 0 OR strpos(lower(d.topic), ${term}) > 0 OR strpos(lower(d.canonical_alias), ${term}) > 0)`);
  }
  if (f.roomTypes && f.roomTypes.length > 0) {
    const named = f.roomTypes.filter((t): t is string => t !== null);
    const alts: RawBuilder<unknown>[] = [];
    if (f.roomTypes.includes(null)) alts.push(sql`d.room_type IS NULL`);
    if (named.length > 0) alts.push(sql`d.room_type IN (${sql.join(named)})`);
    where.push(sql`(${sql.join(alts, sql` OR `)})`);
  }
  return where;
}

/** One page of the directory, largest rooms first (room id breaks ties), as Synapse orders it. */
export async function publicRooms(db: Db, p: PublicRoomsPage): Promise<PublicRoomRow[]> {
  const where = conditions(p);
  if (p.bound) {
    const { joinedMembers: n, roomId } = p.bound;
    where.push(
      p.forwards
        ? sql`(d.joined_members < ${n} OR (d.joined_members = ${n} AND d.room_id < ${roomId}))`
        : sql`(d.joined_members > ${n} OR (d.joined_members = ${n} AND d.room_id > ${roomId}))`,
    );
  }
  const dir = p.forwards ? sql`DESC` : sql`ASC`;
  const res = await sql<PublicRoomRow>`
    SELECT d.* FROM (${listed()}) d
    WHERE ${sql.join(where, sql` AND `)}
    ORDER BY d.joined_members ${dir}, d.room_id ${dir}
    LIMIT ${p.limit}`.execute(db);
  return res.rows;
}

/** How many rooms the directory shows for this filter (Synapse's total_room_count_estimate). */
export async function countPublicRooms(db: Db, f: PublicRoomsFilter): Promise<number> {
  const res = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM (${listed()}) d
    WHERE ${sql.join(conditions(f), sql` AND `)}`.execute(db);
  return Number(res.rows[0]?.n ?? 0);
}

/** Whether the room is published in the directory; undefined for an unknown room. */
export async function roomVisibility(db: Db, roomId: string): Promise<boolean | undefined> {
  const r = await db.selectFrom('rooms').select('is_public').where('room_id', '=', roomId).executeTakeFirst();
  return r?.is_public;
}

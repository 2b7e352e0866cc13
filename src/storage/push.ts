/**
 * Push rules and notifications (migration 0008): users' own rules and their
 * changes to the server-default ones; the push actions each event produced
 * for each user; the read positions that unread counts start from.
 */
import { sql } from 'kysely';
import { textArray } from './sql-arrays.js';
import type { Db, Tx } from './db.js';

const json = (v: unknown) => sql<never>`${JSON.stringify(v)}::jsonb`;

export interface UserRuleRow {
  user_id: string;
  kind: string;
  rule_id: string;
  priority: number;
  conditions: unknown[] | null;
  pattern: string | null;
  actions: unknown[];
  enabled: boolean;
}

export interface DefaultOverrideRow {
  user_id: string;
  kind: string;
  rule_id: string;
  enabled: boolean | null;
  actions: unknown[] | null;
}

/** The own rules of these users. */
export async function userRules(db: Db, userIds: readonly string[]): Promise<UserRuleRow[]> {
  if (userIds.length === 0) return [];
  return db
    .selectFrom('push_rules')
    .select(['user_id', 'kind', 'rule_id', 'priority', 'conditions', 'pattern', 'actions', 'enabled'])
    .where('user_id', 'in', [...new Set(userIds)])
    .execute();
}

/** These users' changes to server-default rules. */
export async function defaultOverrides(db: Db, userIds: readonly string[]): Promise<DefaultOverrideRow[]> {
  if (userIds.length === 0) return [];
  return db
    .selectFrom('push_rules_defaults')
    .select(['user_id', 'kind', 'rule_id', 'enabled', 'actions'])
    .where('user_id', 'in', [...new Set(userIds)])
    .execute();
}

export async function getUserRule(tx: Tx, userId: string, kind: string, ruleId: string): Promise<UserRuleRow | undefined> {
  return tx
    .selectFrom('push_rules')
    .select(['user_id', 'kind', 'rule_id', 'priority', 'conditions', 'pattern', 'actions', 'enabled'])
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('rule_id', '=', ruleId)
    .forUpdate()
    .executeTakeFirst();
}

/** The highest priority among the user's rules of a kind, or undefined when there are none. */
export async function maxPriority(db: Db, userId: string, kind: string): Promise<number | undefined> {
  const r = await db
    .selectFrom('push_rules')
    .select((eb) => eb.fn.max('priority').as('m'))
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .executeTakeFirst();
  return r?.m === null || r?.m === undefined ? undefined : Number(r.m);
}

/** Moves every rule of the kind at or above `from` one step up, to make room at `from`. */
export async function shiftPriorities(db: Db, userId: string, kind: string, from: number): Promise<void> {
  await db
    .updateTable('push_rules')
    .set((eb) => ({ priority: eb('priority', '+', 1) }))
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('priority', '>=', from)
    .execute();
}

/** Inserts or replaces a rule's definition and priority; a new rule is enabled, an existing one keeps its enabled state. */
export async function putUserRule(
  db: Db,
  r: { userId: string; kind: string; ruleId: string; priority: number; conditions: unknown[] | null; pattern: string | null; actions: unknown[] },
): Promise<void> {
  await db
    .insertInto('push_rules')
    .values({
      user_id: r.userId,
      kind: r.kind,
      rule_id: r.ruleId,
      priority: r.priority,
      conditions: r.conditions === null ? null : json(r.conditions),
      pattern: r.pattern,
      actions: json(r.actions),
      enabled: true,
    })
    .onConflict((oc) =>
      oc.columns(['user_id', 'kind', 'rule_id']).doUpdateSet((eb) => ({
        priority: eb.ref('excluded.priority'),
        conditions: eb.ref('excluded.conditions'),
        pattern: eb.ref('excluded.pattern'),
        actions: eb.ref('excluded.actions'),
      })),
    )
    .execute();
}

/** Deletes one of the user's rules; returns whether it existed. */
export async function deleteUserRule(db: Db, userId: string, kind: string, ruleId: string): Promise<boolean> {
  const r = await db.deleteFrom('push_rules').where('user_id', '=', userId).where('kind', '=', kind).where('rule_id', '=', ruleId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Changes `enabled` or `actions` of one of the user's rules; returns whether it existed. */
export async function updateUserRule(db: Db, userId: string, kind: string, ruleId: string, change: { enabled?: boolean; actions?: unknown[] }): Promise<boolean> {
  const r = await db
    .updateTable('push_rules')
    .set({
      ...(change.enabled !== undefined ? { enabled: change.enabled } : {}),
      ...(change.actions !== undefined ? { actions: json(change.actions) } : {}),
    })
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('rule_id', '=', ruleId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Records a user's change to a server-default rule, keeping the other field as it was. */
export async function putDefaultOverride(db: Db, userId: string, kind: string, ruleId: string, change: { enabled?: boolean; actions?: unknown[] }): Promise<void> {
  const enabled = change.enabled ?? null;
  const actions = change.actions === undefined ? null : json(change.actions);
  await db
    .insertInto('push_rules_defaults')
    .values({ user_id: userId, kind, rule_id: ruleId, enabled, actions })
    .onConflict((oc) =>
      oc.columns(['user_id', 'kind', 'rule_id']).doUpdateSet((eb) => ({
        enabled: change.enabled === undefined ? eb.ref('push_rules_defaults.enabled') : eb.ref('excluded.enabled'),
        actions: change.actions === undefined ? eb.ref('push_rules_defaults.actions') : eb.ref('excluded.actions'),
      })),
    )
    .execute();
}

/** The event the notifications belong to: the same for every row of one insert. */
export interface PushActionEvent {
  room_id: string;
  stream_ordering: number;
  event_id: string;
  thread_id: string;
  ts: number;
}

/** One user's notification: their actions, given as an index into the insert's list of distinct action lists. */
export interface PushActionRow {
  user_id: string;
  actions: number;
  highlight: boolean;
}

/**
 * Stores the notifications one event produced, in one statement. Only what
 * differs per user goes in as arrays (`unnest`); the event's columns are
 * single parameters and each distinct action list is sent once (a big room
 * gives thousands of rows but a handful of distinct action lists), which
 * keeps both the encoding and the statement small.
 */
export async function insertPushActions(db: Db, ev: PushActionEvent, actions: readonly unknown[][], rows: readonly PushActionRow[]): Promise<void> {
  if (rows.length === 0) return;
  const users = rows.map((r) => r.user_id);
  const idx = rows.map((r) => r.actions + 1);
  const hl = rows.map((r) => r.highlight);
  await sql`
    INSERT INTO event_push_actions (user_id, room_id, stream_ordering, event_id, thread_id, actions, highlight, ts)
    SELECT x.u, ${ev.room_id}, ${ev.stream_ordering}::bigint, ${ev.event_id}, ${ev.thread_id}, (${actions.map((a) => JSON.stringify(a))}::jsonb[])[x.i], x.h, ${ev.ts}::bigint
    FROM unnest(${users}::text[], ${idx}::int[], ${hl}::boolean[]) AS x(u, i, h)
    ON CONFLICT DO NOTHING`.execute(db);
}

/** A redacted event no longer notifies anyone (found by its stream position). */
export async function deletePushActionsAt(db: Db, streamOrdering: number): Promise<void> {
  await db.deleteFrom('event_push_actions').where('stream_ordering', '=', streamOrdering).execute();
}

/** The user's own latest event in a room's thread: everything up to it counts as read. */
export async function putReadMark(db: Db, userId: string, roomId: string, threadId: string, streamOrdering: number): Promise<void> {
  await db
    .insertInto('push_read_marks')
    .values({ user_id: userId, room_id: roomId, thread_id: threadId, stream_ordering: streamOrdering })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'room_id', 'thread_id'])
        .doUpdateSet((eb) => ({ stream_ordering: eb.ref('excluded.stream_ordering') }))
        .where('push_read_marks.stream_ordering', '<', (eb) => eb.ref('excluded.stream_ordering')),
    )
    .execute();
}

/**
 * Where the user has read up to, per room and thread: the furthest of their
 * `m.read` and `m.read.private` receipts and their own latest event. Thread
 * '' is an unthreaded receipt (it covers every thread).
 */
export async function readPositions(db: Db, userId: string, roomIds: readonly string[]): Promise<{ room_id: string; thread_id: string; pos: number }[]> {
  if (roomIds.length === 0) return [];
  const rooms = textArray([...new Set(roomIds)]);
  // One statement for both sources (every /sync with news asks, for each room with news).
  const res = await sql<{ room_id: string; thread_id: string; pos: number | string }>`
    SELECT room_id, thread_id, max(event_stream_ordering) AS pos FROM receipts
    WHERE user_id = ${userId} AND room_id = ANY(${rooms}) AND receipt_type IN ('m.read', 'm.read.private')
    GROUP BY room_id, thread_id
    UNION ALL
    SELECT room_id, thread_id, stream_ordering AS pos FROM push_read_marks
    WHERE user_id = ${userId} AND room_id = ANY(${rooms})`.execute(db);
  return res.rows.map((r) => ({ room_id: r.room_id, thread_id: r.thread_id, pos: Number(r.pos) }));
}

/**
 * Unread notifications per room and thread, with the read positions of
 * `readPositions` worked out in the same statement (every /sync with news
 * asks this, for each joined room with news): rows after the room's
 * unthreaded position (thread '') and after their own thread's position.
 */
export async function unreadCounts(
  db: Db,
  userId: string,
  roomIds: readonly string[],
): Promise<{ room_id: string; thread_id: string; notifications: number; highlights: number }[]> {
  if (roomIds.length === 0) return [];
  const rooms = textArray([...new Set(roomIds)]);
  const res = await sql<{ room_id: string; thread_id: string; n: number | string; h: number | string }>`
    WITH marks AS (
      SELECT room_id, thread_id, max(event_stream_ordering) AS pos FROM receipts
      WHERE user_id = ${userId} AND room_id = ANY(${rooms}) AND receipt_type IN ('m.read', 'm.read.private')
      GROUP BY room_id, thread_id
      UNION ALL
      SELECT room_id, thread_id, stream_ordering AS pos FROM push_read_marks
      WHERE user_id = ${userId} AND room_id = ANY(${rooms})
    ), p AS (SELECT room_id, thread_id, max(pos) AS pos FROM marks GROUP BY room_id, thread_id)
    SELECT a.room_id, a.thread_id, count(*) AS n, count(*) FILTER (WHERE a.highlight) AS h
    FROM unnest(${rooms}) AS r(room_id)
    LEFT JOIN p u ON u.room_id = r.room_id AND u.thread_id = ''
    JOIN event_push_actions a ON a.user_id = ${userId} AND a.room_id = r.room_id AND a.stream_ordering > COALESCE(u.pos, 0)
    LEFT JOIN p t ON t.room_id = r.room_id AND t.thread_id = a.thread_id AND t.thread_id <> ''
    WHERE a.stream_ordering > COALESCE(t.pos, 0)
    GROUP BY a.room_id, a.thread_id`.execute(db);
  return res.rows.map((r) => ({ room_id: r.room_id, thread_id: r.thread_id, notifications: Number(r.n), highlights: Number(r.h) }));
}

/** The user's notifications, newest first, before stream position `before` (exclusive) when given. */
/** A stored notification, as /notifications reads it. */
export interface StoredNotification extends PushActionEvent {
  user_id: string;
  actions: unknown[];
  highlight: boolean;
}

export async function notificationsForUser(db: Db, userId: string, opts: { before?: number; limit: number; onlyHighlight: boolean }): Promise<StoredNotification[]> {
  let q = db
    .selectFrom('event_push_actions')
    .select(['user_id', 'room_id', 'stream_ordering', 'event_id', 'thread_id', 'actions', 'highlight', 'ts'])
    .where('user_id', '=', userId);
  if (opts.before !== undefined) q = q.where('stream_ordering', '<', opts.before);
  if (opts.onlyHighlight) q = q.where('highlight', '=', true);
  const rows = await q.orderBy('stream_ordering', 'desc').limit(opts.limit).execute();
  return rows.map((r) => ({ ...r, stream_ordering: Number(r.stream_ordering), ts: Number(r.ts) }));
}

/**
 * What push evaluation needs of a room's members: how many are joined, and
 * the local joined members with their display name in the room (read from
 * their member events, without loading whole events).
 */
export async function roomPushMembers(db: Db, roomId: string, serverName: string): Promise<{ joined: number; local: { user_id: string; displayname: string | null }[] }> {
  const count = await db
    .selectFrom('current_state')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('room_id', '=', roomId)
    .where('type', '=', 'm.room.member')
    .where('membership', '=', 'join')
    .executeTakeFirst();
  const suffix = `%:${serverName.replace(/[\\%_]/g, '\\$&')}`;
  const local = await sql<{ user_id: string; displayname: string | null }>`
    SELECT cs.state_key AS user_id,
           CASE WHEN jsonb_typeof(e.json->'content'->'displayname') = 'string' THEN e.json->'content'->>'displayname' END AS displayname
    FROM current_state cs JOIN events e ON e.event_id = cs.event_id
    WHERE cs.room_id = ${roomId} AND cs.type = 'm.room.member' AND cs.membership = 'join' AND cs.state_key LIKE ${suffix}`.execute(db);
  return { joined: Number(count?.n ?? 0), local: local.rows };
}

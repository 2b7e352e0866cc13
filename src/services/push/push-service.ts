/**
 * Push rules and notification counts.
 *
 * - Rules: each user's ruleset is the server defaults plus their own rules
 *   and changes (storage/push.ts). Every change is one transaction that also
 *   writes the whole ruleset to the user's global `m.push_rules` account
 *   data, so it reaches their clients through /sync; then the user's cached
 *   ruleset is dropped and their syncs are woken.
 * - Evaluation: the event pipeline calls `onPersisted` for every event, in
 *   the event's own transaction. The rules run in memory for each local
 *   joined member but the sender (for membership events, only for a local
 *   user being invited, as Synapse limits them to their target), against
 *   a per-room cache of member count, display names and power levels keyed
 *   by the room's state group; the notifying results go in with one insert.
 *   So an event and the counts it changes commit together, and the /sync
 *   that returns the event also returns the counts, as the spec requires.
 * - Counts: notifications after the user's read position in a room: their
 *   furthest `m.read`/`m.read.private` receipt or own event, per thread for
 *   threaded receipts.
 */
import type { Kysely } from 'kysely';
import { parseLevel, userPowerLevel } from '../../core/auth/power-levels.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { requireRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError } from '../../matrix-error.js';
import { GLOBAL, putAccountData } from '../../storage/account-data.js';
import { getEvent, getEvents, type StoredEvent } from '../../storage/events.js';
import {
  defaultOverrides,
  deletePushActionsAt,
  deleteUserRule,
  getUserRule,
  insertPushActions,
  maxPriority,
  notificationsForUser,
  putDefaultOverride,
  putReadMark,
  putUserRule,
  readPositions,
  roomPushMembers,
  shiftPriorities,
  unreadCounts,
  updateUserRule,
  userRules,
  type PushActionRow,
} from '../../storage/push.js';
import type { RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { currentState } from '../../storage/state.js';
import type { Notifier } from '../notifier.js';
import type { PersistedEvent } from '../rooms/event-pipeline.js';
import { highlights, notifies, PushEvaluator } from './evaluator.js';
import { buildRuleset, DEFAULT_RULE_IDS, type DefaultRuleOverride, type PushAction, type PushRule, type PushRuleset, type RuleKind, type StoredUserRule } from './rules.js';
import { MAIN_THREAD, threadIdOf } from './threads.js';
import type { NewRule } from './validate.js';
import type { Db, Tx } from '../../storage/db.js';
import { isJsonObject } from '../../core/json-values.js';

export interface Counts {
  notification_count: number;
  highlight_count: number;
}

/**
 * A room's unread counts for a user. The top level counts every thread
 * (what /sync reports when the client did not ask for
 * `unread_thread_notifications`); `main` is the main timeline alone and
 * `threads` each thread root's own counts (what it reports when it did).
 */
export interface UnreadCounts extends Counts {
  main: Counts;
  threads: Record<string, Counts>;
}

export interface Notification {
  actions: PushAction[];
  event: StoredEvent;
  read: boolean;
  room_id: string;
  ts: number;
}

/** What the rules need to know about a room, as of one state group. */
interface RoomPushState {
  group: number | null;
  rv: RoomVersion;
  memberCount: number;
  /** Local joined members and their display name in the room. */
  localMembers: Map<string, string | null>;
  powerLevels: PDU | undefined;
  create: PDU | undefined;
  notificationLevels: Record<string, number>;
}

/** State types that change what the rules see (members, power levels). */
const CONTEXT_STATE_TYPES = new Set(['m.room.member', 'm.room.power_levels', 'm.room.create']);
const ROOM_CACHE_MAX = 1000;
const RULES_CACHE_MAX = 10_000;
/** Rooms per unread-count query (three parameters each, far below PostgreSQL's 65,535). */
const COUNT_CHUNK = 2000;

export interface PushServiceDeps {
  db: Kysely<Schema>;
  serverName: string;
  notifier: Notifier;
}

export class PushService {
  private readonly rulesCache = new Map<string, PushRuleset>();
  /** Bumped on every rules change, so a load that raced a change is not cached. */
  private readonly rulesVersion = new Map<string, number>();
  private readonly roomCache = new Map<string, RoomPushState>();
  private readonly userQueues = new Map<string, Promise<unknown>>();

  constructor(private readonly d: PushServiceDeps) {}

  private isLocal(userId: string): boolean {
    return userId.endsWith(`:${this.d.serverName}`);
  }

  // ---- rules ---------------------------------------------------------------

  /** The user's full ruleset (server defaults with their changes, and their own rules). */
  async ruleset(userId: string, db: Db = this.d.db): Promise<PushRuleset> {
    return (await this.rulesets(db, [userId])).get(userId) as PushRuleset;
  }

  /** `m.push_rules` account data content: `{global: ruleset}`. */
  async pushRulesContent(userId: string): Promise<{ global: PushRuleset }> {
    return { global: await this.ruleset(userId) };
  }

  private async rulesets(db: Db, userIds: readonly string[]): Promise<Map<string, PushRuleset>> {
    const out = new Map<string, PushRuleset>();
    const missing: string[] = [];
    for (const u of userIds) {
      const hit = this.rulesCache.get(u);
      if (hit) out.set(u, hit);
      else missing.push(u);
    }
    if (missing.length === 0) return out;
    const versions = new Map(missing.map((u) => [u, this.rulesVersion.get(u) ?? 0]));
    const [own, changed] = await Promise.all([userRules(db, missing), defaultOverrides(db, missing)]);
    const ownBy = groupBy(own, (r) => r.user_id);
    const changedBy = groupBy(changed, (r) => r.user_id);
    for (const u of missing) {
      const rs = buildRuleset(u, (ownBy.get(u) ?? []) as unknown as StoredUserRule[], (changedBy.get(u) ?? []) as unknown as DefaultRuleOverride[]);
      out.set(u, rs);
      if ((this.rulesVersion.get(u) ?? 0) === versions.get(u)) {
        if (this.rulesCache.size >= RULES_CACHE_MAX) this.rulesCache.delete(this.rulesCache.keys().next().value as string);
        this.rulesCache.set(u, rs);
      }
    }
    return out;
  }

  /** One rule of the user's ruleset, or 404 M_NOT_FOUND. */
  async getRule(userId: string, kind: RuleKind, ruleId: string): Promise<PushRule> {
    const rule = (await this.ruleset(userId))[kind].find((r) => r.rule_id === ruleId);
    if (!rule) throw notFound();
    return rule;
  }

  /**
   * Creates or replaces one of the user's own rules. A new rule without
   * before/after goes first among the user's rules of its kind; an updated
   * one keeps its place unless before/after moves it.
   */
  async putRule(userId: string, kind: RuleKind, ruleId: string, rule: NewRule, rel: { before?: string; after?: string }): Promise<void> {
    await this.change(userId, async (tx) => {
      const existing = await getUserRule(tx, userId, kind, ruleId);
      let priority: number;
      const anchorId = rel.before ?? rel.after;
      if (anchorId !== undefined) {
        if (DEFAULT_RULE_IDS[kind].has(anchorId) || anchorId.startsWith('.')) {
          throw new MatrixError(400, 'M_INVALID_PARAM', 'A rule cannot be placed relative to a server-default rule');
        }
        const anchor = anchorId === ruleId ? existing : await getUserRule(tx, userId, kind, anchorId);
        if (!anchor || anchorId === ruleId) throw new MatrixError(400, 'M_UNKNOWN', `before/after rule not found: ${anchorId}`);
        // Before: just above the anchor. After: at the anchor's place, the anchor moving up.
        priority = rel.before !== undefined ? anchor.priority + 1 : anchor.priority;
        await shiftPriorities(tx, userId, kind, priority);
      } else if (existing) {
        priority = existing.priority;
      } else {
        priority = ((await maxPriority(tx, userId, kind)) ?? 0) + 1;
      }
      await putUserRule(tx, { userId, kind, ruleId, priority, conditions: rule.conditions, pattern: rule.pattern, actions: rule.actions });
    });
  }

  /** Deletes one of the user's own rules; server-default rules cannot be deleted. */
  async deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<void> {
    if (DEFAULT_RULE_IDS[kind].has(ruleId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Server-default push rules cannot be deleted');
    await this.change(userId, async (tx) => {
      if (!(await deleteUserRule(tx, userId, kind, ruleId))) throw notFound();
    });
  }

  /** Enables or disables a rule (server-default or own). */
  async setEnabled(userId: string, kind: RuleKind, ruleId: string, enabled: boolean): Promise<void> {
    await this.setAttr(userId, kind, ruleId, { enabled });
  }

  /** Replaces a rule's actions (server-default or own). */
  async setActions(userId: string, kind: RuleKind, ruleId: string, actions: PushAction[]): Promise<void> {
    await this.setAttr(userId, kind, ruleId, { actions });
  }

  private async setAttr(userId: string, kind: RuleKind, ruleId: string, change: { enabled?: boolean; actions?: PushAction[] }): Promise<void> {
    await this.change(userId, async (tx) => {
      if (DEFAULT_RULE_IDS[kind].has(ruleId)) {
        await putDefaultOverride(tx, userId, kind, ruleId, change);
      } else if (!(await updateUserRule(tx, userId, kind, ruleId, change))) {
        throw notFound();
      }
    });
  }

  /**
   * Runs one change to a user's rules: serialised per user, in one
   * transaction that also rewrites `m.push_rules`; then drops the cached
   * ruleset and wakes the user's syncs.
   */
  private async change(userId: string, fn: (tx: Tx) => Promise<void>): Promise<void> {
    await this.inUserQueue(userId, async () => {
      this.invalidateRules(userId);
      try {
        await this.d.db.transaction().execute(async (tx) => {
          await fn(tx);
          const [own, changed] = await Promise.all([userRules(tx, [userId]), defaultOverrides(tx, [userId])]);
          const rs = buildRuleset(userId, own as unknown as StoredUserRule[], changed as unknown as DefaultRuleOverride[]);
          await putAccountData(tx, userId, GLOBAL, 'm.push_rules', { global: rs });
        });
      } finally {
        this.invalidateRules(userId);
      }
    });
    this.d.notifier.notifyUsers([userId]);
  }

  private invalidateRules(userId: string): void {
    this.rulesCache.delete(userId);
    this.rulesVersion.set(userId, (this.rulesVersion.get(userId) ?? 0) + 1);
  }

  private async inUserQueue<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.userQueues.get(userId) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(fn);
    const tail = run.catch(() => undefined);
    this.userQueues.set(userId, tail);
    try {
      return await run;
    } finally {
      if (this.userQueues.get(userId) === tail) this.userQueues.delete(userId);
    }
  }

  // ---- evaluation ------------------------------------------------------------

  /**
   * Called by the event pipeline for each persisted event, inside its
   * transaction: stores the notifications the event produces for local
   * users, the sender's implicit read position, and drops the
   * notifications of an event this one redacts.
   */
  async onPersisted(tx: Tx, room: RoomRow, ev: PersistedEvent, stateGroupBefore: number | null): Promise<void> {
    const pdu = ev.pdu;
    if (pdu.type === 'm.room.redaction') {
      const target = typeof pdu.redacts === 'string' ? pdu.redacts : pdu.content['redacts'];
      const redacted = typeof target === 'string' ? await getEvent(tx, target) : undefined;
      if (redacted && redacted.room_id === room.room_id) await deletePushActionsAt(tx, redacted.stream_ordering);
    }
    const sender = pdu.sender;
    const recipients = new Map<string, string | null>();
    let state: RoomPushState | undefined;
    if (pdu.type === 'm.room.member') {
      // As Synapse: membership events are only evaluated for their target,
      // here a local user being invited (not a member yet, but the invite is
      // for them). Joins and leaves in a big room then cost no rule runs.
      const target = pdu.state_key;
      if (typeof target === 'string' && target !== sender && this.isLocal(target) && pdu.content['membership'] === 'invite') {
        const name = pdu.content['displayname'];
        recipients.set(target, typeof name === 'string' ? name : null);
        state = await this.roomState(tx, room, pdu, stateGroupBefore);
      }
    } else {
      state = await this.roomState(tx, room, pdu, stateGroupBefore);
      for (const [u, name] of state.localMembers) if (u !== sender) recipients.set(u, name);
    }
    const localSender = this.isLocal(sender);
    if (recipients.size === 0 && !localSender) return;

    const threadId = await threadIdOf(pdu as unknown as JsonObject, async (id) => {
      const e = await getEvent(tx, id);
      return e && e.room_id === room.room_id ? (e.json as JsonObject) : undefined;
    });
    // Sending an event reads everything before it (spec: "Marking notifications as read").
    if (localSender) await putReadMark(tx, sender, room.room_id, threadId, ev.streamOrdering);
    if (recipients.size === 0 || !state) return;

    const rules = await this.rulesets(tx, [...recipients.keys()]);
    const evaluator = new PushEvaluator({ ...(pdu as unknown as JsonObject), event_id: ev.eventId, room_id: room.room_id } as JsonObject, {
      memberCount: state.memberCount,
      senderPowerLevel: userPowerLevel(state.rv, sender, state.powerLevels, state.create),
      notificationLevels: state.notificationLevels,
    });
    const rows: PushActionRow[] = [];
    // Users with the same rules get the same actions object back: each distinct list is stored once per insert.
    const distinct = new Map<string, number>();
    const lists: PushAction[][] = [];
    for (const [userId, displayName] of recipients) {
      const rs = rules.get(userId);
      if (!rs) continue;
      const actions = evaluator.run(rs, userId, displayName);
      if (!notifies(actions)) continue;
      const key = JSON.stringify(actions);
      let i = distinct.get(key);
      if (i === undefined) {
        distinct.set(key, (i = lists.length));
        lists.push(actions);
      }
      rows.push({ user_id: userId, actions: i, highlight: highlights(actions) });
    }
    const event = { room_id: room.room_id, stream_ordering: ev.streamOrdering, event_id: ev.eventId, thread_id: threadId, ts: Date.now() };
    await insertPushActions(tx, event, lists, rows);
  }

  /**
   * The room as the rules see it after this event. Cached per room and
   * keyed by state group: a state group id is never reused, so an entry
   * made inside a transaction that rolled back is simply never hit again.
   */
  private async roomState(tx: Db, room: RoomRow, pdu: PDU, stateGroupBefore: number | null): Promise<RoomPushState> {
    const group = room.current_state_group;
    const cached = this.roomCache.get(room.room_id);
    if (cached && cached.group === group) return this.touch(room.room_id, cached);
    // A state change the rules do not look at (name, topic, ...) carries the entry forward.
    if (cached && pdu.state_key !== undefined && !CONTEXT_STATE_TYPES.has(pdu.type) && cached.group === stateGroupBefore) {
      return this.touch(room.room_id, { ...cached, group });
    }
    const rv = requireRoomVersion(room.room_version);
    const members = await roomPushMembers(tx, room.room_id, this.d.serverName);
    const keyRows = await currentState(tx, room.room_id, [
      ['m.room.power_levels', ''],
      ['m.room.create', ''],
    ]);
    const events = await getEvents(
      tx,
      keyRows.map((r) => r.event_id),
    );
    const localMembers = new Map<string, string | null>(members.local.map((m) => [m.user_id, m.displayname]));
    const pick = (type: string) => {
      const row = keyRows.find((r) => r.type === type);
      return row ? (events.get(row.event_id)?.json as PDU | undefined) : undefined;
    };
    const powerLevels = pick('m.room.power_levels');
    const notificationLevels: Record<string, number> = {};
    const n = powerLevels?.content['notifications'];
    if (isJsonObject(n)) {
      for (const [k, v] of Object.entries(n)) {
        const level = parseLevel(rv, v);
        if (level !== undefined) notificationLevels[k] = level;
      }
    }
    const state: RoomPushState = { group, rv, memberCount: members.joined, localMembers, powerLevels, create: pick('m.room.create'), notificationLevels };
    return this.touch(room.room_id, state);
  }

  private touch(roomId: string, s: RoomPushState): RoomPushState {
    this.roomCache.delete(roomId);
    if (this.roomCache.size >= ROOM_CACHE_MAX) this.roomCache.delete(this.roomCache.keys().next().value as string);
    this.roomCache.set(roomId, s);
    return s;
  }

  // ---- counts ----------------------------------------------------------------

  /** The user's unread notification and highlight counts in one room. */
  async unreadCounts(userId: string, roomId: string): Promise<UnreadCounts> {
    return (await this.unreadCountsForRooms(userId, [roomId])).get(roomId) as UnreadCounts;
  }

  /** unreadCounts for many rooms at once (one statement per 2,000 rooms). */
  async unreadCountsForRooms(userId: string, roomIds: readonly string[], db: Db = this.d.db): Promise<Map<string, UnreadCounts>> {
    const out = new Map<string, UnreadCounts>();
    for (const r of roomIds) out.set(r, emptyCounts());
    const unique = [...out.keys()];
    const rows: Awaited<ReturnType<typeof unreadCounts>> = [];
    for (let i = 0; i < unique.length; i += COUNT_CHUNK) {
      rows.push(...(await unreadCounts(db, userId, unique.slice(i, i + COUNT_CHUNK))));
    }
    for (const r of rows) {
      const c = out.get(r.room_id) as UnreadCounts;
      c.notification_count += r.notifications;
      c.highlight_count += r.highlights;
      const bucket: Counts = { notification_count: r.notifications, highlight_count: r.highlights };
      if (r.thread_id === MAIN_THREAD) c.main = bucket;
      else c.threads[r.thread_id] = bucket;
    }
    return out;
  }

  /** Per room: the unthreaded read position and each thread's own position. */
  private async positions(db: Db, userId: string, roomIds: readonly string[]): Promise<Map<string, { unthreaded: number; threads: Record<string, number> }>> {
    const out = new Map<string, { unthreaded: number; threads: Record<string, number> }>();
    for (const p of await readPositions(db, userId, roomIds)) {
      let e = out.get(p.room_id);
      if (!e) out.set(p.room_id, (e = { unthreaded: 0, threads: {} }));
      if (p.thread_id === '') e.unthreaded = Math.max(e.unthreaded, p.pos);
      else e.threads[p.thread_id] = Math.max(e.threads[p.thread_id] ?? 0, p.pos);
    }
    return out;
  }

  /** GET /notifications: the user's notifications, newest first, before `from`. */
  async notifications(userId: string, opts: { from?: number; limit: number; onlyHighlight: boolean }): Promise<{ notifications: Notification[]; nextToken?: string }> {
    const db = this.d.db;
    const rows = await notificationsForUser(db, userId, { before: opts.from, limit: opts.limit, onlyHighlight: opts.onlyHighlight });
    const events = await getEvents(
      db,
      rows.map((r) => r.event_id),
    );
    const positions = await this.positions(
      db,
      userId,
      rows.map((r) => r.room_id),
    );
    const notifications: Notification[] = [];
    for (const r of rows) {
      const event = events.get(r.event_id);
      if (!event) continue;
      const p = positions.get(r.room_id);
      const readUpTo = Math.max(p?.unthreaded ?? 0, p?.threads[r.thread_id] ?? 0);
      notifications.push({ actions: r.actions as PushAction[], event, read: r.stream_ordering <= readUpTo, room_id: r.room_id, ts: r.ts });
    }
    const last = rows[rows.length - 1];
    return { notifications, nextToken: rows.length === opts.limit && last ? String(last.stream_ordering) : undefined };
  }
}

function emptyCounts(): UnreadCounts {
  return { notification_count: 0, highlight_count: 0, main: { notification_count: 0, highlight_count: 0 }, threads: {} };
}

function notFound(): MatrixError {
  return new MatrixError(404, 'M_NOT_FOUND', 'The push rule was not found.');
}

function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}

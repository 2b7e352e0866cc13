/**
 * History visibility: which events of a room a user may read, by the spec's
 * rules, applied to the state at each event (the state group before it,
 * plus the event itself when it changes the key in question). One
 * implementation for every reader: VisibilityChecker serves the reading
 * endpoints one room at a time; hiddenEvents serves /sync, all its rooms
 * with one state lookup.
 *
 * For an event E, with `visibility` the room's `m.room.history_visibility`
 * at E and `membership` the user's membership at E:
 * 1. world_readable: allowed;
 * 2. membership join: allowed;
 * 3. shared: allowed when the user was joined at some point after E, that
 *    is E comes before the end of the user's latest joined period (or the
 *    user is joined now);
 * 4. invited, with membership invite: allowed;
 * 5. otherwise denied.
 * A visibility event is judged by the less restrictive of the values before
 * and after it; the user's own membership event by the "most joined" of the
 * memberships before and after it (a leave from join or invite is always
 * visible to them), as the spec and Synapse do.
 *
 * Room access for the reading endpoints (as Synapse): joined users, users
 * who left (their history up to the leave), and anyone when the room is
 * world_readable now; others get 403 M_FORBIDDEN.
 */
import { forbidden } from '../../matrix-error.js';
import { getEvent } from '../../storage/events.js';
import { currentState, stateAtGroupsForKeys } from '../../storage/state.js';
import { userMembershipHistory } from '../../storage/sync.js';
import { getTimelineEvent, getTimelineEvents, type TimelineEvent } from '../../storage/timeline.js';
import type { Db } from '../../storage/db.js';

const HISTORY_VISIBILITY = 'm.room.history_visibility';
/** Least restrictive first. */
const VISIBILITY_PRIORITY = ['world_readable', 'shared', 'invited', 'joined'] as const;
/** Most joined first. */
const MEMBERSHIP_PRIORITY = ['join', 'invite', 'knock', 'leave', 'ban'] as const;

export type Visibility = (typeof VISIBILITY_PRIORITY)[number];

/** What decides visibility in the state before an event. */
interface GroupState {
  visibility: Visibility;
  membership: string | undefined;
}

const NO_STATE: GroupState = { visibility: 'shared', membership: undefined };

function membershipRank(m: string): number {
  const i = (MEMBERSHIP_PRIORITY as readonly string[]).indexOf(m);
  return i < 0 ? MEMBERSHIP_PRIORITY.length : i;
}

/** The history visibility an `m.room.history_visibility` content sets (`shared` when missing or not understood). */
export function visibilityOf(content: unknown): Visibility {
  const v = (content as Record<string, unknown> | undefined)?.['history_visibility'];
  return (VISIBILITY_PRIORITY as readonly unknown[]).includes(v) ? (v as Visibility) : 'shared';
}

function membershipOf(content: unknown): string {
  const m = (content as Record<string, unknown> | undefined)?.['membership'];
  return typeof m === 'string' && (MEMBERSHIP_PRIORITY as readonly string[]).includes(m) ? m : 'leave';
}

function contentOf(e: { json: Record<string, unknown> } | undefined): Record<string, unknown> | undefined {
  return e?.json['content'] as Record<string, unknown> | undefined;
}

export interface RoomAccess {
  /** The user's current membership, if any. */
  membership: string | undefined;
  /** Their current membership event, when they left (pagination stops there). */
  leaveEvent: TimelineEvent | undefined;
  /** The room is world_readable now and the user is not a member (peeking). */
  peeking: boolean;
}

/** The room's current history visibility. */
export async function currentHistoryVisibility(db: Db, roomId: string): Promise<Visibility> {
  const [row] = await currentState(db, roomId, [[HISTORY_VISIBILITY, '']]);
  if (!row) return 'shared';
  return visibilityOf(contentOf(await getEvent(db, row.event_id)));
}

/**
 * Whether the user may read the room's history at all: joined, departed
 * (left, not banned), or the room is world_readable now. Otherwise 403.
 * `allowDeparted: false` admits only joined users (and peekers).
 */
export async function requireRoomAccess(db: Db, roomId: string, userId: string, opts: { allowDeparted: boolean } = { allowDeparted: true }): Promise<RoomAccess> {
  const [row] = await currentState(db, roomId, [['m.room.member', userId]]);
  const membership = row?.membership ?? undefined;
  if (membership === 'join') return { membership, leaveEvent: undefined, peeking: false };
  if (membership === 'leave' && opts.allowDeparted && row) {
    const leaveEvent = await getTimelineEvent(db, row.event_id);
    if (leaveEvent) return { membership, leaveEvent, peeking: false };
  }
  if ((await currentHistoryVisibility(db, roomId)) === 'world_readable') return { membership, leaveEvent: undefined, peeking: true };
  throw forbidden(`User ${userId} not in room ${roomId}, and room previews are disabled`);
}

/**
 * History visibility and the user's membership in each of these state
 * groups, with one state lookup for all of them (any rooms).
 */
async function groupStates(db: Db, userId: string, groups: readonly number[]): Promise<Map<number, GroupState>> {
  const out = new Map<number, GroupState>();
  if (groups.length === 0) return out;
  const byGroup = await stateAtGroupsForKeys(
    db,
    groups.flatMap((group) => [
      { group, type: HISTORY_VISIBILITY, stateKey: '' },
      { group, type: 'm.room.member', stateKey: userId },
    ]),
  );
  const ids = new Set<string>();
  for (const m of byGroup.values()) for (const id of m.values()) ids.add(id);
  const events = await getTimelineEvents(db, [...ids]);
  for (const g of groups) {
    const m = byGroup.get(g);
    const visId = m?.get(`${HISTORY_VISIBILITY}\u0000`);
    const memberId = m?.get(`m.room.member\u0000${userId}`);
    out.set(g, {
      visibility: visId ? visibilityOf(contentOf(events.get(visId))) : 'shared',
      membership: memberId ? membershipOf(contentOf(events.get(memberId))) : undefined,
    });
  }
  return out;
}

/**
 * Per room, where the user's latest joined period ended: Infinity while
 * joined, -Infinity when they never joined (from their membership events
 * in stream order).
 */
async function joinPeriodEnds(db: Db, userId: string, roomIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (roomIds.length === 0) return out;
  const state = new Map<string, string>();
  for (const h of await userMembershipHistory(db, userId, roomIds)) {
    if (state.get(h.room_id) === 'join' && h.membership !== 'join') out.set(h.room_id, h.stream_ordering);
    state.set(h.room_id, h.membership);
  }
  for (const r of roomIds) {
    if (state.get(r) === 'join') out.set(r, Infinity);
    else if (!out.has(r)) out.set(r, -Infinity);
  }
  return out;
}

/**
 * The verdict on one event given the state before it: allowed, denied, or
 * `shared` (allowed when the event comes before the end of the user's
 * latest joined period).
 */
function verdict(e: Pick<TimelineEvent, 'type' | 'state_key' | 'json'>, before: GroupState, userId: string): boolean | 'shared' {
  let visibility = before.visibility;
  let membership = before.membership;
  const content = contentOf(e);
  if (e.type === HISTORY_VISIBILITY && e.state_key === '') {
    const after = visibilityOf(content);
    if (VISIBILITY_PRIORITY.indexOf(after) < VISIBILITY_PRIORITY.indexOf(visibility)) visibility = after;
  }
  if (e.type === 'm.room.member' && e.state_key === userId) {
    const after = membershipOf(content);
    const prev = membership ?? 'leave';
    if (after === 'leave' && (prev === 'join' || prev === 'invite')) return true;
    membership = membershipRank(prev) < membershipRank(after) ? prev : after;
  }
  if (visibility === 'world_readable' || membership === 'join') return true;
  if (visibility === 'shared') return 'shared';
  if (visibility === 'invited') return membership === 'invite';
  return false;
}

/**
 * Decides visibility for one user in one room; caches state lookups, so
 * one checker serves a whole request.
 */
export class VisibilityChecker {
  private readonly groups = new Map<number, Promise<GroupState>>();
  private joinedUntil: Promise<number> | undefined;

  constructor(
    private readonly db: Db,
    readonly roomId: string,
    readonly userId: string,
  ) {}

  /** The events the user may see, in the order given. */
  async filter<E extends TimelineEvent>(events: readonly E[]): Promise<E[]> {
    await this.loadGroups(events.map((e) => e.state_group_before).filter((g): g is number => g !== null));
    const verdicts = await Promise.all(events.map((e) => this.canSee(e)));
    return events.filter((_, i) => verdicts[i]);
  }

  async canSee(e: TimelineEvent): Promise<boolean> {
    if (e.room_id !== this.roomId) return false;
    const v = verdict(e, await this.stateBefore(e.state_group_before), this.userId);
    return v === 'shared' ? e.stream_ordering < (await this.endOfLatestJoin()) : v;
  }

  /** Looks up the state before many events at once (one query for all their groups). */
  private async loadGroups(groups: readonly number[]): Promise<void> {
    const missing = [...new Set(groups)].filter((g) => !this.groups.has(g));
    if (missing.length === 0) return;
    const loaded = groupStates(this.db, this.userId, missing);
    for (const g of missing)
      this.groups.set(
        g,
        loaded.then((m) => m.get(g) ?? NO_STATE),
      );
    await loaded;
  }

  /** History visibility and the user's membership in the state before an event. */
  private async stateBefore(group: number | null): Promise<GroupState> {
    if (group === null) return NO_STATE;
    await this.loadGroups([group]);
    return this.groups.get(group) as Promise<GroupState>;
  }

  /** The stream position where the user's latest joined period ended (Infinity while joined). */
  endOfLatestJoin(): Promise<number> {
    this.joinedUntil ??= joinPeriodEnds(this.db, this.userId, [this.roomId]).then((m) => m.get(this.roomId) ?? -Infinity);
    return this.joinedUntil;
  }
}

export interface VisibilityQuery {
  roomId: string;
  events: TimelineEvent[];
  /** Events at or after this position are visible without a check (the user's current join), Infinity for none. */
  checkedBelow: number;
  /** The user is joined to the room now. */
  joinedNow: boolean;
}

/**
 * The ids of the events the user may not see, over all the rooms given
 * (/sync): one state lookup for every event to check. Only events before
 * the user's current membership event need checking in a room they are
 * joined to: at every later event they were joined.
 */
export async function hiddenEvents(db: Db, userId: string, queries: readonly VisibilityQuery[]): Promise<Set<string>> {
  const hidden = new Set<string>();
  const toCheck = queries.map((q) => ({ ...q, events: q.events.filter((e) => e.stream_ordering < q.checkedBelow) })).filter((q) => q.events.length > 0);
  if (toCheck.length === 0) return hidden;
  const groups = new Set<number>();
  for (const q of toCheck) for (const e of q.events) if (e.state_group_before !== null) groups.add(e.state_group_before);
  const [states, joinEnds] = await Promise.all([
    groupStates(db, userId, [...groups]),
    joinPeriodEnds(
      db,
      userId,
      toCheck.filter((q) => !q.joinedNow).map((q) => q.roomId),
    ),
  ]);
  for (const q of toCheck) {
    const endOfJoin = q.joinedNow ? Infinity : (joinEnds.get(q.roomId) ?? -Infinity);
    for (const e of q.events) {
      const v = verdict(e, (e.state_group_before === null ? undefined : states.get(e.state_group_before)) ?? NO_STATE, userId);
      if (!(v === 'shared' ? e.stream_ordering < endOfJoin : v)) hidden.add(e.event_id);
    }
  }
  return hidden;
}

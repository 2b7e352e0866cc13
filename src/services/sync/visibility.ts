/**
 * History visibility for /sync timelines, batched over every room of the
 * sync (one state lookup for all of them). The rules are those of
 * services/rooms/visibility.ts (the spec's, with Synapse's readings), which
 * the reading endpoints use one room at a time:
 * 1. world_readable: allowed; 2. the user's membership at the event is
 * join: allowed; 3. shared: allowed when the user was joined at some point
 * after the event; 4. invited, with membership invite: allowed; 5. denied.
 * A visibility event counts the less restrictive of the values before and
 * after it; the user's own membership event the "more joined" of the
 * memberships before and after it (and their leave from join or invite is
 * always theirs to see).
 *
 * Only events before the user's current membership event need checking in
 * a room they are joined to: at every later event they were joined.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../../storage/schema.js';
import { loadEvents, stateAtGroupsForKeys, userMembershipHistory, type SyncEventRow } from '../../storage/sync.js';

type Db = Kysely<Schema> | Transaction<Schema>;

const HISTORY_VISIBILITY = 'm.room.history_visibility';
const VISIBILITY_PRIORITY = ['world_readable', 'shared', 'invited', 'joined'] as const;
const MEMBERSHIP_PRIORITY = ['join', 'invite', 'knock', 'leave', 'ban'] as const;
type Visibility = (typeof VISIBILITY_PRIORITY)[number];

function visibilityOf(content: unknown): Visibility {
  const v = (content as Record<string, unknown> | undefined)?.['history_visibility'];
  return (VISIBILITY_PRIORITY as readonly unknown[]).includes(v) ? (v as Visibility) : 'shared';
}

function membershipOf(content: unknown): string {
  const m = (content as Record<string, unknown> | undefined)?.['membership'];
  return typeof m === 'string' && (MEMBERSHIP_PRIORITY as readonly string[]).includes(m) ? m : 'leave';
}

function membershipRank(m: string): number {
  const i = (MEMBERSHIP_PRIORITY as readonly string[]).indexOf(m);
  return i < 0 ? MEMBERSHIP_PRIORITY.length : i;
}

export interface VisibilityQuery {
  roomId: string;
  events: SyncEventRow[];
  /** Events at or after this position are visible without a check (the user's current join), Infinity for none. */
  checkedBelow: number;
  /** The user is joined to the room now. */
  joinedNow: boolean;
}

/** The ids of the events the user may not see, over all the rooms given. */
export async function hiddenEvents(db: Db, userId: string, queries: readonly VisibilityQuery[]): Promise<Set<string>> {
  const hidden = new Set<string>();
  const toCheck = queries.map((q) => ({ ...q, events: q.events.filter((e) => e.stream_ordering < q.checkedBelow) })).filter((q) => q.events.length > 0);
  if (toCheck.length === 0) return hidden;

  // The state before each event: history visibility and the user's membership.
  const lookups = [];
  for (const q of toCheck) {
    for (const e of q.events) {
      if (e.state_group_before === null) continue;
      lookups.push({ group: e.state_group_before, type: HISTORY_VISIBILITY, stateKey: '' }, { group: e.state_group_before, type: 'm.room.member', stateKey: userId });
    }
  }
  const byGroup = await stateAtGroupsForKeys(db, lookups);
  const ids = new Set<string>();
  for (const m of byGroup.values()) for (const id of m.values()) ids.add(id);
  const stateEvents = await loadEvents(db, [...ids]);
  const contentOf = (id: string | undefined) => (id === undefined ? undefined : stateEvents.get(id)?.json['content']);

  // Where the user's latest joined period ended, for rooms they are not joined to now.
  const departed = toCheck.filter((q) => !q.joinedNow).map((q) => q.roomId);
  const joinEnd = new Map<string, number>();
  if (departed.length > 0) {
    const history = await userMembershipHistory(db, userId, departed);
    const state = new Map<string, string>();
    for (const h of history) {
      if (state.get(h.room_id) === 'join' && h.membership !== 'join') joinEnd.set(h.room_id, h.stream_ordering);
      state.set(h.room_id, h.membership);
    }
  }

  for (const q of toCheck) {
    const endOfJoin = q.joinedNow ? Infinity : (joinEnd.get(q.roomId) ?? -Infinity);
    for (const e of q.events) {
      const m = e.state_group_before === null ? undefined : byGroup.get(e.state_group_before);
      let visibility = visibilityOf(contentOf(m?.get(`${HISTORY_VISIBILITY}\u0000`)));
      const memberId = m?.get(`m.room.member\u0000${userId}`);
      let membership = memberId === undefined ? undefined : membershipOf(contentOf(memberId));
      const content = e.json['content'];
      if (e.type === HISTORY_VISIBILITY && e.state_key === '') {
        const after = visibilityOf(content);
        if (VISIBILITY_PRIORITY.indexOf(after) < VISIBILITY_PRIORITY.indexOf(visibility)) visibility = after;
      }
      if (e.type === 'm.room.member' && e.state_key === userId) {
        const after = membershipOf(content);
        const prev = membership ?? 'leave';
        if (after === 'leave' && (prev === 'join' || prev === 'invite')) continue;
        membership = membershipRank(prev) < membershipRank(after) ? prev : after;
      }
      let ok: boolean;
      if (visibility === 'world_readable' || membership === 'join') ok = true;
      else if (visibility === 'shared') ok = e.stream_ordering < endOfJoin;
      else if (visibility === 'invited') ok = membership === 'invite';
      else ok = false;
      if (!ok) hidden.add(e.event_id);
    }
  }
  return hidden;
}

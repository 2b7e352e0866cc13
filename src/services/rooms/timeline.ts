/**
 * Reading a room: /messages, /context, /event, /members, /joined_members
 * and /timestamp_to_event. Every event served passes history visibility
 * (visibility.ts) and is serialized with its redaction and bundled
 * aggregations (serialize.ts).
 *
 * Pages run in topological order, (depth, stream ordering), over the
 * `events_room_topo` index, so a page deep in a long room costs what a page
 * at its end costs (bench/messages.ts).
 */
import type { Kysely } from 'kysely';
import { MatrixError } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { getEvents, type StoredEvent } from '../../storage/events.js';
import type { Schema } from '../../storage/schema.js';
import { roomMembers, stateAtGroup } from '../../storage/state.js';
import { eventNearTimestamp, getTimelineEvent, lastEventAtOrBefore, roomEndPosition, timelinePage, type TimelineEvent, type TopoPosition } from '../../storage/timeline.js';
import { lazyMemberDeviceKey, type LazyMemberCache } from '../streams/lazy-members.js';
import { topoTokenAfter, topoTokenBefore } from '../streams/stream-token.js';
import type { ClientEvent } from './client-event.js';
import { eventMatches, roomAllowed, type RoomEventFilter } from './event-filter.js';
import { minPosition, tokenPosition } from './positions.js';
import { serializeEvent, serializeEvents, timelineOptions } from './serialize.js';
import { requireRoomAccess, VisibilityChecker } from './visibility.js';

/** /messages page size: 10 by default, at most 1000 (as Synapse). */
export const MESSAGES_DEFAULT_LIMIT = 10;
export const MESSAGES_MAX_LIMIT = 1000;

export interface MessagesRequest {
  dir: 'b' | 'f';
  from?: string;
  to?: string;
  limit?: number;
  filter?: RoomEventFilter;
  /** The requesting device: its own events carry their transaction id, and lazy-loaded members it was sent are left out. */
  deviceId?: string | null;
}

export interface MessagesResponse {
  chunk: ClientEvent[];
  start: string;
  end?: string;
  state?: ClientEvent[];
}

function eventNotFound(): MatrixError {
  return new MatrixError(404, 'M_NOT_FOUND', 'Event not found.');
}

function positionOf(e: { depth: number; stream_ordering: number }): TopoPosition {
  return { depth: Number(e.depth), stream: Number(e.stream_ordering) };
}

/**
 * State after an event: the group before it, plus the event itself when it
 * is a state event. `type` restricts it to one event type.
 */
async function stateAfter(db: Db, e: TimelineEvent, type?: string): Promise<Map<string, string>> {
  const out = e.state_group_before === null ? new Map<string, string>() : await stateAtGroup(db, e.state_group_before, type === undefined ? undefined : { type });
  if (e.state_key !== null && (type === undefined || e.type === type)) out.set(`${e.type}\u0000${e.state_key}`, e.event_id);
  return out;
}

/** Member events (as of the state after `at`) for the senders of these events: lazy-loaded members. */
async function lazyMembers(db: Db, at: TimelineEvent, senders: Iterable<string>): Promise<StoredEvent[]> {
  const keys = [...new Set(senders)].map((s) => ['m.room.member', s] as [string, string]);
  const ids = new Map<string, string>();
  if (at.state_group_before !== null) for (const [k, id] of await stateAtGroup(db, at.state_group_before, keys)) ids.set(k, id);
  if (at.type === 'm.room.member' && at.state_key !== null && keys.some(([, s]) => s === at.state_key)) ids.set(`m.room.member\u0000${at.state_key}`, at.event_id);
  const events = await getEvents(db, [...ids.values()]);
  return [...ids.values()].map((id) => events.get(id)).filter((e): e is StoredEvent => e !== undefined);
}

export interface ContextResponse {
  event: ClientEvent;
  events_before: ClientEvent[];
  events_after: ClientEvent[];
  state: ClientEvent[];
  start: string;
  end: string;
}

export const MEMBERSHIPS = ['join', 'invite', 'knock', 'leave', 'ban'] as const;
export type Membership = (typeof MEMBERSHIPS)[number];

export interface MembersRequest {
  at?: string;
  membership?: Membership;
  notMembership?: Membership;
}

/**
 * The room-reading endpoints, over the server's database. /messages
 * records the lazy-loaded members it sends in the cache /sync shares, so
 * neither sends a device a member event it already has.
 */
export class TimelineService {
  constructor(
    private readonly d: {
      db: Kysely<Schema>;
      lazyMembers: LazyMemberCache;
      /** Fetches history from before what this server holds (federation's /backfill); returns how many events it stored. */
      backfill?: (roomId: string, limit: number) => Promise<number>;
    },
  ) {}

  /** GET /rooms/{roomId}/messages. */
  async messages(userId: string, roomId: string, req: MessagesRequest): Promise<MessagesResponse> {
    const db = this.d.db;
    const access = await requireRoomAccess(db, roomId, userId);
    const limit = Math.min(req.limit ?? req.filter?.limit ?? MESSAGES_DEFAULT_LIMIT, MESSAGES_MAX_LIMIT);
    let from: TopoPosition | undefined;
    let start: string;
    if (req.from !== undefined) {
      from = await tokenPosition(db, roomId, req.from, 'from');
      start = req.from;
    } else if (req.dir === 'b') {
      from = await roomEndPosition(db, roomId);
      start = from ? topoTokenAfter(from.depth, from.stream) : topoTokenAfter(0, 0);
    } else {
      start = topoTokenAfter(0, 0);
    }
    let to = req.to !== undefined ? await tokenPosition(db, roomId, req.to, 'to') : undefined;

    // A user who left reads up to their leave and no further.
    let clamped = false;
    if (access.leaveEvent) {
      const leave = positionOf(access.leaveEvent);
      if (req.dir === 'b') {
        if (from === undefined || minPosition(from, leave) === leave) from = leave;
      } else if (to === undefined || minPosition(to, leave) === leave) {
        to = leave;
        clamped = true;
      }
    }
    if (limit === 0 || !roomAllowed(req.filter, roomId)) return { chunk: [], start };

    let rows = await timelinePage(db, roomId, { dir: req.dir, from, to, limit: limit + 1, filter: req.filter });
    // Paging back past the oldest event held: the room's other servers may hold more.
    if (req.dir === 'b' && rows.length <= limit && this.d.backfill && (await this.d.backfill(roomId, limit)) > 0) {
      rows = await timelinePage(db, roomId, { dir: req.dir, from, to, limit: limit + 1, filter: req.filter });
    }
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    const res: MessagesResponse = { chunk: [], start };
    const last = page[page.length - 1];
    if (last) {
      // Backwards, the end of history is known (no more rows): no `end`. Forwards,
      // new events may still come, so a non-empty page keeps a token, as Synapse does,
      // unless the page stopped at `to` or at the user's leave.
      if (req.dir === 'b' && more) res.end = topoTokenBefore(last.depth, last.stream_ordering);
      if (req.dir === 'f' && (more || (to === undefined && !clamped))) res.end = topoTokenAfter(last.depth, last.stream_ordering);
    }
    const visible = await new VisibilityChecker(db, roomId, userId).filter(page);
    res.chunk = await serializeEvents(db, visible, timelineOptions(userId, req.deviceId));
    const first = visible[0];
    if (req.filter?.lazyLoadMembers && first) {
      let members = await lazyMembers(
        db,
        first,
        visible.map((e) => e.sender),
      );
      const cache = this.d.lazyMembers;
      // Without include_redundant_members, members this device already has are left out (as /sync does).
      const device = lazyMemberDeviceKey(userId, req.deviceId);
      if (!req.filter.includeRedundantMembers) members = members.filter((m) => !cache.has(device, roomId, m.state_key as string, m.event_id));
      for (const m of members) cache.remember(device, roomId, m.state_key as string, m.event_id);
      res.state = await serializeEvents(db, members, { userId });
    }
    return res;
  }

  /** GET /rooms/{roomId}/context/{eventId}: the event, events around it, and the state at the last one. */
  async context(userId: string, roomId: string, eventId: string, limit: number, filter: RoomEventFilter | undefined, deviceId?: string | null): Promise<ContextResponse> {
    const db = this.d.db;
    const event = await getTimelineEvent(db, eventId);
    if (!event || event.room_id !== roomId || event.outlier || event.soft_failed || event.rejected_reason !== null) throw eventNotFound();
    const checker = new VisibilityChecker(db, roomId, userId);
    if (!(await checker.canSee(event))) throw new MatrixError(403, 'M_FORBIDDEN', "You don't have permission to access that event.");

    const capped = Math.min(limit, MESSAGES_MAX_LIMIT);
    const beforeLimit = Math.floor(capped / 2);
    const afterLimit = capped - beforeLimit;
    const allowed = roomAllowed(filter, roomId);
    const [beforeRows, afterRows] = allowed
      ? await Promise.all([
          beforeLimit > 0
            ? timelinePage(db, roomId, { dir: 'b', from: { depth: Number(event.depth), stream: Number(event.stream_ordering) - 1 }, limit: beforeLimit, filter })
            : [],
          afterLimit > 0 ? timelinePage(db, roomId, { dir: 'f', from: positionOf(event), limit: afterLimit, filter }) : [],
        ])
      : [[], []];
    const [before, after] = await Promise.all([checker.filter(beforeRows), checker.filter(afterRows)]);

    const earliest = beforeRows[beforeRows.length - 1] ?? event;
    const latest = afterRows[afterRows.length - 1] ?? event;
    const lastServed = after[after.length - 1] ?? event;

    let stateIds: string[];
    if (filter?.lazyLoadMembers) {
      const all = await stateAfter(db, lastServed);
      const senders = new Set([...before, event, ...after].map((e) => e.sender));
      stateIds = [...all].filter(([k]) => !k.startsWith('m.room.member\u0000') || senders.has(k.slice('m.room.member\u0000'.length))).map(([, id]) => id);
    } else {
      stateIds = [...(await stateAfter(db, lastServed)).values()];
    }
    const stateEvents = await getEvents(db, stateIds);
    const state = stateIds
      .map((id) => stateEvents.get(id))
      .filter((e): e is StoredEvent => e !== undefined && eventMatches(filter, { type: e.type, sender: e.sender, content: e.json['content'] }));

    const opts = timelineOptions(userId, deviceId);
    const [servedBefore, servedEvent, servedAfter, servedState] = await Promise.all([
      serializeEvents(db, before, opts),
      serializeEvent(db, event, opts),
      serializeEvents(db, after, opts),
      serializeEvents(db, state, { userId }),
    ]);
    return {
      event: servedEvent,
      events_before: servedBefore,
      events_after: servedAfter,
      state: servedState,
      start: topoTokenBefore(Number(earliest.depth), Number(earliest.stream_ordering)),
      end: topoTokenAfter(Number(latest.depth), Number(latest.stream_ordering)),
    };
  }

  /** GET /rooms/{roomId}/event/{eventId}: 404 when missing, elsewhere, or not visible to the user. */
  async event(userId: string, roomId: string, eventId: string, deviceId?: string | null): Promise<ClientEvent> {
    const db = this.d.db;
    const event = await getTimelineEvent(db, eventId);
    if (!event || event.room_id !== roomId || event.outlier || event.soft_failed || event.rejected_reason !== null) throw eventNotFound();
    if (!(await new VisibilityChecker(db, roomId, userId).canSee(event))) throw eventNotFound();
    return serializeEvent(db, event, timelineOptions(userId, deviceId));
  }

  /**
   * GET /rooms/{roomId}/members: the member events now (joined users and
   * peekers), as of the user's leave (departed users), or as of `at`.
   * `membership` and `not_membership` together match either (the spec's "or").
   */
  async members(userId: string, roomId: string, req: MembersRequest): Promise<{ chunk: ClientEvent[] }> {
    const db = this.d.db;
    let ids: string[];
    if (req.at !== undefined) {
      const pos = await tokenPosition(db, roomId, req.at, 'at');
      const at = await lastEventAtOrBefore(db, roomId, pos);
      if (!at) throw new MatrixError(404, 'M_NOT_FOUND', `Can't find event for token ${req.at}`);
      if (!(await new VisibilityChecker(db, roomId, userId).canSee(at))) {
        throw new MatrixError(403, 'M_FORBIDDEN', `User ${userId} not allowed to view events in room ${roomId} at token ${req.at}`);
      }
      ids = [...(await stateAfter(db, at, 'm.room.member')).values()];
    } else {
      const access = await requireRoomAccess(db, roomId, userId);
      if (access.leaveEvent) ids = [...(await stateAfter(db, access.leaveEvent, 'm.room.member')).values()];
      else ids = (await roomMembers(db, roomId, MEMBERSHIPS)).map((m) => m.event_id);
    }
    const events = await getEvents(db, ids);
    const members = ids
      .map((id) => events.get(id))
      .filter((e): e is StoredEvent => {
        if (!e) return false;
        if (req.membership === undefined && req.notMembership === undefined) return true;
        const m = (e.json['content'] as Record<string, unknown> | undefined)?.['membership'];
        return (req.membership !== undefined && m === req.membership) || (req.notMembership !== undefined && m !== req.notMembership);
      })
      .sort((a, b) => a.stream_ordering - b.stream_ordering);
    return { chunk: await serializeEvents(db, members, { userId }) };
  }

  /** GET /rooms/{roomId}/joined_members: joined users with the profile their member event carries. */
  async joinedMembers(userId: string, roomId: string): Promise<{ joined: Record<string, { display_name?: string; avatar_url?: string }> }> {
    const db = this.d.db;
    const access = await requireRoomAccess(db, roomId, userId, { allowDeparted: false });
    if (access.membership !== 'join' && !access.peeking) {
      throw new MatrixError(403, 'M_FORBIDDEN', 'Getting joined members while not being a current member of the room is forbidden.');
    }
    const joined = await roomMembers(db, roomId, ['join']);
    const events = await getEvents(
      db,
      joined.map((m) => m.event_id),
    );
    const out: Record<string, { display_name?: string; avatar_url?: string }> = {};
    for (const m of joined) {
      const content = events.get(m.event_id)?.json['content'] as Record<string, unknown> | undefined;
      const profile: { display_name?: string; avatar_url?: string } = {};
      if (typeof content?.['displayname'] === 'string') profile.display_name = content['displayname'];
      if (typeof content?.['avatar_url'] === 'string') profile.avatar_url = content['avatar_url'];
      out[m.user_id] = profile;
    }
    return { joined: out };
  }

  /** GET /v1/rooms/{roomId}/timestamp_to_event: joined users (or anyone, in a world_readable room). */
  async timestampToEvent(userId: string, roomId: string, ts: number, dir: 'f' | 'b'): Promise<{ event_id: string; origin_server_ts: number }> {
    const db = this.d.db;
    await requireRoomAccess(db, roomId, userId, { allowDeparted: false });
    const found = await eventNearTimestamp(db, roomId, ts, dir);
    if (!found) throw new MatrixError(404, 'M_NOT_FOUND', `Unable to find event from ${ts} in direction ${dir}`);
    return found;
  }
}

/**
 * GET /sync: what changed for a user since a token, or (no token) a snapshot
 * of everything, and waiting for news when there is none.
 *
 * The shape of one computation, all rooms at once (storage/sync.ts):
 * 1. Positions: the settled database positions (positions.ts) and those of
 *    the in-memory streams (typing, receipts, presence), read first, so
 *    that next_batch never claims anything not yet looked at.
 * 2. Rooms: the user's memberships (current_state) and, for an incremental
 *    sync, their own membership events since the token, which say which
 *    rooms were newly joined (sent like an initial sync of that room), left
 *    or banned (`leave`, with the timeline up to the leave), or invited to.
 * 3. Timelines: the newest `limit` events of each room after the token, as
 *    one query; `limited` when there were more; history visibility checked
 *    for events from before the user's current membership.
 * 4. State: at the start of the timeline (or its end with
 *    `use_state_after`): the full state for initial / full_state / newly
 *    joined rooms, otherwise the keys that changed over the gap. Read from
 *    current_state where it has not changed since the point wanted, else
 *    from the state group before the timeline's first event.
 *    Lazy-loading keeps only the members who sent timeline events (and the
 *    user, and the heroes), minus those this device already has.
 * 5. Summary, ephemeral (typing, receipts), account data, unread counts,
 *    presence; for incremental syncs, `device_lists` (services/e2ee/
 *    device-lists.ts: a change there makes the sync non-empty), and, as the
 *    response goes out, the device's one-time key counts and unused
 *    fallback key types (which never do).
 * 6. To-device messages of the requesting device (services/e2ee/to-device.ts):
 *    at most 100, next_batch stopping at the last one when more remain; the
 *    `since` token acknowledges (deletes) those it covers, once per request.
 *
 * An incremental sync with nothing new answers after one positions query
 * (or waits on the notifier: a new event for the user wakes it at once and
 * it computes again).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { GLOBAL, getAccountData } from '../../storage/account-data.js';
import type { MemberChange } from '../../storage/device-lists.js';
import { forgottenRoomIds } from '../../storage/memberships.js';
import type { EventSqlFilter } from '../../storage/event-filter-sql.js';
import { transactionIds } from '../../storage/events.js';
import { usersSharingRoomWith } from '../../storage/presence.js';
import type { Schema } from '../../storage/schema.js';
import { stateAtGroupsForKeys, type StateLookup } from '../../storage/state.js';
import {
  accountDataBetween,
  currentStateContents,
  currentStateRows,
  eventsBetween,
  eventsInWindow,
  heroes as heroesOf,
  joinedMembers,
  memberRows,
  memberCounts,
  membershipAt,
  recentEvents,
  roomsWithEvents,
  stateKeysChanged,
  userMemberships,
  userMembershipEvents,
  type MembershipRow,
  type SyncEventRow,
} from '../../storage/sync.js';
import { getTimelineEvents as loadEvents } from '../../storage/timeline.js';
import type { Requester } from '../auth.js';
import { acknowledgeToDevice, toDeviceForSync } from '../e2ee/to-device.js';
import { deviceListChanges } from '../e2ee/device-lists.js';
import { syncKeyCounts } from '../e2ee/keys.js';
import type { Notifier } from '../notifier.js';
import type { PresenceService, PresenceState } from '../presence.js';
import type { PushService } from '../push/push-service.js';
import type { ReceiptsService } from '../receipts.js';
import { toClientEvent } from '../rooms/client-event.js';
import { blocksAll, DEFAULT_TIMELINE_LIMIT, eventMatches, roomAllowed, type SyncFilter } from '../rooms/event-filter.js';
import { replacedState, serializeEvents } from '../rooms/serialize.js';
import { hiddenEvents } from '../rooms/visibility.js';
import type { TypingService } from '../typing.js';
import { STRIPPED_STATE_TYPES, stripped, syncClientEvent, type StrippedStateEvent } from './format.js';
import { lazyMemberDeviceKey, LazyMemberCache } from '../streams/lazy-members.js';
import { SharedRun } from '../streams/shared-run.js';
import { StreamPositions } from '../streams/positions.js';
import { SyncUserCache } from './user-cache.js';
import { decodeStreamToken, encodeStreamToken, topoTokenBefore, type StreamToken } from '../streams/stream-token.js';
import { withSubsystemLogger } from '../../logger.js';

export interface SyncServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  logger: Logger;
  typing?: TypingService;
  receipts?: ReceiptsService;
  presence?: PresenceService;
  push?: PushService;
  /** Which member events each device was sent (shared with /messages). */
  lazyMembers?: LazyMemberCache;
  /** The server's settled stream positions (shared with the pusher loop, so the two compute them once). */
  positions?: StreamPositions;
}

export interface SyncRequest {
  requester: Requester;
  since?: string;
  filter: SyncFilter;
  fullState: boolean;
  timeoutMs: number;
  setPresence: PresenceState;
  /** `use_state_after`: the key to answer with (`state_after`, or the unstable name the client used). */
  stateAfterKey?: string;
  /** Aborts the wait when the client goes away. */
  signal?: AbortSignal;
}

type Json = Record<string, unknown>;

/** Longest a /sync may wait, whatever `timeout` says (setTimeout's range is far larger). */
export const MAX_SYNC_TIMEOUT_MS = 60 * 60_000;
/** Incremental windows up to this many positions are read with one scan of the stream index. */
const SMALL_WINDOW = 2000;
/** How long a window's events are shared between syncs, and how many windows are kept. */
const WINDOW_TTL_MS = 1000;
const WINDOW_CACHE_MAX = 4;
/** Poll interval while positions are held back by writers still running. */
const HELD_POLL_MS = 100;

interface RoomEntry {
  roomId: string;
  kind: 'join' | 'leave';
  /** Timeline bounds: events with after < position <= upto. */
  after: number;
  upto: number;
  /** Send the full state (initial sync, full_state, newly joined). */
  full: boolean;
  newlyJoined: boolean;
  /** The user's current membership event's position: later events need no visibility check. */
  membershipStream: number;
  events: SyncEventRow[];
  limited: boolean;
  /** Aggregations bundled into timeline events (initial, limited or newly joined timelines, as Synapse). */
  bundle: boolean;
}

type Positions = StreamToken;

function sameToken(a: StreamToken, b: StreamToken): boolean {
  return (
    a.events === b.events &&
    a.accountData === b.accountData &&
    a.receipts === b.receipts &&
    a.typing === b.typing &&
    a.toDevice === b.toDevice &&
    a.deviceLists === b.deviceLists &&
    a.presence === b.presence
  );
}

const key = (type: string, stateKey: string) => `${type}\u0000${stateKey}`;

export class SyncService {
  private readonly positions: StreamPositions;
  private readonly lazyMembers: LazyMemberCache;
  private readonly userCache = new SyncUserCache();
  private readonly windows = new Map<string, { at: number; rows: Promise<SyncEventRow[]> }>();
  private readonly tokenRun = new SharedRun(() => this.readToken());

  constructor(private readonly d: SyncServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.sync');
    this.positions = d.positions ?? new StreamPositions(d.db);
    this.lazyMembers = d.lazyMembers ?? new LazyMemberCache();
  }

  /**
   * The current position of every stream, as next_batch would carry it.
   * Concurrent callers share one reading (a caller arriving during one gets
   * the next), so a hundred syncs woken together read the positions once.
   */
  currentToken(): Promise<StreamToken> {
    return this.tokenRun.get();
  }

  private async readToken(): Promise<StreamToken> {
    const [db, receipts] = await Promise.all([this.positions.current(), this.d.receipts?.position() ?? Promise.resolve(0)]);
    return {
      events: db.events,
      accountData: db.accountData,
      receipts,
      typing: this.d.typing?.position() ?? 0,
      toDevice: db.toDevice,
      deviceLists: db.deviceLists,
      presence: this.d.presence?.position ?? 0,
    };
  }

  async sync(req: SyncRequest): Promise<Json> {
    const since = req.since === undefined ? undefined : decodeStreamToken(req.since);
    const userId = req.requester.userId;
    const release = this.d.presence ? await this.d.presence.userSyncing(userId, req.setPresence) : undefined;
    try {
      const deadline = Date.now() + Math.min(Math.max(req.timeoutMs, 0), MAX_SYNC_TIMEOUT_MS);
      let acked = false;
      for (;;) {
        const remaining = deadline - Date.now();
        const mayWait = since !== undefined && !req.fullState && remaining > 0 && !req.signal?.aborted && !this.d.notifier.closed;
        // Listen before looking, so an event that lands while we compute still wakes us.
        const stop = new AbortController();
        const onAbort = () => stop.abort();
        req.signal?.addEventListener('abort', onAbort, { once: true });
        const waitMs = this.positions.held ? Math.min(remaining, HELD_POLL_MS) : remaining;
        const woken = mayWait ? this.d.notifier.wait(userId, waitMs, stop.signal) : undefined;
        try {
          const pos = await this.currentToken();
          const from = since ? clampToken(since, pos) : undefined;
          // The token acknowledges the to-device messages it covers: they go (once per request).
          if (from && !acked && req.requester.deviceId) {
            acked = true;
            await acknowledgeToDevice(this.d.db, userId, req.requester.deviceId, from.toDevice);
          }
          const { body, empty } = await this.compute(req, from, pos);
          if (!woken || !empty) return await this.withKeyCounts(req, body);
          await woken;
          if (req.signal?.aborted || this.d.notifier.closed || Date.now() >= deadline) return await this.withKeyCounts(req, body);
        } finally {
          stop.abort();
          req.signal?.removeEventListener('abort', onAbort);
        }
      }
    } finally {
      release?.();
    }
  }

  /**
   * The device's one-time key counts and unused fallback key types, read
   * as the response goes out (they never make a sync non-empty, and a
   * long-poll that waited reports them as they are now).
   */
  private async withKeyCounts(req: SyncRequest, body: Json): Promise<Json> {
    Object.assign(body, await syncKeyCounts(this.d.db, req.requester.userId, req.requester.deviceId));
    return body;
  }

  private async compute(req: SyncRequest, since: StreamToken | undefined, pos: Positions): Promise<{ body: Json; empty: boolean }> {
    const db = this.d.db;
    const userId = req.requester.userId;
    const deviceKey = lazyMemberDeviceKey(userId, req.requester.deviceId);
    const f = req.filter;
    const now = Date.now();
    const nextBatch = encodeStreamToken(pos);
    const rooms = { join: {} as Json, invite: {} as Json, leave: {} as Json, knock: {} as Json };
    const body: Json = {
      next_batch: nextBatch,
      account_data: { events: [] as Json[] },
      presence: { events: [] as Json[] },
      rooms,
      to_device: { events: [] },
      device_lists: { changed: [], left: [] },
      device_one_time_keys_count: {},
      device_unused_fallback_key_types: [],
    };
    if (since && !req.fullState && sameToken(since, pos)) return { body, empty: true };

    // ---- to-device messages for this device: at most 100; when more remain, next_batch stops at the last one sent
    let toDeviceCount = 0;
    const toDeviceId = req.requester.deviceId;
    if (toDeviceId && (!since || since.toDevice < pos.toDevice)) {
      const td = await toDeviceForSync(db, userId, toDeviceId, since?.toDevice ?? 0, pos.toDevice);
      toDeviceCount = td.events.length;
      body['to_device'] = { events: td.events };
      if (td.position !== pos.toDevice) body['next_batch'] = encodeStreamToken({ ...pos, toDevice: td.position });
    }

    // ---- account data (first: the ignored users shape the timeline query)
    const adFrom = since?.accountData ?? 0;
    const adRows = !since || since.accountData < pos.accountData ? await accountDataBetween(db, userId, adFrom, pos.accountData) : [];
    const ignoredChanged = adRows.some((r) => r.room_id === GLOBAL && r.type === 'm.ignored_user_list');
    let ignored = since && !ignoredChanged ? this.userCache.ignored(userId, since.accountData) : undefined;
    ignored ??= await this.ignoredUsers(userId);
    this.userCache.setIgnored(userId, pos.accountData, ignored);

    // ---- which rooms, and in what way
    const tf = f.room.timeline;
    const timelineSql = this.timelineSql(f, ignored);
    let changes: MembershipRow[] = [];
    let allMemberships: MembershipRow[] | undefined;
    let prefetched: SyncEventRow[] | undefined;
    let windowMembers: MemberChange[] | undefined;
    if (since && since.events < pos.events) {
      const cached = this.userCache.memberships(userId, since.events);
      const limit = tf.limit ?? DEFAULT_TIMELINE_LIMIT;
      if (cached && pos.events - since.events <= SMALL_WINDOW && limit > 0 && !blocksAll(tf)) {
        // A woken sync: one scan of the window finds both the timeline events and any membership change.
        const joinedIds = cached
          .filter(
            (m) =>
              m.membership === 'join' && m.stream_ordering <= pos.events && roomAllowed(f.room, m.room_id) && roomAllowed({ rooms: tf.rooms, notRooms: tf.notRooms }, m.room_id),
          )
          .map((m) => m.room_id);
        const rows = await this.sharedWindow(since.events, pos.events);
        changes = rows
          .filter((r) => r.type === 'm.room.member' && r.state_key === userId)
          .map((r) => ({ room_id: r.room_id, event_id: r.event_id, stream_ordering: r.stream_ordering, sender: r.sender, membership: membershipOf(r) }));
        if (changes.length === 0) {
          allMemberships = cached;
          // The window's member events in the user's rooms, for the device-list changes (no query of their own).
          const userRooms = new Set(cached.filter((m) => m.membership === 'join').map((m) => m.room_id));
          windowMembers = rows
            .filter((r) => r.type === 'm.room.member' && r.state_key !== null && userRooms.has(r.room_id))
            .map((r) => ({ room_id: r.room_id, user_id: r.state_key as string, membership: membershipOf(r) }));
          const rooms = new Set(joinedIds);
          prefetched = rows.filter((r) => rooms.has(r.room_id) && eventMatches(timelineSql, { type: r.type, sender: r.sender, content: r.json['content'] }));
        }
      } else {
        changes = await userMembershipEvents(db, userId, since.events, pos.events);
        if (changes.length === 0) allMemberships = cached;
      }
    } else if (since) {
      allMemberships = this.userCache.memberships(userId, since.events);
    }
    if (!allMemberships) allMemberships = await userMemberships(db, userId);
    // Still true at pos: either just read, or no membership event of the user since the token.
    this.userCache.setMemberships(userId, pos.events, allMemberships);
    const memberships = allMemberships.filter((m) => m.stream_ordering <= pos.events && roomAllowed(f.room, m.room_id));
    const current = new Map(memberships.map((m) => [m.room_id, m]));
    const joined = memberships.filter((m) => m.membership === 'join');
    const entries: RoomEntry[] = [];
    const invites: MembershipRow[] = [];
    const knocks: MembershipRow[] = [];
    const leaves: { m: MembershipRow; after: number; full: boolean; newlyJoined: boolean }[] = [];
    const entry = (m: MembershipRow, kind: 'join' | 'leave', after: number, full: boolean, newlyJoined: boolean): RoomEntry => ({
      roomId: m.room_id,
      kind,
      after,
      upto: kind === 'join' ? pos.events : m.stream_ordering,
      full,
      newlyJoined,
      membershipStream: kind === 'join' ? m.stream_ordering : Infinity,
      events: [],
      limited: false,
      bundle: full,
    });

    if (!since) {
      for (const m of memberships) {
        if (m.membership === 'join') entries.push(entry(m, 'join', 0, true, false));
        else if (m.membership === 'invite') invites.push(m);
        else if (m.membership === 'knock') knocks.push(m);
        // Bans and kicks always show (as Synapse); rooms the user left themself only with include_leave.
        else if (m.membership === 'ban' || f.room.includeLeave || m.sender !== userId) leaves.push({ m, after: 0, full: true, newlyJoined: false });
      }
    } else {
      const byRoom = new Map<string, MembershipRow[]>();
      for (const c of changes) {
        if (!roomAllowed(f.room, c.room_id)) continue;
        let l = byRoom.get(c.room_id);
        if (!l) byRoom.set(c.room_id, (l = []));
        l.push(c);
      }
      const newly = new Set<string>();
      const onlyJoins: string[] = [];
      for (const m of joined) {
        const ch = byRoom.get(m.room_id);
        if (!ch) continue;
        if (ch.some((c) => c.membership !== 'join')) newly.add(m.room_id);
        else onlyJoins.push(m.room_id);
      }
      // A join in the window is new unless the user was joined already at the token (e.g. a profile change).
      if (onlyJoins.length > 0) {
        const before = await membershipAt(db, userId, onlyJoins, since.events);
        for (const r of onlyJoins) if (before.get(r) !== 'join') newly.add(r);
      }
      for (const m of joined) {
        const isNew = newly.has(m.room_id);
        entries.push(entry(m, 'join', isNew ? 0 : since.events, isNew || req.fullState, isNew));
      }
      for (const [roomId, ch] of byRoom) {
        const m = current.get(roomId);
        if (!m || m.membership === 'join') continue;
        if (m.membership === 'invite') invites.push(m);
        else if (m.membership === 'knock') knocks.push(m);
        else {
          const hadJoin = ch.some((c) => c.membership === 'join');
          leaves.push({ m, after: since.events, full: hadJoin || req.fullState, newlyJoined: hadJoin });
        }
      }
    }
    if (leaves.length > 0) {
      const forgotten = await forgottenRoomIds(db, userId);
      for (const l of leaves) if (!forgotten.has(l.m.room_id)) entries.push(entry(l.m, 'leave', l.after, l.full, l.newlyJoined));
    }

    const globalAd = adRows.filter((r) => r.room_id === GLOBAL && eventMatches(f.accountData, { type: r.type }));
    const globalEvents: Json[] = globalAd.map((r) => ({ type: r.type, content: r.content }));
    // Push rules as the server applies them (defaults included), on every
    // initial sync as Synapse sends them, and whenever the user changed them.
    const pushRulesChanged = globalAd.some((r) => r.type === 'm.push_rules');
    if (this.d.push && (!since || pushRulesChanged) && eventMatches(f.accountData, { type: 'm.push_rules' })) {
      const live = { type: 'm.push_rules', content: (await this.d.push.pushRulesContent(userId)) as unknown as Json };
      const i = globalEvents.findIndex((e) => (e as { type?: string }).type === 'm.push_rules');
      if (i >= 0) globalEvents[i] = live;
      else globalEvents.push(live);
    }
    (body['account_data'] as { events: Json[] }).events = globalEvents;
    const roomAd = new Map<string, Json[]>();
    const addRoomAd = (rows: typeof adRows) => {
      for (const r of rows) {
        if (r.room_id === GLOBAL || blocksAll(f.room.accountData) || !eventMatches(f.room.accountData, { type: r.type, roomId: r.room_id })) continue;
        let l = roomAd.get(r.room_id);
        if (!l) roomAd.set(r.room_id, (l = []));
        const i = l.findIndex((x) => x['type'] === r.type);
        if (i >= 0) l.splice(i, 1);
        l.push({ type: r.type, content: r.content });
      }
    };
    addRoomAd(adRows);
    // Rooms sent in full in an incremental sync get all their account data (tags kept from an earlier membership).
    const fullIds = new Set(entries.filter((e) => e.full).map((e) => e.roomId));
    if (since && fullIds.size > 0 && adFrom > 0) addRoomAd((await accountDataBetween(db, userId, 0, adFrom)).filter((r) => fullIds.has(r.room_id)));

    // ---- timelines
    await this.loadTimelines(entries, since, f, timelineSql, userId, prefetched);

    // ---- ephemeral: typing and receipts, for joined rooms
    const ephemeral = await this.ephemeral(entries, since, pos, f, userId);

    // Incremental: a joined room shows only when something in it changed.
    const shown = entries.filter((e) => e.kind === 'leave' || e.full || e.events.length > 0 || e.limited || ephemeral.has(e.roomId) || roomAd.has(e.roomId));

    // ---- state, summaries, lazy-loaded members
    const stateAfter = req.stateAfterKey !== undefined;
    const { state, summaries } = await this.roomState(shown, since, f, userId, deviceKey, stateAfter);

    // ---- serialise
    const ownIds = req.requester.deviceId ? shown.flatMap((e) => e.events.filter((x) => x.sender === userId).map((x) => x.event_id)) : [];
    const txnIds = await transactionIds(db, userId, req.requester.deviceId ?? '', ownIds);
    const allState = [...state.values()].flat();
    // prev_content for the timeline's state events (what clients render changes from); the state section goes without, as it can be a whole large room.
    const prev = await replacedState(
      db,
      shown.flatMap((e) => e.events),
    );
    const extra = new Map<string, Record<string, unknown>>();
    for (const [id, p] of prev) extra.set(id, { ...p });
    for (const [id, txn] of txnIds) extra.set(id, { ...extra.get(id), transaction_id: txn });
    const format = async (events: SyncEventRow[], aggregations: boolean): Promise<Json[]> => {
      if (f.eventFormat === 'federation') {
        return events.map((e) => ({ ...e.json, unsigned: { ...(e.json['unsigned'] as Json | undefined), age: Math.max(0, now - e.origin_server_ts), ...extra.get(e.event_id) } }));
      }
      const client = await serializeEvents(db, events, { userId, now, aggregations, extraUnsigned: extra });
      return client.map((c) => syncClientEvent(c, f.eventFields));
    };
    const bundled = shown.filter((e) => e.bundle).flatMap((e) => e.events);
    const plain = shown.filter((e) => !e.bundle).flatMap((e) => e.events);
    const [bundledOut, plainOut, stateOut] = await Promise.all([format(bundled, true), format(plain, false), format(allState, false)]);
    const serialized = new Map<string, Json>();
    bundled.forEach((e, i) => serialized.set(e.event_id, bundledOut[i] as Json));
    plain.forEach((e, i) => serialized.set(e.event_id, plainOut[i] as Json));
    const stateSerialized = new Map<string, Json>();
    allState.forEach((e, i) => stateSerialized.set(e.event_id, stateOut[i] as Json));

    const counts = this.d.push
      ? await this.d.push.unreadCountsForRooms(
          userId,
          shown.filter((e) => e.kind === 'join').map((e) => e.roomId),
        )
      : undefined;
    const threadCounts = f.room.timeline.unreadThreadNotifications;
    const stateKeyName = req.stateAfterKey ?? 'state';

    for (const e of shown) {
      const first = e.events[0];
      const room: Json = {
        timeline: {
          events: e.events.map((x) => serialized.get(x.event_id)),
          limited: e.limited,
          prev_batch: first ? topoTokenBefore(first.depth, first.stream_ordering) : encodeStreamToken({ ...pos, events: e.upto }),
        },
        [stateKeyName]: { events: (state.get(e.roomId) ?? []).map((x) => stateSerialized.get(x.event_id)) },
        account_data: { events: roomAd.get(e.roomId) ?? [] },
      };
      if (e.kind === 'join') {
        room['ephemeral'] = { events: ephemeral.get(e.roomId) ?? [] };
        room['summary'] = summaries.get(e.roomId) ?? {};
        const c = counts?.get(e.roomId);
        if (threadCounts) {
          room['unread_notifications'] = c ? { ...c.main } : { notification_count: 0, highlight_count: 0 };
          room['unread_thread_notifications'] = c ? { ...c.threads } : {};
        } else {
          room['unread_notifications'] = c ? { notification_count: c.notification_count, highlight_count: c.highlight_count } : { notification_count: 0, highlight_count: 0 };
        }
        rooms.join[e.roomId] = room;
      } else {
        rooms.leave[e.roomId] = room;
      }
    }

    // ---- invites and knocks: stripped state
    const shownInvites = invites.filter((m) => !ignored.has(m.sender));
    const stripped = await this.strippedStates([...shownInvites, ...knocks], now);
    for (const m of shownInvites) rooms.invite[m.room_id] = { invite_state: { events: stripped.get(m.room_id) ?? [] } };
    for (const m of knocks) rooms.knock[m.room_id] = { knock_state: { events: stripped.get(m.room_id) ?? [] } };

    // ---- presence
    const presence = await this.presenceEvents(since, pos, f, userId, entries);
    (body['presence'] as { events: Json[] }).events = presence;

    // ---- device lists (incremental syncs): whose keys to query again, whom to stop tracking
    const deviceLists = since ? await deviceListChanges(db, userId, since, pos, windowMembers) : undefined;
    if (deviceLists) body['device_lists'] = deviceLists;
    const deviceListNews = deviceLists !== undefined && (deviceLists.changed.length > 0 || deviceLists.left.length > 0);

    const empty =
      !deviceListNews && toDeviceCount === 0 && shown.length === 0 && shownInvites.length === 0 && knocks.length === 0 && globalAd.length === 0 && presence.length === 0;
    return { body, empty };
  }

  /** m.ignored_user_list: their events are left out of timelines and their invites out of sync, as Synapse does. */
  private async ignoredUsers(userId: string): Promise<Set<string>> {
    const content = await getAccountData(this.d.db, userId, GLOBAL, 'm.ignored_user_list');
    const list = content?.['ignored_users'];
    if (list === null || typeof list !== 'object' || Array.isArray(list)) return new Set();
    return new Set(Object.keys(list).filter((u) => u !== userId));
  }

  /**
   * All timeline events in the window (after, upto], read once for every
   * sync that asks within a second (a commit wakes all the room's members
   * with the same window).
   */
  private sharedWindow(after: number, upto: number): Promise<SyncEventRow[]> {
    const key = `${after}:${upto}`;
    const now = Date.now();
    for (const [k, w] of this.windows) if (now - w.at > WINDOW_TTL_MS) this.windows.delete(k);
    let w = this.windows.get(key);
    if (!w) {
      w = { at: now, rows: eventsBetween(this.d.db, after, upto) };
      w.rows.catch(() => this.windows.delete(key));
      this.windows.set(key, w);
      if (this.windows.size > WINDOW_CACHE_MAX) this.windows.delete(this.windows.keys().next().value as string);
    }
    return w.rows;
  }

  /** The timeline filter as SQL conditions, ignored users left out. */
  private timelineSql(f: SyncFilter, ignored: Set<string>): EventSqlFilter {
    const tf = f.room.timeline;
    return { types: tf.types, notTypes: tf.notTypes, senders: tf.senders, notSenders: [...tf.notSenders, ...ignored], containsUrl: tf.containsUrl };
  }

  /**
   * Fills each entry's timeline: the newest `limit` events in its bounds,
   * `limited` when there were more. `prefetched`: the window's events of
   * the joined rooms, already read.
   */
  private async loadTimelines(
    entries: RoomEntry[],
    since: StreamToken | undefined,
    f: SyncFilter,
    sqlFilter: EventSqlFilter,
    userId: string,
    prefetched?: SyncEventRow[],
  ): Promise<void> {
    const tf = f.room.timeline;
    const limit = tf.limit ?? DEFAULT_TIMELINE_LIMIT;
    if (blocksAll(tf)) return;
    const live = entries.filter((e) => roomAllowed({ rooms: tf.rooms, notRooms: tf.notRooms }, e.roomId) && e.upto > e.after);
    if (live.length === 0) return;
    if (limit === 0) {
      const withEvents = await roomsWithEvents(
        this.d.db,
        live.map((e) => ({ roomId: e.roomId, after: e.after, upto: e.upto })),
      );
      for (const e of live) e.limited = withEvents.has(e.roomId);
      return;
    }
    const byRoom = new Map<string, SyncEventRow[]>();
    // A short incremental window: one scan of the stream index for all rooms.
    const windowed = since && since.events > 0 ? live.filter((e) => e.after === since.events) : [];
    const windowEnd = Math.max(0, ...windowed.map((e) => e.upto));
    if (since && windowed.length > 0 && windowEnd - since.events <= SMALL_WINDOW) {
      const rows =
        prefetched ??
        (await eventsInWindow(
          this.d.db,
          windowed.map((e) => e.roomId),
          since.events,
          windowEnd,
          sqlFilter,
        ));
      const upto = new Map(windowed.map((e) => [e.roomId, e.upto]));
      for (const r of rows) {
        if (r.stream_ordering > (upto.get(r.room_id) ?? 0)) continue;
        let l = byRoom.get(r.room_id);
        if (!l) byRoom.set(r.room_id, (l = []));
        l.push(r);
        if (l.length > limit + 1) l.shift();
      }
      for (const e of windowed) if (!byRoom.has(e.roomId)) byRoom.set(e.roomId, []);
    }
    const rest = live.filter((e) => !byRoom.has(e.roomId));
    if (rest.length > 0) {
      const fetched = await recentEvents(
        this.d.db,
        rest.map((e) => ({ roomId: e.roomId, after: e.after, upto: e.upto })),
        limit + 1,
        sqlFilter,
      );
      for (const [r, l] of fetched) byRoom.set(r, l);
    }
    for (const e of live) {
      const rows = byRoom.get(e.roomId) ?? [];
      e.limited = rows.length > limit || e.newlyJoined;
      e.events = rows.length > limit ? rows.slice(rows.length - limit) : rows;
      if (e.limited) e.bundle = true;
    }
    const hidden = await hiddenEvents(
      this.d.db,
      userId,
      live.map((e) => ({ roomId: e.roomId, events: e.events, checkedBelow: e.membershipStream, joinedNow: e.kind === 'join' })),
    );
    if (hidden.size > 0) for (const e of live) e.events = e.events.filter((x) => !hidden.has(x.event_id));
  }

  /** m.typing and m.receipt per joined room (all of them for an initial sync or a newly joined room). */
  private async ephemeral(entries: RoomEntry[], since: StreamToken | undefined, pos: Positions, f: SyncFilter, userId: string): Promise<Map<string, Json[]>> {
    const out = new Map<string, Json[]>();
    const ef = f.room.ephemeral;
    if (blocksAll(ef)) return out;
    const joined = entries.filter((e) => e.kind === 'join' && roomAllowed({ rooms: ef.rooms, notRooms: ef.notRooms }, e.roomId));
    if (joined.length === 0) return out;
    const add = (roomId: string, ev: Json) => {
      if (!eventMatches(ef, { type: ev['type'] as string })) return;
      let l = out.get(roomId);
      if (!l) out.set(roomId, (l = []));
      l.push(ev);
    };
    const fresh = joined.filter((e) => !since || e.newlyJoined).map((e) => e.roomId);
    const ongoing = since ? joined.filter((e) => !e.newlyJoined).map((e) => e.roomId) : [];

    const typing = this.d.typing;
    if (typing) {
      const changed = since && since.typing < pos.typing ? new Set(typing.changedRoomsSince(since.typing)) : new Set<string>();
      for (const r of ongoing) if (changed.has(r)) add(r, { type: 'm.typing', content: { user_ids: typing.forRoom(r) } });
      for (const r of fresh) {
        const users = typing.forRoom(r);
        if (users.length > 0) add(r, { type: 'm.typing', content: { user_ids: users } });
      }
    }
    const receipts = this.d.receipts;
    if (receipts) {
      const found = new Map<string, unknown>();
      if (fresh.length > 0) for (const [r, c] of await receipts.since(fresh, 0, userId, pos.receipts)) found.set(r, c);
      if (since && ongoing.length > 0 && since.receipts < pos.receipts) {
        for (const [r, c] of await receipts.since(ongoing, since.receipts, userId, pos.receipts)) found.set(r, c);
      }
      for (const [r, c] of found) add(r, { type: 'm.receipt', content: c });
    }
    return out;
  }

  /**
   * The `state` (or `state_after`) section of each room, and the summary of
   * joined rooms that need one.
   */
  private async roomState(
    shown: RoomEntry[],
    since: StreamToken | undefined,
    f: SyncFilter,
    userId: string,
    deviceKey: string,
    stateAfter: boolean,
  ): Promise<{ state: Map<string, SyncEventRow[]>; summaries: Map<string, Json> }> {
    const db = this.d.db;
    const lazy = f.room.state.lazyLoadMembers;
    const redundantOk = f.room.state.includeRedundantMembers;
    if (lazy && !since) this.lazyMembers.reset(deviceKey);

    // The point each room's state is taken at: before the timeline's first event, or after its end.
    interface Point {
      /** State reflects every event before this position. */
      stream: number;
      group: number | null;
      /** An event applied on top of the group (the last event, for "after"). */
      overlay?: SyncEventRow;
    }
    const points = new Map<string, Point>();
    // Rooms whose state section can be non-empty: sent in full, a gap, or members to load.
    const stateRooms = shown.filter((e) => e.full || e.limited || (e.events.length > 0 && (stateAfter || lazy)));
    const needLast = stateRooms.filter((e) => stateAfter || e.events.length === 0);
    const last =
      needLast.length > 0
        ? await recentEvents(
            db,
            needLast.map((e) => ({ roomId: e.roomId, after: 0, upto: e.upto })),
            1,
          )
        : new Map<string, SyncEventRow[]>();
    for (const e of stateRooms) {
      const first = e.events[0];
      if (!stateAfter && first) {
        points.set(e.roomId, { stream: first.stream_ordering, group: first.state_group_before });
      } else {
        const l = last.get(e.roomId)?.[0];
        points.set(e.roomId, l ? { stream: l.stream_ordering + 1, group: l.state_group_before, overlay: l.state_key !== null ? l : undefined } : { stream: 0, group: null });
      }
    }

    // Keys that changed between the token and the point, for incremental rooms.
    const deltaRooms = stateRooms.filter((e) => !e.full && (stateAfter || e.limited));
    const changed = await stateKeysChanged(
      db,
      deltaRooms.map((e) => ({ roomId: e.roomId, after: e.after, before: (points.get(e.roomId) as Point).stream })),
    );

    // Summaries: initial/full rooms, and rooms whose membership changed in view.
    const summaryRooms = shown.filter(
      (e) => e.kind === 'join' && (e.full || e.events.some((x) => x.type === 'm.room.member') || (changed.get(e.roomId) ?? []).some((k) => k.type === 'm.room.member')),
    );
    const summaries = new Map<string, Json>();
    const heroIds = new Map<string, string[]>();
    if (summaryRooms.length > 0) {
      const ids = summaryRooms.map((e) => e.roomId);
      const [counts, heroes, names] = await Promise.all([
        memberCounts(db, ids),
        heroesOf(db, ids, userId, 5),
        currentStateContents(db, ids, ['m.room.name', 'm.room.canonical_alias']),
      ]);
      const named = new Set(
        names
          .filter(
            (n) =>
              (n.type === 'm.room.name' && typeof n.content['name'] === 'string' && n.content['name'] !== '') ||
              (n.type === 'm.room.canonical_alias' && typeof n.content['alias'] === 'string' && n.content['alias'] !== ''),
          )
          .map((n) => n.room_id),
      );
      for (const id of ids) {
        const c = counts.get(id) ?? { joined: 0, invited: 0 };
        const s: Json = { 'm.joined_member_count': c.joined, 'm.invited_member_count': c.invited };
        if (!named.has(id)) {
          const h = heroes.get(id) ?? [];
          s['m.heroes'] = h;
          heroIds.set(id, h);
        }
        summaries.set(id, s);
      }
    }

    // Lazy loading: the members each room's state must carry.
    const lazyMembers = new Map<string, Set<string>>();
    if (lazy) {
      for (const e of shown) {
        const need = new Set<string>();
        const inTimeline = new Set<string>();
        for (const x of e.events) {
          if (stateAfter || !inTimeline.has(x.sender)) need.add(x.sender);
          if (x.type === 'm.room.member' && x.state_key !== null) inTimeline.add(x.state_key);
        }
        if (e.full) need.add(userId);
        for (const h of heroIds.get(e.roomId) ?? []) need.add(h);
        lazyMembers.set(e.roomId, need);
      }
    }

    // Which keys each room's state holds, and their event at the point.
    const chosen = new Map<string, Map<string, string>>();
    const lookups: StateLookup[] = [];
    const pending: { roomId: string; k: string }[] = [];
    const want = (roomId: string, point: Point, type: string, stateKey: string, currentId?: string, currentStream?: number) => {
      let m = chosen.get(roomId);
      if (!m) chosen.set(roomId, (m = new Map()));
      const k = key(type, stateKey);
      if (m.has(k)) return;
      if (currentId !== undefined && currentStream !== undefined && currentStream < point.stream) {
        m.set(k, currentId);
      } else if (point.overlay && point.overlay.type === type && point.overlay.state_key === stateKey) {
        m.set(k, point.overlay.event_id);
      } else if (point.group !== null) {
        lookups.push({ group: point.group, type, stateKey });
        pending.push({ roomId, k });
      }
    };
    const fullRooms = shown.filter((e) => e.full);
    if (fullRooms.length > 0) {
      const ids = fullRooms.map((e) => e.roomId);
      const pairs = lazy ? fullRooms.flatMap((e) => [...(lazyMembers.get(e.roomId) ?? [])].map((u) => ({ roomId: e.roomId, userId: u }))) : undefined;
      for (const row of await currentStateRows(db, ids, pairs)) want(row.room_id, points.get(row.room_id) as Point, row.type, row.state_key, row.event_id, row.stream_ordering);
    }
    for (const e of deltaRooms) {
      const p = points.get(e.roomId) as Point;
      for (const k of changed.get(e.roomId) ?? []) want(e.roomId, p, k.type, k.state_key);
    }
    if (lazy) {
      for (const e of stateRooms) {
        if (e.full) continue;
        const p = points.get(e.roomId) as Point;
        for (const u of lazyMembers.get(e.roomId) ?? []) want(e.roomId, p, 'm.room.member', u);
      }
    }
    if (lookups.length > 0) {
      const found = await stateAtGroupsForKeys(db, lookups);
      pending.forEach(({ roomId, k }, i) => {
        const l = lookups[i] as StateLookup;
        const id = found.get(l.group)?.get(k);
        if (id !== undefined) chosen.get(roomId)?.set(k, id);
      });
    }

    // Load, drop what the timeline already carries, filter, de-duplicate lazy members.
    const ids = [...chosen.values()].flatMap((m) => [...m.values()]);
    const loaded = await loadEvents(db, ids);
    const state = new Map<string, SyncEventRow[]>();
    const sf = f.room.state;
    const stateBlocked = blocksAll(sf);
    for (const e of shown) {
      const inTimeline = new Set(e.events.map((x) => x.event_id));
      const list: SyncEventRow[] = [];
      if (!stateBlocked && roomAllowed({ rooms: sf.rooms, notRooms: sf.notRooms }, e.roomId)) {
        for (const id of chosen.get(e.roomId)?.values() ?? []) {
          const ev = loaded.get(id);
          if (!ev || ev.state_key === null) continue;
          if (!stateAfter && inTimeline.has(id)) continue;
          if (!eventMatches(sf, { type: ev.type, sender: ev.sender, content: ev.json['content'] })) continue;
          if (
            lazy &&
            !redundantOk &&
            since &&
            ev.type === 'm.room.member' &&
            !(e.full && ev.state_key === userId) &&
            this.lazyMembers.has(deviceKey, e.roomId, ev.state_key, ev.event_id)
          ) {
            continue;
          }
          list.push(ev);
        }
      }
      list.sort((a, b) => a.stream_ordering - b.stream_ordering);
      state.set(e.roomId, list);
      if (lazy) {
        for (const ev of [...list, ...e.events]) {
          if (ev.type === 'm.room.member' && ev.state_key !== null) this.lazyMembers.remember(deviceKey, e.roomId, ev.state_key, ev.event_id);
        }
      }
    }
    return { state, summaries };
  }

  /**
   * Stripped state for invites and knocks: what the room shows to someone
   * outside (create, join rules, name, avatar, topic, alias, encryption),
   * the inviter's membership, and the invite or knock event itself. An
   * invite from another server carries its own (`unsigned.invite_room_state`).
   */
  private async strippedStates(ms: readonly MembershipRow[], now: number): Promise<Map<string, Json[]>> {
    const out = new Map<string, Json[]>();
    if (ms.length === 0) return out;
    const db = this.d.db;
    const own = await loadEvents(
      db,
      ms.map((m) => m.event_id),
    );
    const ids = ms.map((m) => m.room_id);
    const [contents, inviters] = await Promise.all([
      currentStateContents(db, ids, STRIPPED_STATE_TYPES),
      memberRows(
        db,
        ms.filter((m) => m.membership === 'invite').map((m) => ({ roomId: m.room_id, userId: m.sender })),
      ),
    ]);
    const inviterEvents = await loadEvents(
      db,
      inviters.map((r) => r.event_id),
    );
    for (const m of ms) {
      const e = own.get(m.event_id);
      const events: Json[] = [];
      const provided = (e?.json['unsigned'] as Json | undefined)?.[m.membership === 'invite' ? 'invite_room_state' : 'knock_room_state'];
      if (Array.isArray(provided)) {
        for (const s of provided) if (s !== null && typeof s === 'object') events.push(stripped(s as StrippedStateEvent) as unknown as Json);
      } else {
        for (const c of contents)
          if (c.room_id === m.room_id) events.push(stripped({ type: c.type, state_key: c.state_key, sender: c.sender, content: c.content }) as unknown as Json);
        for (const r of inviters) {
          if (r.room_id !== m.room_id || r.state_key !== m.sender || m.membership !== 'invite') continue;
          const ie = inviterEvents.get(r.event_id);
          if (ie) events.push(stripped({ type: ie.type, state_key: ie.state_key ?? '', sender: ie.sender, content: ie.json['content'] }) as unknown as Json);
        }
      }
      if (e) {
        const { room_id: _r, ...client } = toClientEvent(e, now);
        events.push(client as unknown as Json);
      }
      out.set(m.room_id, events);
    }
    return out;
  }

  /** m.presence events of users sharing a room with the user (and their own), changed since the token. */
  private async presenceEvents(since: StreamToken | undefined, pos: Positions, f: SyncFilter, userId: string, entries: RoomEntry[]): Promise<Json[]> {
    const presence = this.d.presence;
    if (!presence || !presence.enabled || blocksAll(f.presence)) return [];
    const newlyJoined = entries.filter((e) => e.kind === 'join' && e.newlyJoined).map((e) => e.roomId);
    const moved = !since || since.presence < pos.presence;
    if (!moved && newlyJoined.length === 0) return [];
    const users = new Set(await usersSharingRoomWith(this.d.db, userId));
    users.add(userId);
    const events = moved ? await presence.since(users, since?.presence ?? 0, pos.presence) : [];
    if (since && newlyJoined.length > 0) {
      // Members of newly joined rooms: their current presence, whatever the token.
      const seen = new Set(events.map((e) => e.sender));
      const members = await joinedMembers(this.d.db, newlyJoined);
      for (const e of await presence.since(
        members.filter((u) => !seen.has(u)),
        0,
        pos.presence,
      ))
        events.push(e);
    }
    return events.filter((e) => eventMatches(f.presence, { type: e.type, sender: e.sender })) as unknown as Json[];
  }
}

function membershipOf(e: SyncEventRow): string {
  const m = (e.json['content'] as Record<string, unknown> | undefined)?.['membership'];
  return typeof m === 'string' ? m : '';
}

/** A token from the future (or from before a restart of an in-memory stream) is brought back to the present, as Synapse does. */
function clampToken(since: StreamToken, pos: StreamToken): StreamToken {
  return {
    events: Math.min(since.events, pos.events),
    accountData: Math.min(since.accountData, pos.accountData),
    receipts: Math.min(since.receipts, pos.receipts),
    typing: Math.min(since.typing, pos.typing),
    toDevice: Math.min(since.toDevice, pos.toDevice),
    deviceLists: Math.min(since.deviceLists, pos.deviceLists),
    presence: Math.min(since.presence, pos.presence),
  };
}

/**
 * The federation read endpoints: events, state and history served to other
 * servers (`http/federation/room-events.ts`), as Synapse serves them.
 *
 * Every call first checks the requesting server (server-access.ts): it has a
 * user joined to the room now ("Host not in room.") and the room's server
 * ACL allows it ("Server is banned from room"), both 403 M_FORBIDDEN.
 *
 * PDUs go out in federation form: the stored JSON (redacted events are
 * stored redacted), with `event_id` in rooms v1/v2 and without it from v3
 * on. Rejected events are never served. The events of /event, /backfill and
 * /get_missing_events pass history visibility for servers
 * (server-visibility.ts); those the server may not see are served
 * redacted, as Synapse does. State and auth chains are served whole.
 * - /event/{id}: any stored event, outliers included.
 * - /state, /state_ids: the state before the event (its state group before;
 *   404 for outliers, whose state is not known) and the auth chain of that
 *   state.
 * - /event_auth: the event's auth chain.
 * - /backfill: from the `v` events back along prev_events, newest first by
 *   (depth, stream ordering), at most `limit` (capped at 100) events, the
 *   `v` events included; outliers are not walked.
 * - /get_missing_events: breadth-first back from `latest_events` along
 *   prev_events, not past `earliest_events` nor below `min_depth`, at most
 *   `limit` (capped at 20), oldest first; the latest events themselves are
 *   not included.
 * - /timestamp_to_event: the room's event nearest a timestamp.
 */
import type { PDU } from '../../core/pdu.js';
import { redactWith } from '../../core/redaction.js';
import { requireRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { isJsonObject } from '../../core/json-values.js';
import { MatrixError } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { authChainIds } from '../../storage/events.js';
import { getRoom } from '../../storage/rooms.js';
import { prevEventIds, servedEvents, storedPrevEvents, type ServedEventRow } from '../../storage/served-events.js';
import { stateAtGroup } from '../../storage/state.js';
import { eventNearTimestamp } from '../../storage/timeline.js';
import { assertServerInRoom } from './server-access.js';
import { eventsVisibleToServer } from './server-visibility.js';

/** Synapse serves at most this many events per /backfill. */
export const MAX_BACKFILL = 100;
/** And at most this many per /get_missing_events. */
export const MAX_MISSING_EVENTS = 20;
export const DEFAULT_MISSING_EVENTS = 10;

/** `{origin, origin_server_ts, pdus}`: /event and /backfill answer as a transaction. */
export interface PduTransaction {
  origin: string;
  origin_server_ts: number;
  pdus: PDU[];
}

export interface MissingEventsQuery {
  earliestEvents: readonly string[];
  latestEvents: readonly string[];
  limit: number;
  minDepth: number;
}

export interface ServedEventsDeps {
  db: Db;
  serverName: string;
  now?: () => number;
}

const notFound = (message: string) => new MatrixError(404, 'M_NOT_FOUND', message);

/** Topological order, newest first. */
const newestFirst = (a: { depth: number; stream_ordering: number }, b: { depth: number; stream_ordering: number }) => b.depth - a.depth || b.stream_ordering - a.stream_ordering;

export class ServedEventsService {
  private readonly now: () => number;

  constructor(private readonly d: ServedEventsDeps) {
    this.now = d.now ?? Date.now;
  }

  /** GET /event/{eventId}. */
  async event(origin: string, eventId: string): Promise<PduTransaction> {
    const db = this.d.db;
    const e = (await servedEvents(db, [eventId])).get(eventId);
    if (!e || e.rejected_reason !== null) throw notFound(`Event ${eventId} not found.`);
    await assertServerInRoom(db, e.room_id, origin);
    const rv = await this.roomVersion(e.room_id);
    const visible = await eventsVisibleToServer(db, origin, [e]);
    return this.transaction([pduForm(e, rv, visible.has(e.event_id))]);
  }

  /** GET /state/{roomId}?event_id=: the state before the event and its auth chain, as PDUs. */
  async state(origin: string, roomId: string, eventId: string): Promise<{ pdus: PDU[]; auth_chain: PDU[] }> {
    const { rv, stateIds, authIds } = await this.stateAt(origin, roomId, eventId);
    const rows = await servedEvents(this.d.db, [...stateIds, ...authIds]);
    const pdus = (ids: readonly string[]) =>
      ids
        .map((id) => rows.get(id))
        .filter((e): e is ServedEventRow => e !== undefined && e.rejected_reason === null)
        .sort(newestFirst)
        .reverse()
        .map((e) => pduForm(e, rv, true));
    return { pdus: pdus(stateIds), auth_chain: pdus(authIds) };
  }

  /** GET /state_ids/{roomId}?event_id=. */
  async stateIds(origin: string, roomId: string, eventId: string): Promise<{ pdu_ids: string[]; auth_chain_ids: string[] }> {
    const { stateIds, authIds } = await this.stateAt(origin, roomId, eventId);
    return { pdu_ids: stateIds, auth_chain_ids: authIds };
  }

  /** GET /event_auth/{roomId}/{eventId}: every event in the event's auth chain (not the event), oldest first. */
  async eventAuth(origin: string, roomId: string, eventId: string): Promise<{ auth_chain: PDU[] }> {
    const db = this.d.db;
    await assertServerInRoom(db, roomId, origin);
    const e = (await servedEvents(db, [eventId])).get(eventId);
    if (!e || e.room_id !== roomId || e.rejected_reason !== null) throw notFound(`Could not find event ${eventId}`);
    const rv = await this.roomVersion(roomId);
    const rows = await servedEvents(db, await authChain(db, rv, roomId, [eventId]));
    const chain = [...rows.values()]
      .filter((a) => a.rejected_reason === null && a.room_id === roomId)
      .sort(newestFirst)
      .reverse();
    return { auth_chain: chain.map((a) => pduForm(a, rv, true)) };
  }

  /** GET /backfill/{roomId}?v=…&limit=: the `v` events and those before them, newest first. */
  async backfill(origin: string, roomId: string, from: readonly string[], limit: number): Promise<PduTransaction> {
    const db = this.d.db;
    await assertServerInRoom(db, roomId, origin);
    const max = Math.min(limit, MAX_BACKFILL);
    const rv = await this.roomVersion(roomId);
    const seeds = [...(await servedEvents(db, from)).values()].filter((e) => e.room_id === roomId);
    // Breadth-first by depth: always continue from the newest event not yet taken (Synapse's priority queue).
    const queue: { event_id: string; depth: number; stream_ordering: number }[] = seeds.map((e) => ({ event_id: e.event_id, depth: e.depth, stream_ordering: e.stream_ordering }));
    const taken = new Set<string>();
    const prevsOf = new Map<string, { event_id: string; depth: number; stream_ordering: number }[]>();
    while (queue.length > 0 && taken.size < max) {
      queue.sort(newestFirst);
      const next = queue.shift()!;
      if (taken.has(next.event_id)) continue;
      taken.add(next.event_id);
      if (!prevsOf.has(next.event_id)) {
        // The prev events of everything queued are likely needed next: one query for all of them.
        const ask = [next, ...queue].map((q) => q.event_id).filter((id) => !prevsOf.has(id));
        for (const id of ask) prevsOf.set(id, []);
        for (const p of await storedPrevEvents(db, roomId, ask)) prevsOf.get(p.event_id)!.push({ event_id: p.prev_event_id, depth: p.depth, stream_ordering: p.stream_ordering });
      }
      for (const p of prevsOf.get(next.event_id)!) if (!taken.has(p.event_id)) queue.push(p);
    }
    const rows = [...(await servedEvents(db, [...taken])).values()].filter((e) => e.rejected_reason === null).sort(newestFirst);
    return this.transaction(await this.forServer(origin, rv, rows));
  }

  /** POST /get_missing_events/{roomId}. */
  async missingEvents(origin: string, roomId: string, q: MissingEventsQuery): Promise<{ events: PDU[] }> {
    const db = this.d.db;
    await assertServerInRoom(db, roomId, origin);
    const max = Math.min(q.limit, MAX_MISSING_EVENTS);
    if (max <= 0) return { events: [] };
    const rv = await this.roomVersion(roomId);
    const seen = new Set(q.earliestEvents);
    const latestRows = await servedEvents(
      db,
      q.latestEvents.filter((id) => !seen.has(id)),
    );
    let front = [...latestRows.values()].filter((e) => e.room_id === roomId).map((e) => e.event_id);
    for (const id of front) seen.add(id);
    const found: ServedEventRow[] = [];
    while (front.length > 0 && found.length < max) {
      const prevs = await prevEventIds(db, front);
      const candidates: string[] = [];
      for (const id of front) {
        for (const p of prevs.get(id) ?? []) {
          if (seen.has(p)) continue;
          seen.add(p);
          candidates.push(p);
        }
      }
      const rows = await servedEvents(db, candidates);
      const next: string[] = [];
      for (const id of candidates) {
        const e = rows.get(id);
        // Unknown events end the walk there; rejected ones are walked through but not served.
        if (!e || e.room_id !== roomId || e.depth < q.minDepth) continue;
        next.push(id);
        if (e.rejected_reason === null && found.length < max) found.push(e);
      }
      front = next;
    }
    // Found newest first, walking back: served oldest first.
    found.reverse();
    return { events: await this.forServer(origin, rv, found) };
  }

  /** GET /timestamp_to_event/{roomId}?ts=&dir=. */
  async timestampToEvent(origin: string, roomId: string, ts: number, dir: 'f' | 'b'): Promise<{ event_id: string; origin_server_ts: number }> {
    await assertServerInRoom(this.d.db, roomId, origin);
    const found = await eventNearTimestamp(this.d.db, roomId, ts, dir);
    if (!found) throw notFound(`Unable to find event from ${ts} in direction ${dir}`);
    return found;
  }

  /** The state before an event of the room (ids) and that state's auth chain; 404 where it is not known. */
  private async stateAt(origin: string, roomId: string, eventId: string): Promise<{ rv: RoomVersion; stateIds: string[]; authIds: string[] }> {
    const db = this.d.db;
    await assertServerInRoom(db, roomId, origin);
    const e = (await servedEvents(db, [eventId])).get(eventId);
    if (!e || e.room_id !== roomId || e.rejected_reason !== null) throw notFound(`Could not find event ${eventId}`);
    if (e.outlier) throw notFound(`State not known at event ${eventId}`);
    const rv = await this.roomVersion(roomId);
    const stateIds = e.state_group_before === null ? [] : [...(await stateAtGroup(db, e.state_group_before)).values()];
    const authIds = await authChain(db, rv, roomId, stateIds);
    return { rv, stateIds, authIds };
  }

  /** The events in federation form, redacted where `origin` may not see them. */
  private async forServer(origin: string, rv: RoomVersion, rows: readonly ServedEventRow[]): Promise<PDU[]> {
    const visible = await eventsVisibleToServer(this.d.db, origin, rows);
    return rows.map((e) => pduForm(e, rv, visible.has(e.event_id)));
  }

  private async roomVersion(roomId: string): Promise<RoomVersion> {
    const room = await getRoom(this.d.db, roomId);
    if (!room) throw notFound('Unknown room');
    return requireRoomVersion(room.room_version);
  }

  private transaction(pdus: PDU[]): PduTransaction {
    return { origin: this.d.serverName, origin_server_ts: this.now(), pdus };
  }
}

/**
 * The auth chains of `ids` (without them, unless one cites another). From
 * v12 on the create event is cited by no event but is in every other
 * event's auth chain (its id is the room id's), as Synapse serves it.
 */
async function authChain(db: Db, rv: RoomVersion, roomId: string, ids: readonly string[]): Promise<string[]> {
  const chain = await authChainIds(db, ids);
  if (!rv.roomIdFromCreateEvent) return chain;
  const createId = `$${roomId.slice(1)}`;
  if (!chain.includes(createId) && ids.some((id) => id !== createId)) chain.push(createId);
  return chain;
}

/**
 * A stored event as a PDU for another server: its JSON (redacted when the
 * server may not see it), `event_id` present in v1/v2 and absent from v3 on,
 * without `unsigned.redacted_because` (as Synapse's get_pdu_json).
 */
export function pduForm(e: Pick<ServedEventRow, 'event_id' | 'json'>, rv: RoomVersion, visible: boolean): PDU {
  const json: Record<string, unknown> = visible ? { ...e.json } : redactWith(e.json, rv);
  if (rv.eventIdFormat === 'v1') json['event_id'] = e.event_id;
  else delete json['event_id'];
  const unsigned = json['unsigned'];
  if (isJsonObject(unsigned) && 'redacted_because' in unsigned) {
    const { redacted_because: _, ...rest } = unsigned;
    json['unsigned'] = rest;
  }
  return json as unknown as PDU;
}

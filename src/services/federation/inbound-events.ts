/**
 * PDUs received from other servers, into rooms this server holds: the
 * events of a `/send` transaction, and the events fetched to place them.
 *
 * Each PDU is verified (PduVerifier: format, signatures, content hash), the
 * room's server ACL is applied to the origin, then, in its room's queue (so a room's events are taken in the order
 * they came, while rooms proceed side by side):
 * - auth events we do not hold are fetched from the sending server
 *   (`/event_auth`) and stored as outliers;
 * - a gap before it (prev events we do not hold in the DAG) is asked for
 *   with `get_missing_events` (between our forward extremities and it), and
 *   what comes back is placed first, oldest first;
 * - prev events still missing are stood in for by the state at them
 *   (`/state` and `/event` for each), stored as outliers and resolved into
 *   the state before the PDU;
 * - the persister then runs the auth checks (against its auth events, the
 *   state before it, and the current state, which soft-fails) and stores it.
 * A PDU that fails verification is dropped with its reason; one that fails
 * the auth rules is stored rejected and counts as handled, as Synapse
 * answers. Nothing one PDU does stops the others.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PDU } from '../../core/pdu.js';
import { roomVersion, type RoomVersion } from '../../core/room-versions.js';
import type { Tx } from '../../storage/db.js';
import { eventPlacements, eventsCitedByAccepted, type EventPlacement } from '../../storage/events.js';
import { forwardExtremities, getRoom, type RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { stateAtGroup } from '../../storage/state.js';
import type { EventPipeline } from '../rooms/event-pipeline.js';
import { PersistRun, type PersistedEvent } from '../rooms/event-persister.js';
import { resolveMaps, type StateMap } from '../rooms/state-resolution.js';
import type { PduVerifier } from './pdu-verifier.js';
import { serverAllowedInRoom } from './server-access.js';
import type { RemoteEvents } from './remote-events.js';

export interface PduResult {
  error?: string;
}

export interface FederationEventsDeps {
  db: Kysely<Schema>;
  pipeline: EventPipeline;
  verifier: PduVerifier;
  remote: RemoteEvents;
  logger: Logger;
}

export interface PlaceOptions {
  /** Ask the origin for a gap before the event (get_missing_events). */
  fillGaps: boolean;
  /** History fetched with /backfill: ordered before every live event, no extremity. */
  backfilled?: boolean;
  /** A membership event of our send_join/leave/knock from this server: passed on to the room's other servers. */
  sendOnBehalfOf?: string;
}

/** A verified event with its id. */
export interface IdentifiedPdu {
  eventId: string;
  pdu: PDU;
}

/** Most prev events of one PDU stood in for by their state (the format allows 20). */
const MAX_STATE_FETCHES = 20;

function refIds(refs: PDU['prev_events']): string[] {
  return refs.map((r) => (typeof r === 'string' ? r : r[0]));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A PDU of a run persisted in one transaction; `known` when it is already in the DAG (or earlier in the run). */
interface RunEntry {
  ev: IdentifiedPdu;
  known: boolean;
}

/**
 * The PDUs from `evs[from]` on that need nothing fetched, up to the first
 * that does: every auth event stored (anywhere) or earlier in the run, every
 * prev event in this room's DAG or earlier in the run. The checks
 * `placeInQueue` makes, on one read of the events they cite.
 */
function readyRun(roomId: string, evs: readonly IdentifiedPdu[], from: number, placed: ReadonlyMap<string, EventPlacement>): RunEntry[] {
  const run: RunEntry[] = [];
  const inRun = new Set<string>();
  for (let i = from; i < evs.length; i++) {
    const ev = evs[i]!;
    const own = placed.get(ev.eventId);
    if (inRun.has(ev.eventId) || (own && !own.outlier)) {
      run.push({ ev, known: true });
      continue;
    }
    const authReady = refIds(ev.pdu.auth_events).every((a) => inRun.has(a) || placed.has(a));
    const prevsReady = refIds(ev.pdu.prev_events).every((p) => {
      if (inRun.has(p)) return true;
      const e = placed.get(p);
      return e !== undefined && !e.outlier && e.room_id === roomId;
    });
    if (!authReady || !prevsReady) break;
    run.push({ ev, known: false });
    inRun.add(ev.eventId);
  }
  return run;
}

/**
 * Events in an order where each comes after the events of the set it cites
 * as auth events (then by depth), so each can be checked against them when
 * stored. Cycles, which a valid DAG never has, end up in depth order.
 */
export function authOrder(events: readonly IdentifiedPdu[]): IdentifiedPdu[] {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const out: IdentifiedPdu[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (e: IdentifiedPdu): void => {
    if (state.has(e.eventId)) return;
    state.set(e.eventId, 'visiting');
    for (const a of refIds(e.pdu.auth_events)) {
      const dep = byId.get(a);
      if (dep) visit(dep);
    }
    state.set(e.eventId, 'done');
    out.push(e);
  };
  for (const e of [...events].sort((x, y) => x.pdu.depth - y.pdu.depth)) visit(e);
  return out;
}

export class FederationEvents {
  constructor(private readonly d: FederationEventsDeps) {}

  /**
   * The PDUs of one transaction from `origin`: grouped by room, each room's
   * in order, rooms side by side. PDUs of rooms this server does not hold
   * are ignored (no result), as Synapse does.
   */
  async receivePdus(origin: string, pdus: readonly unknown[]): Promise<Record<string, PduResult>> {
    const byRoom = new Map<string, unknown[]>();
    for (const raw of pdus) {
      const roomId = typeof raw === 'object' && raw !== null ? (raw as { room_id?: unknown }).room_id : undefined;
      if (typeof roomId !== 'string') continue;
      let list = byRoom.get(roomId);
      if (!list) byRoom.set(roomId, (list = []));
      list.push(raw);
    }
    const results: Record<string, PduResult> = {};
    await Promise.all(
      [...byRoom].map(async ([roomId, list]) => {
        const room = await getRoom(this.d.db, roomId);
        const rv = room ? roomVersion(room.room_version) : undefined;
        if (!room || !rv) {
          this.d.logger.info({ origin, roomId, pdus: list.length }, 'ignoring PDUs of a room this server does not hold');
          return;
        }
        const verified = await Promise.all(list.map((raw) => this.d.verifier.verify(raw, rv)));
        // m.room.server_acl: a server the room bans has every PDU refused, before anything is fetched for it.
        if (!(await serverAllowedInRoom(this.d.db, roomId, origin))) {
          for (const v of verified) if (v.eventId !== undefined) results[v.eventId] = { error: 'Server is banned from room' };
          return;
        }
        const ok: IdentifiedPdu[] = [];
        for (const v of verified) {
          if (v.ok) ok.push({ eventId: v.eventId, pdu: v.pdu });
          else {
            if (v.eventId !== undefined) results[v.eventId] = { error: v.reason };
            this.d.logger.info({ origin, roomId, eventId: v.eventId, reason: v.reason }, 'dropped a PDU that failed its checks');
          }
        }
        if (ok.length > 0) await this.d.pipeline.inRoomQueue(roomId, () => this.placeAll(origin, roomId, rv, ok, results));
      }),
    );
    return results;
  }

  /**
   * The verified PDUs of one room of a transaction, in order, in the room's
   * queue. The events they cite are looked up once; a run of PDUs that need
   * nothing fetched (auth events stored, prev events in the DAG or earlier
   * PDUs of the run) is persisted in one transaction, as `placeInQueue`
   * would persist each. Any other PDU goes through `placeInQueue` alone. A
   * PDU that throws inside a run rolls the run back: the PDUs before it
   * are persisted again without it, and it goes through `placeInQueue`
   * alone, so its result is what that path gives.
   */
  private async placeAll(origin: string, roomId: string, rv: RoomVersion, evs: readonly IdentifiedPdu[], results: Record<string, PduResult>): Promise<void> {
    let placed: Map<string, EventPlacement> | undefined;
    let i = 0;
    while (i < evs.length) {
      placed ??= await eventPlacements(
        this.d.db,
        evs.slice(i).flatMap((e) => [e.eventId, ...refIds(e.pdu.prev_events), ...refIds(e.pdu.auth_events)]),
      );
      const run = readyRun(roomId, evs, i, placed);
      const done = run.length > 0 ? await this.persistRun(roomId, run, placed) : 0;
      for (let k = 0; k < done; k++) results[run[k]!.ev.eventId] = {};
      i += done;
      if (done === run.length && run.length > 0) continue;
      // evs[i] needs something fetched, or failed inside the run: alone, as it would have been.
      const ev = evs[i]!;
      try {
        await this.placeInQueue(origin, roomId, rv, ev, { fillGaps: true });
        results[ev.eventId] = {};
      } catch (err) {
        this.d.logger.warn({ origin, roomId, eventId: ev.eventId, err: messageOf(err) }, 'could not handle a PDU');
        results[ev.eventId] = { error: messageOf(err) };
      }
      i++;
      placed = undefined;
    }
  }

  /**
   * Persists a run of ready PDUs in one transaction; returns how many of
   * the run's first PDUs are stored (all of them, or those before the one
   * that threw, persisted again on their own).
   */
  private async persistRun(roomId: string, run: readonly RunEntry[], placed: ReadonlyMap<string, EventPlacement>): Promise<number> {
    let failedAt: number | undefined;
    const attempt = (entries: readonly RunEntry[]) =>
      this.persist(roomId, async (tx, room) => {
        const fresh = entries.filter((e) => !e.known).map((e) => e.ev.eventId);
        const shared = new PersistRun(new Map(placed), await eventsCitedByAccepted(tx, fresh));
        for (const [k, e] of entries.entries()) {
          if (e.known) continue;
          try {
            await this.d.pipeline.persister.persist(tx, room, e.ev.pdu, { run: shared });
          } catch (err) {
            failedAt = k;
            throw err;
          }
        }
      });
    try {
      await attempt(run);
      return run.length;
    } catch (err) {
      this.d.logger.info(
        { roomId, eventId: failedAt === undefined ? undefined : run[failedAt]?.ev.eventId, err: messageOf(err) },
        'a run of PDUs failed; placing them again one by one',
      );
    }
    const before = failedAt ?? 0;
    if (before === 0) return 0;
    try {
      failedAt = undefined;
      await attempt(run.slice(0, before));
      return before;
    } catch {
      return 0;
    }
  }

  /**
   * Places one verified PDU of a room we hold: fetches what it needs from
   * `origin` and persists it, in the room's queue. Returns the persisted
   * event (rejected or soft-failed ones included).
   */
  async place(origin: string, roomId: string, rv: RoomVersion, ev: IdentifiedPdu, opts: PlaceOptions): Promise<PersistedEvent | undefined> {
    return this.d.pipeline.inRoomQueue(roomId, () => this.placeInQueue(origin, roomId, rv, ev, opts));
  }

  private async placeInQueue(origin: string, roomId: string, rv: RoomVersion, ev: IdentifiedPdu, opts: PlaceOptions): Promise<PersistedEvent | undefined> {
    const known = (await eventPlacements(this.d.db, [ev.eventId])).get(ev.eventId);
    if (known && !known.outlier) return undefined;
    await this.fetchAuthEvents(origin, roomId, rv, ev);
    let missing = await this.missingPrevs(roomId, ev.pdu);
    if (missing.length > 0 && opts.fillGaps) {
      await this.fillGap(origin, roomId, rv, ev);
      missing = await this.missingPrevs(roomId, ev.pdu);
    }
    const stateBefore = missing.length > 0 ? await this.stateFromRemote(origin, roomId, rv, ev.pdu, missing) : undefined;
    return this.persist(roomId, (tx, room) =>
      this.d.pipeline.persister.persist(tx, room, ev.pdu, {
        ...(stateBefore && { stateBefore }),
        ...(opts.backfilled && { backfilled: true }),
        ...(opts.sendOnBehalfOf !== undefined && { sendOnBehalfOf: opts.sendOnBehalfOf }),
      }),
    );
  }

  /** Runs `fn` in one persisting transaction with the room's row as it is now. */
  private persist<T>(roomId: string, fn: (tx: Tx, room: RoomRow) => Promise<T>): Promise<T> {
    return this.d.pipeline.transaction(async (tx) => {
      const room = await getRoom(tx, roomId);
      if (!room) throw new Error(`room ${roomId} is gone`);
      return fn(tx, room);
    });
  }

  /** Prev events of `pdu` not held in this room's DAG. */
  private async missingPrevs(roomId: string, pdu: PDU): Promise<string[]> {
    const prevs = refIds(pdu.prev_events);
    const placed = await eventPlacements(this.d.db, prevs);
    return prevs.filter((p) => {
      const e = placed.get(p);
      return !e || e.outlier || e.room_id !== roomId;
    });
  }

  /** Auth events of `ev` not stored at all: its auth chain from `origin`, stored as outliers. */
  private async fetchAuthEvents(origin: string, roomId: string, rv: RoomVersion, ev: IdentifiedPdu): Promise<void> {
    const ids = refIds(ev.pdu.auth_events);
    const have = await eventPlacements(this.d.db, ids);
    if (ids.every((a) => have.has(a))) return;
    const chain = await this.d.remote.eventAuth(origin, roomId, ev.eventId);
    await this.storeOutliers(roomId, rv, await this.verifyAll(chain, rv, roomId));
  }

  /**
   * The events between our forward extremities and `ev`, from `origin`
   * (at most MISSING_EVENTS_LIMIT), placed oldest first. Their own gaps are
   * not asked for (as Synapse does not): their missing prev events, at most
   * MAX_STATE_FETCHES for the whole answer, are stood in for by the state
   * at them; an event past that is left out.
   */
  private async fillGap(origin: string, roomId: string, rv: RoomVersion, ev: IdentifiedPdu): Promise<void> {
    const extremities = await forwardExtremities(this.d.db, roomId);
    const minDepth = extremities.reduce((m, e) => Math.min(m, e.depth), Number.MAX_SAFE_INTEGER);
    let fetched: unknown[];
    try {
      fetched = await this.d.remote.missingEvents(
        origin,
        roomId,
        extremities.map((e) => e.event_id),
        [ev.eventId],
        extremities.length > 0 ? minDepth : 0,
      );
    } catch (err) {
      this.d.logger.info({ origin, roomId, err: messageOf(err) }, 'get_missing_events failed; taking the state at the gap instead');
      return;
    }
    const events = (await this.verifyAll(fetched, rv, roomId)).filter((e) => e.eventId !== ev.eventId).sort((x, y) => x.pdu.depth - y.pdu.depth);
    // Their own gaps are not asked for; together they stand in at most MAX_STATE_FETCHES prev events by their state.
    let stateFetches = MAX_STATE_FETCHES;
    for (const e of events) {
      const missing = (await this.missingPrevs(roomId, e.pdu)).length;
      if (missing > stateFetches) {
        this.d.logger.info({ origin, roomId, eventId: e.eventId, missing }, 'not placing a missing event: the gap cites too many unknown prev events');
        continue;
      }
      stateFetches -= missing;
      try {
        await this.placeInQueue(origin, roomId, rv, e, { fillGaps: false });
      } catch (err) {
        this.d.logger.info({ origin, roomId, eventId: e.eventId, err: messageOf(err) }, 'could not place a missing event');
      }
    }
  }

  /**
   * The state before `pdu` where some of its prev events are missing: for
   * each, the state at it and it itself from `origin` (stored as outliers),
   * giving the state after it; with the states after the prev events we
   * hold, resolved.
   */
  private async stateFromRemote(origin: string, roomId: string, rv: RoomVersion, pdu: PDU, missing: string[]): Promise<StateMap> {
    if (missing.length > MAX_STATE_FETCHES) throw new Error(`too many missing prev events (${missing.length})`);
    const maps: StateMap[] = [];
    for (const prevId of missing) {
      const [{ pdus, authChain }, prevRaw] = await Promise.all([this.d.remote.stateAt(origin, roomId, prevId), this.d.remote.event(origin, prevId)]);
      const state = await this.verifyAll(pdus, rv, roomId);
      const chain = await this.verifyAll([...authChain, ...(prevRaw === undefined ? [] : [prevRaw])], rv, roomId);
      const stored = await this.storeOutliers(roomId, rv, [...chain, ...state]);
      const map: StateMap = new Map();
      for (const e of state) {
        if (e.pdu.state_key === undefined || stored.get(e.eventId) !== undefined) continue;
        map.set(`${e.pdu.type}\u0000${e.pdu.state_key}`, e.eventId);
      }
      const prev = chain.find((e) => e.eventId === prevId);
      if (!prev) throw new Error(`${origin} did not give the missing prev event ${prevId}`);
      if (prev.pdu.state_key !== undefined && stored.get(prevId) === undefined) map.set(`${prev.pdu.type}\u0000${prev.pdu.state_key}`, prevId);
      maps.push(map);
    }
    const placed = await eventPlacements(
      this.d.db,
      refIds(pdu.prev_events).filter((p) => !missing.includes(p)),
    );
    for (const p of placed.values()) if (p.state_group_after !== null) maps.push(await stateAtGroup(this.d.db, p.state_group_after));
    return resolveMaps(this.d.db, rv, maps);
  }

  /** Checks 1–3 on one PDU (PduVerifier). */
  verifyOne(raw: unknown, rv: RoomVersion): ReturnType<PduVerifier['verify']> {
    return this.d.verifier.verify(raw, rv);
  }

  /** Where a stored event sits (its state group before it), if stored. */
  async placement(eventId: string): Promise<{ stateGroupBefore: number | null; rejected?: string } | undefined> {
    const p = (await eventPlacements(this.d.db, [eventId])).get(eventId);
    return p ? { stateGroupBefore: p.state_group_before, rejected: p.rejected_reason ?? undefined } : undefined;
  }

  /** Verifies PDUs of `roomId` from a server's answer; the ones that fail (or belong elsewhere) are dropped. */
  async verifyAll(raws: readonly unknown[], rv: RoomVersion, roomId: string): Promise<IdentifiedPdu[]> {
    const out: IdentifiedPdu[] = [];
    const seen = new Set<string>();
    for (const v of await Promise.all(raws.map((r) => this.d.verifier.verify(r, rv)))) {
      if (!v.ok) {
        this.d.logger.info({ roomId, eventId: v.eventId, reason: v.reason }, 'dropped a fetched event that failed its checks');
        continue;
      }
      const inRoom = v.pdu.type === 'm.room.create' && rv.roomIdFromCreateEvent ? roomId === `!${v.eventId.slice(1)}` : v.pdu.room_id === roomId;
      if (!inRoom || seen.has(v.eventId)) continue;
      seen.add(v.eventId);
      out.push({ eventId: v.eventId, pdu: v.pdu });
    }
    return out;
  }

  /**
   * Stores events as outliers in auth order, skipping ones already stored,
   * in one transaction. Returns, for each, why it was rejected (undefined
   * when accepted).
   */
  async storeOutliers(roomId: string, _rv: RoomVersion, events: readonly IdentifiedPdu[]): Promise<Map<string, string | undefined>> {
    if (events.length === 0) return new Map();
    return this.persist(roomId, (tx, room) => this.storeOutliersIn(tx, room, events));
  }

  /** storeOutliers inside the caller's persisting transaction. */
  async storeOutliersIn(tx: Tx, room: RoomRow, events: readonly IdentifiedPdu[]): Promise<Map<string, string | undefined>> {
    return this.d.pipeline.persister.persistOutliers(tx, room, authOrder(events));
  }
}

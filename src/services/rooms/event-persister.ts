/**
 * Persisting any PDU: one this server built (EventBuilder), and, for
 * federation, one received from another server or backfilled.
 *
 * For each event, inside the caller's transaction:
 * 1. It is checked against the events it cites as auth_events, then against
 *    the state before it, then against the room's current state. Failing
 *    either of the first two rejects it (stored with the reason, never
 *    served, never state); failing the third soft-fails it (stored with its
 *    state, used by state resolution, never served, never a forward
 *    extremity). A local event is built against the current state, so the
 *    three checks are one, and failing it refuses the request (403).
 * 2. An outlier (an event known without its place in the DAG, e.g. an auth
 *    event fetched on its own) stops there: no state, no extremities.
 * 3. The state before it is the state after its prev event, or, where its
 *    prev events carry different states, their resolution (state-resolution.ts);
 *    a caller that knows it from elsewhere (a server's /state_ids) passes it.
 *    The state groups before and after it are recorded on its row.
 * 4. The room's forward extremities lose its prev events and gain it (unless
 *    a stored event already cites it); when they then carry different
 *    states, the current state is their resolution, written as the change
 *    from the state before.
 * 5. Backfilled events take stream orderings below every live event.
 *
 * Hooks: `addPersistHook` runs inside the transaction for each live event
 * (accepted, not soft-failed, not an outlier, not backfilled): push actions,
 * typing, per-room join counts. `onCommitted` runs once the transaction of
 * `transaction()` has committed, with every event it persisted: waking
 * syncs (and pushers, through the notifier), and, next, the federation
 * sender. No caller wakes anything by hand.
 */
import type { Logger } from 'pino';
import { authEventSelection, checkAuth, checkAuthAgainstState } from '../../core/auth/index.js';
import type { PDU } from '../../core/pdu.js';
import { redactWith } from '../../core/redaction.js';
import { requireRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { forbidden } from '../../matrix-error.js';
import type { Db, Tx } from '../../storage/db.js';
import { deleteOutlier, eventPlacements, getEvents, type EventPlacement, hasAcceptedChild, insertEvent, insertOutliers, markRedacted } from '../../storage/events.js';
import { advanceExtremities, advanceExtremitiesReturning, insertEdges, insertEdgesMany, setRoomStateGroup, type RoomRow } from '../../storage/rooms.js';
import type { Kysely } from 'kysely';
import type { Schema } from '../../storage/schema.js';
import { createStateGroup, currentState, replaceCurrentState, stateAtGroup, type StateKeyTuple } from '../../storage/state.js';
import { eventIdOf } from './event-builder.js';
import { checkClientRedaction } from './redaction-rules.js';
import { recordEventRelations } from './relations.js';
import { resolveGroups, splitKey, type StateMap } from './state-resolution.js';

export interface PersistedEvent {
  eventId: string;
  streamOrdering: number;
  pdu: PDU;
  roomId: string;
  /** Stored without a place in the DAG (no state). */
  outlier: boolean;
  /** Why the auth rules rejected it, when they did. */
  rejected?: string;
  /** Allowed by its auth events and the state before it, not by the current state. */
  softFailed: boolean;
  backfilled: boolean;
  stateGroupBefore: number | null;
  stateGroupAfter: number | null;
  /** Already stored before this call (nothing was written). */
  known?: boolean;
}

export interface PersistOptions {
  /** Built by this server against the room's current state (EventBuilder). */
  local?: boolean;
  /** Local events: its prev events are all the room's forward extremities, so afterwards it is the only one. */
  citesAllExtremities?: boolean;
  /** Store without state or DAG place. */
  outlier?: boolean;
  /** History fetched from another server: ordered before every live event. */
  backfilled?: boolean;
  /** The state before the event, when known otherwise than from its prev events. */
  stateBefore?: StateMap;
  /**
   * An out-of-band membership: an invite from another server to a room we do
   * not hold, or the leave we make for one. Stored as an outlier without the
   * auth checks (we hold none of its auth events) and made the user's
   * current membership, so /sync shows it.
   */
  outOfBand?: boolean;
  /**
   * Received events persisted one after another in one transaction (an
   * inbound /send's run): the reads they share (see PersistRun).
   */
  run?: PersistRun;
  /** A membership event that reached the room through our send_join/leave/knock: the sender passes it on (migration 0024). */
  sendOnBehalfOf?: string;
}

/**
 * What received events persisted one after another in one transaction may
 * share, read once: where the events they cite are (read by the caller
 * while it holds the room's queue, so only an outlier can be stored since,
 * and then the insert fails), which of them stored events already cite,
 * the events read for the auth checks, and state groups' keys (a group
 * never changes). Each event persisted is added; a redaction drops its
 * target. Used for one transaction only: what a rolled-back one added is
 * wrong.
 */
export class PersistRun {
  readonly events = new Map<string, { json: PDU; rejected: boolean }>();
  readonly stateAt = new Map<string, StateMap>();

  constructor(
    /** Placements of the run's events and of the events they cite (absent: not stored). */
    readonly placements: Map<string, EventPlacement>,
    /** The run's events that a stored accepted event cites as a prev event. */
    readonly cited: ReadonlySet<string>,
  ) {}
}

/** Whether clients see the event and the in-transaction hooks run for it. */
export function isLive(e: PersistedEvent): boolean {
  return !e.outlier && e.rejected === undefined && !e.softFailed && !e.backfilled;
}

/**
 * Called inside the event's transaction for every live event, after the
 * event, its edges and the room's new state are written. `stateGroupBefore`
 * is the state group before the event.
 */
export type PersistHook = (tx: Tx, room: RoomRow, event: PersistedEvent, stateGroupBefore: number | null) => Promise<void>;

/** Called after a commit with the events the transaction persisted, in order. */
export type CommittedHook = (events: readonly PersistedEvent[]) => Promise<void> | void;

export class EventPersister {
  private readonly persistHooks: PersistHook[] = [];
  private readonly committedHooks: CommittedHook[] = [];
  private readonly batches = new WeakMap<object, PersistedEvent[]>();

  constructor(
    private readonly db: Kysely<Schema>,
    private readonly logger?: Logger,
  ) {}

  addPersistHook(hook: PersistHook): void {
    this.persistHooks.push(hook);
  }

  onCommitted(hook: CommittedHook): void {
    this.committedHooks.push(hook);
  }

  /**
   * Runs `fn` in one transaction; once it commits, the committed hooks run
   * with every event persisted in it. Events are persisted only inside one.
   * `hold` wraps the transaction alone (the room's queue), so the hooks run
   * after it is released and the room's next event need not wait for them.
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>, hold: <R>(run: () => Promise<R>) => Promise<R> = (run) => run()): Promise<T> {
    const batch: PersistedEvent[] = [];
    const out = await hold(() =>
      this.db.transaction().execute(async (tx) => {
        this.batches.set(tx, batch);
        try {
          return await fn(tx);
        } finally {
          this.batches.delete(tx);
        }
      }),
    );
    if (batch.length > 0) await this.committed(batch);
    return out;
  }

  private async committed(events: readonly PersistedEvent[]): Promise<void> {
    for (const hook of this.committedHooks) {
      try {
        await hook(events);
      } catch (err) {
        // The events are stored; a hook that fails must not turn the request into an error.
        this.logger?.error({ err }, 'a hook after persisting events failed');
      }
    }
  }

  /** Persists one PDU of `room` in `tx` (a transaction of `transaction()`); see the file's comment. */
  async persist(tx: Tx, room: RoomRow, pdu: PDU, opts: PersistOptions = {}): Promise<PersistedEvent> {
    const batch = this.batches.get(tx);
    if (!batch) throw new Error('events are persisted only inside EventPersister.transaction()');
    const rv = requireRoomVersion(room.room_version);
    const id = eventIdOf(pdu, rv);
    const backfilled = opts.backfilled === true;
    if (!opts.local) {
      const known = opts.run ? opts.run.placements.get(id) : (await eventPlacements(tx, [id])).get(id);
      if (known && (!known.outlier || opts.outlier))
        return {
          ...this.describe(id, pdu, room, 0, known.outlier, known.rejected_reason ?? undefined, known.soft_failed, backfilled, known.state_group_before, known.state_group_after),
          known: true,
        };
      if (known) await deleteOutlier(tx, id);
    }

    let rejected = opts.outOfBand ? undefined : opts.local ? await this.checkLocal(tx, rv, room, pdu) : await this.checkAgainstAuthEvents(tx, rv, room, pdu, opts.run);
    const prevIds = refIds(pdu.prev_events);
    const authIds = refIds(pdu.auth_events);
    const row = {
      eventId: id,
      roomId: room.room_id,
      type: pdu.type,
      stateKey: pdu.state_key ?? null,
      sender: pdu.sender,
      depth: pdu.depth,
      ts: pdu.origin_server_ts,
      json: pdu,
      backfilled,
    };

    if (opts.outlier || opts.outOfBand) {
      const streamOrdering = await insertEvent(tx, { ...row, outlier: true, outOfBand: opts.outOfBand === true, rejectedReason: rejected ?? null, stateGroupBefore: null });
      await insertEdges(tx, id, prevIds, authIds);
      if (opts.outOfBand && pdu.type === 'm.room.member') await replaceCurrentState(tx, room.room_id, [id]);
      const out = this.describe(id, pdu, room, streamOrdering, true, rejected, false, backfilled, null, null);
      batch.push(out);
      return out;
    }

    // A local event was built on the current state, citing the forward extremities as prev events.
    const groupBefore = opts.local
      ? room.current_state_group
      : opts.stateBefore
        ? await this.groupFor(tx, room, opts.stateBefore)
        : await this.groupAfterPrevs(tx, rv, room, prevIds, opts.run);
    let softFailed = false;
    if (!opts.local && rejected === undefined) {
      rejected = await this.checkAgainstState(
        tx,
        rv,
        pdu,
        (keys) => (groupBefore === null ? Promise.resolve(new Map()) : stateAtGroupIn(tx, groupBefore, keys, opts.run)),
        opts.run,
      );
      // A room whose state this server does not hold yet (the join that brings it here) has nothing to soft-fail against.
      if (rejected === undefined && !backfilled && groupBefore !== room.current_state_group && room.current_state_group !== null) {
        softFailed = (await this.checkAgainstState(tx, rv, pdu, (keys) => currentMap(tx, room.room_id, keys))) !== undefined;
      }
    }
    const accepted = rejected === undefined;
    const isState = pdu.state_key !== undefined;
    const ownKey: StateKeyTuple | undefined = isState ? [pdu.type, pdu.state_key as string] : undefined;
    let groupAfter = groupBefore;
    if (ownKey && accepted) groupAfter = await createStateGroup(tx, room.room_id, groupBefore, [{ type: ownKey[0], state_key: ownKey[1], event_id: id }]);
    // The event this one replaces in the state (unsigned.replaces_state, prev_content).
    const replacesState = ownKey ? ((await this.stateBefore(tx, room, groupBefore, [ownKey])).get(`${ownKey[0]}\u0000${ownKey[1]}`) ?? '') : null;
    const streamOrdering = await insertEvent(tx, {
      ...row,
      sendOnBehalfOf: opts.sendOnBehalfOf ?? null,
      rejectedReason: rejected ?? null,
      softFailed,
      stateGroupBefore: groupBefore,
      stateGroupAfter: groupAfter,
      replacesState,
    });
    await insertEdges(tx, id, prevIds, authIds);
    const out = this.describe(id, pdu, room, streamOrdering, false, rejected, softFailed, backfilled, groupBefore, groupAfter);
    if (opts.run) {
      opts.run.placements.set(id, {
        event_id: id,
        room_id: room.room_id,
        depth: pdu.depth,
        outlier: false,
        rejected_reason: rejected ?? null,
        soft_failed: softFailed,
        state_group_before: groupBefore,
        state_group_after: groupAfter,
      });
      opts.run.events.set(id, { json: pdu, rejected: rejected !== undefined });
    }

    if (accepted && !softFailed) {
      if (!backfilled) await this.advance(tx, rv, room, out, prevIds, opts);
      const redacted = pdu.type === 'm.room.redaction' ? await this.applyRedaction(tx, rv, room.room_id, id, pdu) : undefined;
      if (redacted !== undefined) opts.run?.events.delete(redacted);
      await recordEventRelations(
        tx,
        {
          eventId: id,
          roomId: room.room_id,
          type: pdu.type,
          sender: pdu.sender,
          content: pdu.content,
          depth: pdu.depth,
          streamOrdering,
          originServerTs: pdu.origin_server_ts,
          redacted,
        },
        { validate: opts.local === true },
      );
    }
    if (isLive(out)) for (const hook of this.persistHooks) await hook(tx, room, out, groupBefore);
    batch.push(out);
    return out;
  }

  /** Why the room's current state does not allow `pdu`, or undefined: a would-be event checked before it is made (make_join). */
  async checkAgainstCurrentState(db: Db, room: RoomRow, pdu: PDU): Promise<string | undefined> {
    return this.checkAgainstState(db, requireRoomVersion(room.room_version), pdu, (keys) => currentMap(db, room.room_id, keys));
  }

  /** Keys of the state at `group`, read from the current state when that is the room's current group. */
  private async stateBefore(tx: Tx, room: RoomRow, group: number | null, keys: StateKeyTuple[]): Promise<StateMap> {
    if (group === null) return new Map();
    return group === room.current_state_group ? currentMap(tx, room.room_id, keys) : stateAtGroup(tx, group, keys);
  }

  private describe(
    eventId: string,
    pdu: PDU,
    room: RoomRow,
    streamOrdering: number,
    outlier: boolean,
    rejected: string | undefined,
    softFailed: boolean,
    backfilled: boolean,
    stateGroupBefore: number | null,
    stateGroupAfter: number | null,
  ): PersistedEvent {
    return { eventId, streamOrdering, pdu, roomId: room.room_id, outlier, rejected, softFailed, backfilled, stateGroupBefore, stateGroupAfter };
  }

  /**
   * A local event against the room's current state, which it was built on:
   * refused (403) rather than stored when the rules disallow it.
   */
  private async checkLocal(tx: Tx, rv: RoomVersion, room: RoomRow, pdu: PDU): Promise<undefined> {
    const state = await pdusOf(tx, rv, await currentMap(tx, room.room_id, neededKeys(rv, pdu)));
    const lookup = (t: string, k: string) => state.get(`${t}\u0000${k}`);
    const verdict = checkAuthAgainstState(rv, pdu, lookup);
    if (!verdict.allowed) throw forbidden(verdict.reason ?? 'Event not allowed by the auth rules');
    if (pdu.type === 'm.room.redaction') await checkClientRedaction(tx, rv, room.room_id, pdu, lookup);
    return undefined;
  }

  /** Why the event's own auth events do not allow it (the rules on the cited list included), or undefined. */
  private async checkAgainstAuthEvents(tx: Tx, rv: RoomVersion, room: RoomRow, pdu: PDU, run?: PersistRun): Promise<string | undefined> {
    const authIds = refIds(pdu.auth_events);
    const createId = createIdOf(rv, room, pdu);
    return authVerdict(rv, room, pdu, await eventsIn(tx, createId ? [...authIds, createId] : authIds, run));
  }

  /**
   * Stores many outliers at once (the state and auth chain a join brings):
   * one read of what is stored and of the auth events outside the batch,
   * the auth checks in memory (each event against its auth events, from the
   * batch or stored, so the batch must be in auth order), multi-row inserts.
   * Events already stored are skipped. Returns each event's rejection
   * (undefined when accepted), as `persist(…, {outlier: true})` would.
   */
  async persistOutliers(tx: Tx, room: RoomRow, events: readonly { eventId: string; pdu: PDU }[]): Promise<Map<string, string | undefined>> {
    const batch = this.batches.get(tx);
    if (!batch) throw new Error('events are persisted only inside EventPersister.transaction()');
    const rv = requireRoomVersion(room.room_version);
    const out = new Map<string, string | undefined>();
    const placed = await eventPlacements(
      tx,
      events.map((e) => e.eventId),
    );
    for (const [id, p] of placed) out.set(id, p.rejected_reason ?? undefined);
    const seen = new Set<string>();
    const fresh = events.filter((e) => {
      if (placed.has(e.eventId) || seen.has(e.eventId)) return false;
      seen.add(e.eventId);
      return true;
    });
    const inBatch = new Set(fresh.map((e) => e.eventId));
    const outside = new Set<string>();
    for (const e of fresh) {
      for (const a of refIds(e.pdu.auth_events)) if (!inBatch.has(a)) outside.add(a);
      const c = createIdOf(rv, room, e.pdu);
      if (c && !inBatch.has(c)) outside.add(c);
    }
    const stored = await getEvents(tx, [...outside]);
    const known = new Map<string, { json: PDU; rejected: boolean }>([...stored].map(([id, e]) => [id, { json: e.json as PDU, rejected: e.rejected_reason !== null }]));
    const rows = fresh.map((e) => {
      const rejected = authVerdict(rv, room, e.pdu, known);
      known.set(e.eventId, { json: e.pdu, rejected: rejected !== undefined });
      out.set(e.eventId, rejected);
      const p = e.pdu;
      return {
        eventId: e.eventId,
        roomId: room.room_id,
        type: p.type,
        stateKey: p.state_key ?? null,
        sender: p.sender,
        depth: p.depth,
        ts: p.origin_server_ts,
        json: p,
        rejectedReason: rejected ?? null,
      };
    });
    const orderings = await insertOutliers(tx, rows);
    await insertEdgesMany(
      tx,
      fresh.map((e) => ({ eventId: e.eventId, prevIds: refIds(e.pdu.prev_events), authIds: refIds(e.pdu.auth_events) })),
    );
    fresh.forEach((e, i) => batch.push(this.describe(e.eventId, e.pdu, room, orderings[i]!, true, out.get(e.eventId), false, false, null, null)));
    return out;
  }

  /** Why the state (read through `read`) does not allow the event, or undefined. */
  private async checkAgainstState(tx: Db, rv: RoomVersion, pdu: PDU, read: (keys: StateKeyTuple[]) => Promise<StateMap>, run?: PersistRun): Promise<string | undefined> {
    const byKey = await pdusOf(tx, rv, await read(neededKeys(rv, pdu)), run);
    const verdict = checkAuthAgainstState(rv, pdu, (t, k) => byKey.get(`${t}\u0000${k}`));
    return verdict.allowed ? undefined : (verdict.reason ?? 'not allowed by the state before it');
  }

  /**
   * The state group before an event: its prev event's state after, or the
   * resolution of its prev events' states when they differ (stored as a new
   * group). A prev event we do not hold in the DAG leaves the state unknown:
   * the caller must pass it.
   */
  private async groupAfterPrevs(tx: Tx, rv: RoomVersion, room: RoomRow, prevIds: string[], run?: PersistRun): Promise<number | null> {
    if (prevIds.length === 0) return null;
    const prevs = await placementsIn(tx, prevIds, run);
    const groups = new Set<number | null>();
    for (const p of prevIds) {
      const e = prevs.get(p);
      if (!e || e.outlier || e.room_id !== room.room_id) throw new Error(`the state before an event citing ${p} is not known here; pass it as stateBefore`);
      groups.add(e.state_group_after);
    }
    if (groups.size === 1) return [...groups][0]!;
    return this.groupFor(tx, room, await resolveGroups(tx, rv, [...groups]), [...groups][0] ?? null);
  }

  /** A state group holding `state`: a delta on `base` when that only adds or replaces, else a snapshot. */
  private async groupFor(tx: Tx, room: RoomRow, state: StateMap, base: number | null = room.current_state_group): Promise<number | null> {
    if (state.size === 0) return null;
    const baseMap = base === null ? new Map<string, string>() : await stateAtGroup(tx, base);
    const asRows = (entries: Iterable<[string, string]>) => [...entries].map(([k, event_id]) => ({ type: splitKey(k)[0], state_key: splitKey(k)[1], event_id }));
    if (base !== null && [...baseMap.keys()].every((k) => state.has(k))) {
      const changes = [...state].filter(([k, id]) => baseMap.get(k) !== id);
      return changes.length === 0 ? base : createStateGroup(tx, room.room_id, base, asRows(changes));
    }
    return createStateGroup(tx, room.room_id, null, asRows(state));
  }

  /**
   * The event joins the forward extremities in place of its prev events; the
   * room's current state follows: the state after the event when it is the
   * only extremity, else the resolution of the extremities' states.
   */
  private async advance(tx: Tx, rv: RoomVersion, room: RoomRow, ev: PersistedEvent, prevIds: string[], opts: PersistOptions): Promise<void> {
    const cited = !opts.local && (opts.run ? opts.run.cited.has(ev.eventId) : await hasAcceptedChild(tx, ev.eventId));
    let extremities: { event_id: string }[];
    if (opts.local && opts.citesAllExtremities) {
      await advanceExtremities(tx, room.room_id, cited ? undefined : ev.eventId, prevIds);
      extremities = [{ event_id: ev.eventId }];
    } else extremities = (await advanceExtremitiesReturning(tx, room.room_id, cited ? undefined : ev.eventId, prevIds)).map((event_id) => ({ event_id }));
    let target: number | null;
    if (extremities.length === 1 && extremities[0]!.event_id === ev.eventId) target = ev.stateGroupAfter;
    else {
      const groups = [
        ...new Set(
          (
            await placementsIn(
              tx,
              extremities.map((e) => e.event_id),
              opts.run,
            )
          ).values(),
        ),
      ].map((p) => p.state_group_after);
      const distinct = [...new Set(groups)];
      target = distinct.length === 1 ? distinct[0]! : await this.groupFor(tx, room, await resolveGroups(tx, rv, distinct), ev.stateGroupAfter);
    }
    const old = room.current_state_group;
    if (target === old) return;
    if (old === ev.stateGroupBefore && target === ev.stateGroupAfter) {
      // The common step: the event itself is the whole change.
      if (ev.pdu.state_key !== undefined) await replaceCurrentState(tx, room.room_id, [ev.eventId]);
    } else {
      const before = old === null ? new Map<string, string>() : await stateAtGroup(tx, old);
      const after = target === null ? new Map<string, string>() : await stateAtGroup(tx, target);
      const changed = [...after].filter(([k, id]) => before.get(k) !== id).map(([, id]) => id);
      const removed = [...before.keys()].filter((k) => !after.has(k)).map(splitKey);
      await replaceCurrentState(tx, room.room_id, changed, removed);
    }
    if (target !== null) await setRoomStateGroup(tx, room.room_id, target);
    room.current_state_group = target;
  }

  /** Applies a redaction to its target; returns the target's id when it was applied. */
  private async applyRedaction(tx: Tx, rv: RoomVersion, roomId: string, redactionId: string, pdu: PDU): Promise<string | undefined> {
    const target = (rv.redactsInContent ? pdu.content['redacts'] : pdu.redacts) as string | undefined;
    if (typeof target !== 'string') return undefined;
    const found = (await getEvents(tx, [target])).get(target);
    if (!found || found.room_id !== roomId || found.redacted_by) return undefined;
    await markRedacted(tx, target, redactionId, redactWith(found.json, rv));
    return target;
  }
}

/** v12 events do not cite the create event: its id is the room id's hash. */
function createIdOf(rv: RoomVersion, room: RoomRow, pdu: PDU): string | undefined {
  return rv.roomIdFromCreateEvent && pdu.type !== 'm.room.create' ? `$${room.room_id.slice(1)}` : undefined;
}

/** Why an event's auth events (from `known`: id → event and whether we rejected it) do not allow it, or undefined. */
function authVerdict(rv: RoomVersion, room: RoomRow, pdu: PDU, known: ReadonlyMap<string, { json: PDU; rejected: boolean }>): string | undefined {
  const authIds = refIds(pdu.auth_events);
  const missing = authIds.filter((a) => !known.has(a));
  if (missing.length > 0) return `auth events not known: ${missing.join(', ')}`;
  const withId = (id: string): PDU => ({ ...known.get(id)!.json, event_id: id });
  const createId = createIdOf(rv, room, pdu);
  const create = createId && known.has(createId) ? withId(createId) : undefined;
  const verdict = checkAuth(rv.id, pdu, authIds.map(withId), { isRejected: (e) => e.event_id !== undefined && known.get(e.event_id)?.rejected === true, createEvent: create });
  return verdict.allowed ? undefined : (verdict.reason ?? 'not allowed by its auth events');
}

/** The keys the auth rules read for an event: its selection, plus the create event, which v12 events no longer cite. */
function neededKeys(rv: RoomVersion, pdu: PDU): StateKeyTuple[] {
  return [['m.room.create', ''], ...authEventSelection(rv, pdu).filter(([t]) => t !== 'm.room.create')];
}

async function currentMap(db: Db, roomId: string, keys: StateKeyTuple[]): Promise<StateMap> {
  return new Map((await currentState(db, roomId, keys)).map((r) => [`${r.type}\u0000${r.state_key}`, r.event_id]));
}

/** The events of a state (as the auth rules read them), by `type NUL state_key`. */
async function pdusOf(db: Db, rv: RoomVersion, ids: StateMap, run?: PersistRun): Promise<Map<string, PDU>> {
  const events = await eventsIn(db, [...ids.values()], run);
  const out = new Map<string, PDU>();
  for (const [k, id] of ids) {
    const e = events.get(id);
    if (e) out.set(k, withCreateId(e.json as PDU, id, rv));
  }
  return out;
}

/** Stored events (as the auth rules read them: the event, whether rejected), through the run's cache when there is one. */
async function eventsIn(db: Db, ids: readonly string[], run?: PersistRun): Promise<Map<string, { json: PDU; rejected: boolean }>> {
  const out = new Map<string, { json: PDU; rejected: boolean }>();
  const wanted = run ? ids.filter((id) => !run.events.has(id)) : ids;
  for (const [id, e] of await getEvents(db, wanted)) {
    const entry = { json: e.json as PDU, rejected: e.rejected_reason !== null };
    run?.events.set(id, entry);
    out.set(id, entry);
  }
  if (run) for (const id of ids) if (run.events.has(id)) out.set(id, run.events.get(id)!);
  return out;
}

/** Placements of stored events, from the run's when it holds them. */
async function placementsIn(db: Db, ids: readonly string[], run?: PersistRun): Promise<Map<string, EventPlacement>> {
  if (!run) return eventPlacements(db, ids);
  const out = await eventPlacements(
    db,
    ids.filter((id) => !run.placements.has(id)),
  );
  for (const id of ids) if (run.placements.has(id)) out.set(id, run.placements.get(id)!);
  return out;
}

/** Keys of the state at a group, through the run's cache when there is one. */
async function stateAtGroupIn(db: Db, group: number, keys: StateKeyTuple[], run?: PersistRun): Promise<StateMap> {
  if (!run) return stateAtGroup(db, group, keys);
  const key = `${group}\u0001${keys.map(([t, k]) => `${t}\u0000${k}`).join('\u0001')}`;
  let map = run.stateAt.get(key);
  if (!map) run.stateAt.set(key, (map = await stateAtGroup(db, group, keys)));
  return map;
}

function refIds(refs: PDU['prev_events']): string[] {
  return refs.map((r) => (typeof r === 'string' ? r : r[0]));
}

/** Auth checks in v3-v11 compare against the create event's id, which stored v3+ events do not carry. */
function withCreateId(e: PDU, id: string, rv: RoomVersion): PDU {
  return rv.eventIdFormat === 'v1' || e.type !== 'm.room.create' ? e : { ...e, event_id: id };
}

/**
 * Every event this server creates goes through here: built as a proper PDU
 * for the room's version (prev_events from the forward extremities,
 * auth_events from the spec's selection, depth), hashed and signed with our
 * key, its content checked as Synapse's EventValidator does
 * (event-validator.ts), checked against the auth rules on the room's current state, and
 * persisted with its edges, its state group and the room's new current state
 * in the caller's transaction. Federation will carry these events unchanged.
 *
 * Events of one room are created one at a time (a per-room queue): the DAG
 * of locally created events stays a line, and the state before each event is
 * exactly the room's current state.
 */
import type { Kysely, Transaction } from 'kysely';
import { authEventSelection, checkAuthAgainstState } from '../../core/auth/index.js';
import { canonicalJson } from '../../core/canonical-json.js';
import { eventId as computeEventId, newV1EventId } from '../../core/event-id.js';
import { hashAndSignEvent } from '../../core/event-signing.js';
import { MAX_EVENT_BYTES } from '../../core/event-format.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { redactWith } from '../../core/redaction.js';
import { requireRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { getEvents, insertEvent, markRedacted } from '../../storage/events.js';
import { advanceExtremities, forwardExtremities, getRoom, insertEdges, setRoomStateGroup, type RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import { createStateGroup, currentState, setCurrentState } from '../../storage/state.js';
import type { ServerKeys } from '../server-keys.js';
import { checkClientRedaction } from './redaction-rules.js';
import { validateNewEvent } from './event-validator.js';
import { recordEventRelations } from './relations.js';
import type { EventDraft } from './event-draft.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export type { EventDraft } from './event-draft.js';

export interface PersistedEvent {
  eventId: string;
  streamOrdering: number;
  pdu: PDU;
  roomId: string;
}

/**
 * Called for every persisted event, inside its transaction, after the event,
 * its edges and the room's new state are written (push actions, typing).
 * `stateGroupBefore` is the room's state group before the event.
 */
export type PersistHook = (tx: Db, room: RoomRow, event: PersistedEvent, stateGroupBefore: number | null) => Promise<void>;

/** Most prev_events one local event cites, as Synapse caps them. */
const MAX_PREV_EVENTS = 10;

export class EventPipeline {
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly persistHooks: PersistHook[] = [];

  constructor(
    private readonly serverName: string,
    private readonly keys: ServerKeys,
  ) {}

  /** Adds a hook run for every persisted event (see PersistHook). */
  addPersistHook(hook: PersistHook): void {
    this.persistHooks.push(hook);
  }

  /**
   * Runs `fn` with the room's queue held: calls for one room run one after
   * another, calls for different rooms run side by side.
   */
  async inRoomQueue<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(roomId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.queues.set(roomId, chained);
    await prev.catch(() => undefined);
    try {
      return await fn();
    } finally {
      release();
      if (this.queues.get(roomId) === chained) this.queues.delete(roomId);
    }
  }

  /**
   * Builds, signs, auth-checks and stores one event in `tx`. The caller holds
   * the room's queue (inRoomQueue) and owns the transaction.
   */
  async persist(tx: Db, room: RoomRow, sender: string, draft: EventDraft, now = Date.now(), prebuilt?: PDU): Promise<PersistedEvent> {
    const rv = requireRoomVersion(room.room_version);
    const pdu = prebuilt ?? (await this.build(tx, room, rv, sender, draft, now));
    const id = this.idOf(pdu, rv);

    // The auth rules, against the room's current state.
    // The selection, plus the create event, which v12 events no longer cite but the rules still read.
    const keys: [string, string][] = [['m.room.create', ''], ...authEventSelection(rv, pdu).filter(([t]) => t !== 'm.room.create')];
    const stateRows = await currentState(tx, room.room_id, keys);
    const stateEvents = await getEvents(tx, stateRows.map((r) => r.event_id));
    const byKey = new Map<string, PDU>();
    for (const r of stateRows) {
      const e = stateEvents.get(r.event_id);
      if (e) byKey.set(`${r.type}\u0000${r.state_key}`, withId(e.json as PDU, r.event_id, rv));
    }
    const verdict = checkAuthAgainstState(rv, pdu, (t, k) => byKey.get(`${t}\u0000${k}`));
    if (!verdict.allowed) throw forbidden(verdict.reason ?? 'Event not allowed by the auth rules');
    if (pdu.type === 'm.room.redaction') await checkClientRedaction(tx, rv, room.room_id, pdu, (t, k) => byKey.get(`${t}\u0000${k}`));

    const prevIds = refIds(pdu.prev_events);
    const authIds = refIds(pdu.auth_events);
    const stateGroupBefore = room.current_state_group;
    const isState = pdu.state_key !== undefined;
    let groupAfter = room.current_state_group;
    if (isState) {
      groupAfter = await createStateGroup(tx, room.room_id, room.current_state_group, [{ type: pdu.type, state_key: pdu.state_key as string, event_id: id }]);
    }
    // The event this one replaces in the state (served as unsigned.replaces_state / prev_content).
    let replacesState: string | null = null;
    if (isState) {
      const k = `${pdu.type}\u0000${pdu.state_key as string}`;
      const known = stateRows.find((r) => `${r.type}\u0000${r.state_key}` === k);
      replacesState = known ? known.event_id : ((await currentState(tx, room.room_id, [[pdu.type, pdu.state_key as string]]))[0]?.event_id ?? '');
    }
    const streamOrdering = await insertEvent(tx, {
      eventId: id,
      roomId: room.room_id,
      type: pdu.type,
      stateKey: pdu.state_key ?? null,
      sender,
      depth: pdu.depth,
      ts: pdu.origin_server_ts,
      json: pdu,
      stateGroupBefore: room.current_state_group,
      replacesState,
    });
    await insertEdges(tx, id, prevIds, authIds);
    await advanceExtremities(tx, room.room_id, id, prevIds);
    if (isState && groupAfter !== null) {
      await setRoomStateGroup(tx, room.room_id, groupAfter);
      room.current_state_group = groupAfter;
      const membership = pdu.type === 'm.room.member' && typeof pdu.content['membership'] === 'string' ? (pdu.content['membership'] as string) : null;
      await setCurrentState(tx, room.room_id, { type: pdu.type, state_key: pdu.state_key as string, event_id: id, membership, stream_ordering: streamOrdering });
    }
    const redacted = pdu.type === 'm.room.redaction' ? await this.applyRedaction(tx, rv, room.room_id, id, pdu) : undefined;
    await recordEventRelations(
      tx,
      { eventId: id, roomId: room.room_id, type: pdu.type, sender, content: pdu.content, depth: pdu.depth, streamOrdering, originServerTs: pdu.origin_server_ts, redacted },
      { validate: true },
    );
    const persisted: PersistedEvent = { eventId: id, streamOrdering, pdu, roomId: room.room_id };
    for (const hook of this.persistHooks) await hook(tx, room, persisted, stateGroupBefore);
    return persisted;
  }

  /** Loads the room or answers 404 M_NOT_FOUND. */
  async room(db: Db, roomId: string): Promise<RoomRow> {
    const room = await getRoom(db, roomId);
    if (!room) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown room');
    return room;
  }

  /**
   * A room's create event, signed: the first event, with no prev or auth
   * events. In v12 it carries no room_id; the room id is derived from it.
   */
  buildCreateEvent(rv: RoomVersion, roomId: string | undefined, sender: string, content: JsonObject, now = Date.now()): PDU {
    const base: PDU = { room_id: roomId ?? '', sender, origin_server_ts: now, type: 'm.room.create', state_key: '', content, prev_events: [], auth_events: [], depth: 1 };
    if (rv.roomIdFromCreateEvent) delete (base as Partial<PDU>).room_id;
    if (rv.eventIdFormat === 'v1') {
      base.origin = this.serverName;
      base.event_id = newV1EventId(this.serverName);
    }
    return hashAndSignEvent(base, rv.id, this.serverName, this.keys.current) as PDU;
  }

  idOf(pdu: PDU, rv: RoomVersion): string {
    return rv.eventIdFormat === 'v1' ? (pdu.event_id as string) : computeEventId(pdu, rv.id);
  }

  private async build(tx: Db, room: RoomRow, rv: RoomVersion, sender: string, draft: EventDraft, now: number): Promise<PDU> {
    validateNewEvent(room.room_id, draft);
    const extremities = (await forwardExtremities(tx, room.room_id)).slice(0, MAX_PREV_EVENTS);
    const depth = extremities.reduce((d, e) => Math.max(d, e.depth), 0) + 1;
    const base: PDU = {
      room_id: room.room_id,
      sender,
      origin_server_ts: now,
      type: draft.type,
      content: draft.content,
      prev_events: [],
      auth_events: [],
      depth,
    };
    if (rv.eventIdFormat === 'v1') base.origin = this.serverName;
    if (draft.state_key !== undefined) base.state_key = draft.state_key;
    if (draft.redacts !== undefined) {
      if (rv.redactsInContent) base.content = { ...draft.content, redacts: draft.redacts };
      else base.redacts = draft.redacts;
    }
    // Auth events: the selection, as they stand in the current state.
    const selection = authEventSelection(rv, base);
    const authRows = await currentState(tx, room.room_id, selection);
    const prevIds = extremities.map((e) => e.event_id);
    const authIds = authRows.map((r) => r.event_id);
    if (rv.eventIdListsOnly) {
      base.prev_events = prevIds;
      base.auth_events = authIds;
    } else {
      // v1/v2 cite `[id, {sha256}]` pairs.
      const refs = await getEvents(tx, [...prevIds, ...authIds]);
      const pair = (id: string): [string, JsonObject] => [id, { sha256: String((refs.get(id)?.json['hashes'] as JsonObject | undefined)?.['sha256'] ?? '') }];
      base.prev_events = prevIds.map(pair);
      base.auth_events = authIds.map(pair);
      base.event_id = newV1EventId(this.serverName);
    }
    const signed = hashAndSignEvent(base, rv.id, this.serverName, this.keys.current) as PDU;
    if (Buffer.byteLength(canonicalJson(signed)) > MAX_EVENT_BYTES) {
      throw new MatrixError(413, 'M_TOO_LARGE', `Event is larger than ${MAX_EVENT_BYTES} bytes`);
    }
    return signed;
  }

  /** Applies a redaction to its target; returns the target's id when it was applied. */
  private async applyRedaction(tx: Db, rv: RoomVersion, roomId: string, redactionId: string, pdu: PDU): Promise<string | undefined> {
    const target = (rv.redactsInContent ? pdu.content['redacts'] : pdu.redacts) as string | undefined;
    if (typeof target !== 'string') return undefined;
    const found = (await getEvents(tx, [target])).get(target);
    if (!found || found.room_id !== roomId || found.redacted_by) return undefined;
    await markRedacted(tx, target, redactionId, redactWith(found.json, rv));
    return target;
  }
}

function refIds(refs: PDU['prev_events']): string[] {
  return refs.map((r) => (typeof r === 'string' ? r : r[0]));
}

/** Auth checks in v3-v11 compare against the create event's id, which stored v3+ events do not carry. */
function withId(e: PDU, id: string, rv: RoomVersion): PDU {
  return rv.eventIdFormat === 'v1' || e.type !== 'm.room.create' ? e : { ...e, event_id: id };
}

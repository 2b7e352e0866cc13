/**
 * Building the events this server creates: a draft becomes a PDU of the
 * room's version, with prev_events from the room's forward extremities (at
 * most ten, as Synapse cites), auth_events from the spec's selection as they
 * stand in the current state, depth one more than the deepest prev event,
 * hashed and signed with our key, and its content checked as Synapse's
 * EventValidator does (event-validator.ts). Persisting is the persister's
 * (event-persister.ts); the builder writes nothing.
 */
import { authEventSelection } from '../../core/auth/index.js';
import { canonicalJson } from '../../core/canonical-json.js';
import { eventId as computeEventId, newV1EventId } from '../../core/event-id.js';
import { hashAndSignEvent } from '../../core/event-signing.js';
import { MAX_EVENT_BYTES } from '../../core/event-format.js';
import type { JsonObject, PDU } from '../../core/pdu.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { MatrixError } from '../../matrix-error.js';
import type { Db } from '../../storage/db.js';
import { getEvents } from '../../storage/events.js';
import { forwardExtremities, type RoomRow } from '../../storage/rooms.js';
import { currentState } from '../../storage/state.js';
import type { ServerKeys } from '../server-keys.js';
import type { EventDraft } from './event-draft.js';
import { validateNewEvent } from './event-validator.js';

/** Most prev_events one local event cites, as Synapse caps them. */
const MAX_PREV_EVENTS = 10;

export class EventBuilder {
  constructor(
    private readonly serverName: string,
    private readonly keys: ServerKeys,
  ) {}

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
    return this.sign(base, rv);
  }

  /**
   * The event a draft becomes in `room` now (413 M_TOO_LARGE past the spec's
   * 65536 bytes), and whether it cites every forward extremity (at most ten
   * are cited), so that it will be the only one.
   */
  async build(db: Db, room: RoomRow, rv: RoomVersion, sender: string, draft: EventDraft, now: number): Promise<{ pdu: PDU; citesAllExtremities: boolean }> {
    validateNewEvent(room.room_id, draft);
    const all = await forwardExtremities(db, room.room_id);
    const extremities = all.slice(0, MAX_PREV_EVENTS);
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
    const selection = authEventSelection(rv, base);
    const authRows = await currentState(db, room.room_id, selection);
    const prevIds = extremities.map((e) => e.event_id);
    const authIds = authRows.map((r) => r.event_id);
    if (rv.eventIdListsOnly) {
      base.prev_events = prevIds;
      base.auth_events = authIds;
    } else {
      // v1/v2 cite `[id, {sha256}]` pairs.
      const refs = await getEvents(db, [...prevIds, ...authIds]);
      const pair = (id: string): [string, JsonObject] => [id, { sha256: String((refs.get(id)?.json['hashes'] as JsonObject | undefined)?.['sha256'] ?? '') }];
      base.prev_events = prevIds.map(pair);
      base.auth_events = authIds.map(pair);
      base.event_id = newV1EventId(this.serverName);
    }
    const signed = this.sign(base, rv);
    if (Buffer.byteLength(canonicalJson(signed)) > MAX_EVENT_BYTES) {
      throw new MatrixError(413, 'M_TOO_LARGE', `Event is larger than ${MAX_EVENT_BYTES} bytes`);
    }
    return { pdu: signed, citesAllExtremities: all.length === extremities.length };
  }

  private sign(base: PDU, rv: RoomVersion): PDU {
    return hashAndSignEvent(base, rv.id, this.serverName, this.keys.current) as PDU;
  }
}

/** An event's id: carried in v1/v2, the reference hash from v3 on. */
export function eventIdOf(pdu: PDU, rv: RoomVersion): string {
  return rv.eventIdFormat === 'v1' ? (pdu.event_id as string) : computeEventId(pdu, rv.id);
}

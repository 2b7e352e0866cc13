/**
 * `checkAuth`: the auth rules for an event against the events it cites in
 * `auth_events`, JSON in, verdict out. Adds the rules about the cited list
 * itself (no duplicate `(type, state_key)`, only what the auth events
 * selection allows, none rejected, all in the same room, a create event
 * present in v1-v11) to the state rules of rules.ts.
 */
import { stateMapKey, type AuthResult, type PDU } from '../pdu.js';
import { roomVersion as lookupRoomVersion, type RoomVersion } from '../room-versions.js';
import { isObject } from './json.js';
import { checkAuthAgainstState, checkCreateEvent } from './rules.js';
import { isSelectedAuthEvent } from './selection.js';
import { deny, type AuthCheckOptions, type StateLookup } from './types.js';

export interface CheckAuthOptions extends AuthCheckOptions {
  /**
   * Whether a cited auth event (or, v12+, the create event) was itself
   * rejected. Without it, the events given are taken as accepted.
   */
  isRejected?: (event: PDU) => boolean;
  /**
   * v12+: the room's `m.room.create` event, which events no longer cite (the
   * room id names it). Required to authorise any other event in a v12 room.
   * Its `event_id`, when present, must match the room id.
   */
  createEvent?: object;
}

/** Why `value` is not shaped like a PDU of this room version, or undefined if it is. */
function shapeProblem(rv: RoomVersion, value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value['type'] !== 'string') return '`type` is not a string';
  if (typeof value['sender'] !== 'string') return '`sender` is not a string';
  if (!isObject(value['content'])) return '`content` is not an object';
  const isV12Create = rv.roomIdFromCreateEvent && value['type'] === 'm.room.create';
  if (!isV12Create && typeof value['room_id'] !== 'string') return '`room_id` is not a string';
  if (Object.hasOwn(value, 'state_key') && typeof value['state_key'] !== 'string') return '`state_key` is not a string';
  if (!Array.isArray(value['prev_events'])) return '`prev_events` is not an array';
  if (!Array.isArray(value['auth_events'])) return '`auth_events` is not an array';
  if (Object.hasOwn(value, 'event_id') && typeof value['event_id'] !== 'string') return '`event_id` is not a string';
  if (Object.hasOwn(value, 'redacts') && typeof value['redacts'] !== 'string') return '`redacts` is not a string';
  if (Object.hasOwn(value, 'signatures') && !isObject(value['signatures'])) return '`signatures` is not an object';
  return undefined;
}

function citedIds(event: PDU): Set<string> {
  const out = new Set<string>();
  for (const r of event.auth_events) {
    if (typeof r === 'string') out.add(r);
    else if (Array.isArray(r) && typeof r[0] === 'string') out.add(r[0]);
  }
  return out;
}

function describe(ae: PDU): string {
  return `${ae.event_id ?? '(no event_id)'} (${ae.type}, ${JSON.stringify(ae.state_key)})`;
}

/**
 * Whether `event` is allowed in a room of version `roomVersion`, given the
 * events it cites as `auth_events`.
 */
export function checkAuth(roomVersion: string, event: object, authEvents: object[], options?: CheckAuthOptions): AuthResult {
  const rv = lookupRoomVersion(roomVersion);
  if (rv === undefined) return deny(`room version: ${JSON.stringify(roomVersion)} is not a known room version`);
  const problem = shapeProblem(rv, event);
  if (problem !== undefined) return deny(`malformed event: ${problem}`);
  const ev = event as PDU;
  if (ev.type === 'm.room.create') return checkCreateEvent(rv, ev);

  const isRejected = options?.isRejected;
  let create: PDU | undefined;
  if (rv.roomIdFromCreateEvent) {
    const c = options?.createEvent;
    if (c === undefined) return deny("room_id: the room's m.room.create event was not supplied");
    const cp = shapeProblem(rv, c);
    if (cp !== undefined) return deny(`room_id: malformed m.room.create event: ${cp}`);
    create = c as PDU;
    if (create.type !== 'm.room.create' || create.state_key !== '') {
      return deny('room_id: the supplied create event is not an m.room.create state event');
    }
    if (isRejected?.(create)) return deny('room_id: the m.room.create event was rejected');
  }

  const cited = citedIds(ev);
  const seen = new Set<string>();
  const list: PDU[] = [];
  for (let i = 0; i < authEvents.length; i++) {
    const raw = authEvents[i];
    const p = shapeProblem(rv, raw);
    if (p !== undefined) return deny(`auth events: entry ${i} is malformed: ${p}`);
    const ae = raw as PDU;
    if (ae.state_key === undefined) return deny(`auth events: ${describe(ae)} is not a state event`);
    if (ae.event_id !== undefined && !cited.has(ae.event_id)) {
      return deny(`auth events: ${ae.event_id} is not cited in the event's auth_events`);
    }
    const key = stateMapKey(ae.type, ae.state_key);
    if (seen.has(key)) return deny(`auth events: duplicate entry for (${ae.type}, ${JSON.stringify(ae.state_key)})`);
    seen.add(key);
    if (!isSelectedAuthEvent(rv, ev, ae.type, ae.state_key)) {
      return deny(`auth events: ${describe(ae)} is not one the auth events selection allows for this event`);
    }
    if (isRejected?.(ae)) return deny(`auth events: ${describe(ae)} was itself rejected`);
    if (ae.room_id !== ev.room_id) return deny(`auth events: ${describe(ae)} belongs to another room (${ae.room_id})`);
    list.push(ae);
  }
  if (!rv.roomIdFromCreateEvent && !seen.has(stateMapKey('m.room.create', ''))) {
    return deny('auth events: there is no m.room.create event');
  }

  const getState: StateLookup = (type, stateKey) => {
    if (create !== undefined && type === 'm.room.create' && stateKey === '') return create;
    for (const ae of list) if (ae.type === type && ae.state_key === stateKey) return ae;
    return undefined;
  };
  return checkAuthAgainstState(rv, ev, getState, options);
}

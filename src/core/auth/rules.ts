/**
 * The authorisation rules of every room version (1-12), evaluated against a
 * state lookup. This is the hot path of state resolution's iterative auth
 * checks: no copying, no canonical JSON, no allocation beyond what a rule
 * needs.
 *
 * The rules about the `auth_events` list itself (duplicates, selection,
 * rejected entries, room ids) are in check-auth.ts; they apply when checking
 * an event against the events it cites, not against a room state.
 */
import type { AuthResult, PDU } from '../pdu.js';
import { roomVersion, type RoomVersion } from '../room-versions.js';
import { domainOf, isValidUserId } from './ids.js';
import { stringAt } from './json.js';
import { checkMemberEvent, membershipOf } from './membership.js';
import { checkPowerLevelsEvent } from './power-levels-rule.js';
import { namedLevel, sendLevel, userPowerLevel } from './power-levels.js';
import { ALLOWED, deny, type AuthCheckOptions, type StateLookup } from './types.js';

/** Rule 1: the `m.room.create` event. */
export function checkCreateEvent(rv: RoomVersion, event: PDU): AuthResult {
  const R = 'm.room.create';
  if (event.prev_events.length > 0) return deny(`${R}: event has prev_events`);
  if (rv.roomIdFromCreateEvent) {
    if (Object.hasOwn(event, 'room_id') && event.room_id !== undefined) {
      return deny(`${R}: event has a room_id (the room id is derived from the create event)`);
    }
  } else {
    const roomDomain = typeof event.room_id === 'string' ? domainOf(event.room_id) : undefined;
    if (roomDomain === undefined || roomDomain !== domainOf(event.sender)) {
      return deny(`${R}: the room_id's server does not match the sender's server`);
    }
  }
  if (Object.hasOwn(event.content, 'room_version')) {
    const v = event.content['room_version'];
    if (typeof v !== 'string' || roomVersion(v) === undefined) {
      return deny(`${R}: content.room_version ${JSON.stringify(v)} is not a recognised room version`);
    }
  }
  if (rv.privilegedCreators && Object.hasOwn(event.content, 'additional_creators')) {
    const extra = event.content['additional_creators'];
    if (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string' && isValidUserId(u))) {
      return deny(`${R}: additional_creators is not an array of valid user IDs`);
    }
  }
  if (!rv.implicitRoomCreator && !Object.hasOwn(event.content, 'creator')) {
    return deny(`${R}: content has no creator`);
  }
  return ALLOWED;
}

/**
 * Whether `event` is allowed by the auth rules of room version `rv`, in the
 * room state given by `getState`.
 */
export function checkAuthAgainstState(rv: RoomVersion, event: PDU, getState: StateLookup, options?: AuthCheckOptions): AuthResult {
  const type = event.type;
  if (type === 'm.room.create') return checkCreateEvent(rv, event);

  const create = getState('m.room.create', '');
  if (create === undefined) {
    return deny(rv.roomIdFromCreateEvent ? "room_id: the room's m.room.create event is not known" : 'auth events: there is no m.room.create event');
  }
  if (rv.roomIdFromCreateEvent) {
    // v12 rule 2: the room id is the create event's id with `!` for `$`.
    const id = create.event_id;
    if (typeof id === 'string' && (!event.room_id.startsWith('!') || id !== `$${event.room_id.slice(1)}`)) {
      return deny('room_id: not the id of the m.room.create event');
    }
  }

  if (create.content['m.federate'] === false && domainOf(event.sender) !== domainOf(create.sender)) {
    return deny("m.federate: the room does not federate and the sender's server is not the creator's");
  }

  if (rv.specialCaseAliasesAuth && type === 'm.room.aliases') {
    if (event.state_key === undefined) return deny('m.room.aliases: event has no state_key');
    if (domainOf(event.sender) !== event.state_key) {
      return deny("m.room.aliases: state_key is not the sender's server");
    }
    return ALLOWED;
  }

  if (type === 'm.room.member') return checkMemberEvent(rv, event, getState, create, options);

  if (membershipOf(getState('m.room.member', event.sender)) !== 'join') {
    return deny(`${type}: sender is not joined to the room`);
  }

  const pl = getState('m.room.power_levels', '');
  const senderLevel = userPowerLevel(rv, event.sender, pl, create);

  if (type === 'm.room.third_party_invite') {
    const invite = namedLevel(rv, pl, 'invite');
    if (senderLevel >= invite) return ALLOWED;
    return deny(`m.room.third_party_invite: sender's level ${senderLevel} is below the invite level ${invite}`);
  }

  const stateKey = event.state_key;
  const required = sendLevel(rv, pl, type, stateKey !== undefined);
  if (required > senderLevel) {
    return deny(`${type}: sender's level ${senderLevel} is below the ${required} required to send it`);
  }

  if (stateKey !== undefined && stateKey.startsWith('@') && stateKey !== event.sender) {
    return deny(`${type}: state_key starts with @ and is not the sender`);
  }

  if (type === 'm.room.power_levels') return checkPowerLevelsEvent(rv, event, pl, create, senderLevel);

  if (rv.specialCaseRedactionsAuth && type === 'm.room.redaction') {
    const redact = namedLevel(rv, pl, 'redact');
    if (senderLevel >= redact) return ALLOWED;
    const redacts = rv.redactsInContent ? stringAt(event.content, 'redacts') : typeof event.redacts === 'string' ? event.redacts : undefined;
    const own = typeof event.event_id === 'string' ? domainOf(event.event_id) : undefined;
    if (redacts !== undefined && own !== undefined && domainOf(redacts) === own) return ALLOWED;
    return deny(`m.room.redaction: sender's level ${senderLevel} is below the redact level ${redact} and the redacted event is from another server`);
  }

  return ALLOWED;
}

/**
 * The auth rule for `m.room.member` events (v1-v5 rule 5, v6-v11 rule 4,
 * v12 rule 5): join, invite (including third-party invites), leave, ban and
 * (v7+) knock, with restricted joins (v8+) and `knock_restricted` (v10+).
 */
import type { AuthResult, JsonObject, PDU } from '../pdu.js';
import { eventId } from '../event-id.js';
import type { RoomVersion } from '../room-versions.js';
import { domainOf } from './ids.js';
import { isObject, stringAt } from './json.js';
import { namedLevel, userPowerLevel } from './power-levels.js';
import { verifyThirdPartyInviteSigned } from './third-party-invite.js';
import { ALLOWED, deny, type AuthCheckOptions, type StateLookup } from './types.js';

/** `content.membership` of a member event, if any. */
export function membershipOf(member: PDU | undefined): string | undefined {
  return member === undefined ? undefined : stringAt(member.content, 'membership');
}

/**
 * The room's join rule. With no `m.room.join_rules` event (or one without a
 * `join_rule`) the room behaves as `invite`, as Synapse and Ruma read it.
 */
function joinRuleOf(joinRules: PDU | undefined): string | undefined {
  if (joinRules === undefined || !Object.hasOwn(joinRules.content, 'join_rule')) return 'invite';
  return stringAt(joinRules.content, 'join_rule');
}

/**
 * The create event's id: its `event_id`; (v12+) the room id with `$` for
 * `!`; otherwise (v3-v11, where ids are hashes and events do not carry
 * them) its reference hash. Only the creator's first join asks, so the hash
 * is rarely computed.
 */
function createEventId(rv: RoomVersion, create: PDU, roomId: string): string | undefined {
  if (typeof create.event_id === 'string') return create.event_id;
  if (rv.roomIdFromCreateEvent && roomId.startsWith('!')) return `$${roomId.slice(1)}`;
  if (rv.eventIdFormat === 'v1') return undefined;
  try {
    return eventId(create, rv.id);
  } catch {
    return undefined;
  }
}

/** The user the creator-join rule means: `content.creator` (v1-v10) or the create's sender (v11+). */
function joiningCreator(rv: RoomVersion, create: PDU): string | undefined {
  return rv.implicitRoomCreator ? create.sender : stringAt(create.content, 'creator');
}

function defaultIsSignedBy(event: PDU, serverName: string): boolean {
  const sigs = event.signatures?.[serverName];
  return isObject(sigs) && Object.keys(sigs).length > 0;
}

export function checkMemberEvent(rv: RoomVersion, event: PDU, getState: StateLookup, create: PDU, options: AuthCheckOptions | undefined): AuthResult {
  const target = event.state_key;
  if (typeof target !== 'string') return deny('m.room.member: event has no state_key');
  const content = event.content;
  const membership = content['membership'];
  if (typeof membership !== 'string') return deny('m.room.member: content has no string `membership`');

  if (rv.restrictedJoinRule && Object.hasOwn(content, 'join_authorised_via_users_server')) {
    const via = content['join_authorised_via_users_server'];
    const server = typeof via === 'string' ? domainOf(via) : undefined;
    if (server === undefined || server === '') {
      return deny('m.room.member: join_authorised_via_users_server is not a user ID');
    }
    const signedBy = options?.isSignedBy ?? defaultIsSignedBy;
    if (!signedBy(event, server)) {
      return deny(`m.room.member: not signed by ${server}, the server of join_authorised_via_users_server`);
    }
  }

  const sender = event.sender;
  const senderMember = getState('m.room.member', sender);
  const senderMembership = membershipOf(senderMember);
  const targetMembership = target === sender ? senderMembership : membershipOf(getState('m.room.member', target));

  switch (membership) {
    case 'join':
      return checkJoin(rv, event, getState, create, content, target, senderMembership);
    case 'invite':
      return checkInvite(rv, event, getState, create, content, target, senderMembership, targetMembership);
    case 'leave': {
      if (sender === target) {
        if (senderMembership === 'invite' || senderMembership === 'join') return ALLOWED;
        if (rv.knockJoinRule && senderMembership === 'knock') return ALLOWED;
        return deny(`m.room.member leave: sender's current membership is ${senderMembership ?? 'none'}, so there is nothing to leave`);
      }
      if (senderMembership !== 'join') return deny('m.room.member leave (kick): sender is not joined to the room');
      const pl = getState('m.room.power_levels', '');
      const senderLevel = userPowerLevel(rv, sender, pl, create);
      if (targetMembership === 'ban') {
        const ban = namedLevel(rv, pl, 'ban');
        if (senderLevel < ban) {
          return deny(`m.room.member leave (unban): sender's level ${senderLevel} is below the ban level ${ban}`);
        }
      }
      const kick = namedLevel(rv, pl, 'kick');
      if (senderLevel < kick) {
        return deny(`m.room.member leave (kick): sender's level ${senderLevel} is below the kick level ${kick}`);
      }
      const targetLevel = userPowerLevel(rv, target, pl, create);
      if (targetLevel >= senderLevel) {
        return deny(`m.room.member leave (kick): target's level ${targetLevel} is not below the sender's ${senderLevel}`);
      }
      return ALLOWED;
    }
    case 'ban': {
      if (senderMembership !== 'join') return deny('m.room.member ban: sender is not joined to the room');
      const pl = getState('m.room.power_levels', '');
      const senderLevel = userPowerLevel(rv, sender, pl, create);
      const ban = namedLevel(rv, pl, 'ban');
      if (senderLevel < ban) return deny(`m.room.member ban: sender's level ${senderLevel} is below the ban level ${ban}`);
      const targetLevel = userPowerLevel(rv, target, pl, create);
      if (targetLevel >= senderLevel) {
        return deny(`m.room.member ban: target's level ${targetLevel} is not below the sender's ${senderLevel}`);
      }
      return ALLOWED;
    }
    case 'knock': {
      if (!rv.knockJoinRule) return deny(`m.room.member: unknown membership "knock" (knocking needs room version 7 or later)`);
      const rule = joinRuleOf(getState('m.room.join_rules', ''));
      if (rule !== 'knock' && !(rv.knockRestrictedJoinRule && rule === 'knock_restricted')) {
        return deny(`m.room.member knock: join rule is ${JSON.stringify(rule ?? null)}, not knock${rv.knockRestrictedJoinRule ? ' or knock_restricted' : ''}`);
      }
      if (sender !== target) return deny('m.room.member knock: sender does not match state_key');
      if (senderMembership === 'ban' || senderMembership === 'invite' || senderMembership === 'join') {
        return deny(`m.room.member knock: sender is already ${senderMembership === 'ban' ? 'banned' : senderMembership === 'invite' ? 'invited' : 'joined'}`);
      }
      return ALLOWED;
    }
    default:
      return deny(`m.room.member: unknown membership ${JSON.stringify(membership)}`);
  }
}

function checkJoin(rv: RoomVersion, event: PDU, getState: StateLookup, create: PDU, content: JsonObject, target: string, senderMembership: string | undefined): AuthResult {
  const prev = event.prev_events;
  if (prev.length === 1) {
    const p = prev[0];
    const prevId = typeof p === 'string' ? p : Array.isArray(p) ? p[0] : undefined;
    const createId = createEventId(rv, create, event.room_id);
    if (createId !== undefined && prevId === createId && joiningCreator(rv, create) === target) return ALLOWED;
  }
  if (event.sender !== target) return deny('m.room.member join: sender does not match state_key');
  if (senderMembership === 'ban') return deny('m.room.member join: sender is banned');
  const rule = joinRuleOf(getState('m.room.join_rules', ''));
  if (rule === 'invite' || (rv.knockJoinRule && rule === 'knock')) {
    if (senderMembership === 'invite' || senderMembership === 'join') return ALLOWED;
    return deny(`m.room.member join: join rule is ${rule} and the sender is not invited`);
  }
  if ((rv.restrictedJoinRule && rule === 'restricted') || (rv.knockRestrictedJoinRule && rule === 'knock_restricted')) {
    if (senderMembership === 'invite' || senderMembership === 'join') return ALLOWED;
    const via = stringAt(content, 'join_authorised_via_users_server');
    if (via === undefined) {
      return deny(`m.room.member join: join rule is ${rule} and the sender is neither invited nor authorised via join_authorised_via_users_server`);
    }
    if (membershipOf(getState('m.room.member', via)) !== 'join') {
      return deny(`m.room.member join: ${rule} join authorised via ${via}, who is not joined to the room`);
    }
    const pl = getState('m.room.power_levels', '');
    const level = userPowerLevel(rv, via, pl, create);
    const invite = namedLevel(rv, pl, 'invite');
    if (level < invite) {
      return deny(`m.room.member join: ${rule} join authorised via ${via}, whose level ${level} is below the invite level ${invite}`);
    }
    return ALLOWED;
  }
  if (rule === 'public') return ALLOWED;
  return deny(`m.room.member join: join rule ${JSON.stringify(rule ?? null)} does not let the sender join`);
}

function checkInvite(
  rv: RoomVersion,
  event: PDU,
  getState: StateLookup,
  create: PDU,
  content: JsonObject,
  target: string,
  senderMembership: string | undefined,
  targetMembership: string | undefined,
): AuthResult {
  if (Object.hasOwn(content, 'third_party_invite')) {
    const R = 'm.room.member invite (third-party)';
    if (targetMembership === 'ban') return deny(`${R}: target user is banned`);
    const tpi = content['third_party_invite'];
    const signed = isObject(tpi) ? tpi['signed'] : undefined;
    if (!isObject(signed)) return deny(`${R}: third_party_invite has no \`signed\` object`);
    const mxid = stringAt(signed, 'mxid');
    const token = stringAt(signed, 'token');
    if (mxid === undefined || token === undefined) return deny(`${R}: \`signed\` lacks \`mxid\` or \`token\``);
    if (mxid !== target) return deny(`${R}: signed.mxid does not match state_key`);
    const invite = getState('m.room.third_party_invite', token);
    if (invite === undefined) return deny(`${R}: no m.room.third_party_invite with state_key matching signed.token`);
    if (invite.sender !== event.sender) {
      return deny(`${R}: sender does not match the sender of the m.room.third_party_invite`);
    }
    if (verifyThirdPartyInviteSigned(signed, invite.content)) return ALLOWED;
    return deny(`${R}: no signature in \`signed\` verifies with a public key of the m.room.third_party_invite`);
  }
  if (senderMembership !== 'join') return deny('m.room.member invite: sender is not joined to the room');
  if (targetMembership === 'join') return deny('m.room.member invite: target user is already joined');
  if (targetMembership === 'ban') return deny('m.room.member invite: target user is banned');
  const pl = getState('m.room.power_levels', '');
  const level = userPowerLevel(rv, event.sender, pl, create);
  const invite = namedLevel(rv, pl, 'invite');
  if (level < invite) return deny(`m.room.member invite: sender's level ${level} is below the invite level ${invite}`);
  return ALLOWED;
}

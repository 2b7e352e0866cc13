/**
 * The spec's "auth events selection" (server-server API): which state events
 * an event should cite in `auth_events`.
 */
import type { PDU } from '../pdu.js';
import type { RoomVersion } from '../room-versions.js';
import { isObject, stringAt } from './json.js';

/**
 * The `(type, state_key)` pairs an event should cite, each at most once:
 * the create event (v1-v11 only; v12+ must not cite it), the power levels,
 * the sender's membership and, for `m.room.member`, the target's membership,
 * the join rules (join/invite/knock), the third-party invite named by
 * `signed.token`, and (v8+ joins) the authorising user's membership.
 * `m.room.create` itself cites nothing.
 */
export function authEventSelection(rv: RoomVersion, event: PDU): [type: string, stateKey: string][] {
  if (event.type === 'm.room.create') return [];
  const out: [string, string][] = [];
  if (!rv.roomIdFromCreateEvent) out.push(['m.room.create', '']);
  out.push(['m.room.power_levels', '']);
  out.push(['m.room.member', event.sender]);
  if (event.type === 'm.room.member' && typeof event.state_key === 'string') {
    const target = event.state_key;
    if (target !== event.sender) out.push(['m.room.member', target]);
    const membership = stringAt(event.content, 'membership');
    if (membership === 'join' || membership === 'invite' || membership === 'knock') {
      out.push(['m.room.join_rules', '']);
    }
    if (membership === 'invite') {
      const tpi = event.content['third_party_invite'];
      if (isObject(tpi)) {
        const signed = tpi['signed'];
        const token = isObject(signed) ? stringAt(signed, 'token') : undefined;
        if (token !== undefined) out.push(['m.room.third_party_invite', token]);
      }
    }
    if (membership === 'join' && rv.restrictedJoinRule) {
      const via = stringAt(event.content, 'join_authorised_via_users_server');
      if (via !== undefined && via !== event.sender && via !== target) out.push(['m.room.member', via]);
    }
  }
  return out;
}

/** Whether `(type, stateKey)` is among authEventSelection(rv, event), without allocating. */
export function isSelectedAuthEvent(rv: RoomVersion, event: PDU, type: string, stateKey: string): boolean {
  if (event.type === 'm.room.create') return false;
  switch (type) {
    case 'm.room.create':
      return !rv.roomIdFromCreateEvent && stateKey === '';
    case 'm.room.power_levels':
      return stateKey === '';
    case 'm.room.member': {
      if (stateKey === event.sender) return true;
      if (event.type !== 'm.room.member' || typeof event.state_key !== 'string') return false;
      if (stateKey === event.state_key) return true;
      return rv.restrictedJoinRule && stringAt(event.content, 'membership') === 'join' && stringAt(event.content, 'join_authorised_via_users_server') === stateKey;
    }
    case 'm.room.join_rules': {
      if (stateKey !== '' || event.type !== 'm.room.member' || typeof event.state_key !== 'string') return false;
      const m = stringAt(event.content, 'membership');
      return m === 'join' || m === 'invite' || m === 'knock';
    }
    case 'm.room.third_party_invite': {
      if (event.type !== 'm.room.member' || typeof event.state_key !== 'string') return false;
      if (stringAt(event.content, 'membership') !== 'invite') return false;
      const tpi = event.content['third_party_invite'];
      const signed = isObject(tpi) ? tpi['signed'] : undefined;
      return isObject(signed) && stringAt(signed, 'token') === stateKey;
    }
    default:
      return false;
  }
}

/**
 * What a membership request turns into, before the auth rules see it: the
 * checks Synapse makes on top of them, and the content of the member event.
 *
 * - `kick` and `unban` are `leave` events about someone else. Unbanning a
 *   user who is not banned, or doing anything but ban, unban or leave to a
 *   banned user, is 403 M_BAD_STATE; kicking someone who is not in the room
 *   (left, banned or never there) is 403 M_FORBIDDEN.
 * - join, knock and invite events carry the target's display name and
 *   avatar from their profile unless the request gives its own (Synapse's
 *   per-room profiles, with its length limits).
 * - Guests join only rooms whose `m.room.guest_access` is `can_join`.
 * - `block_non_admin_invites` refuses invites from everyone but server
 *   admins.
 * - The same change again (same sender, membership and content) returns the
 *   existing event instead of a new one.
 */
import { canonicalJson } from '../../core/canonical-json.js';
import type { JsonObject } from '../../core/pdu.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { getEvent, getEvents } from '../../storage/events.js';
import { currentState } from '../../storage/state.js';
import { getProfile } from '../../storage/users.js';
import type { Requester } from '../auth.js';
import type { EventDraft } from './event-pipeline.js';
import type { Db } from '../../storage/db.js';

export type MembershipAction = 'join' | 'leave' | 'invite' | 'ban' | 'unban' | 'kick' | 'knock';

export interface MembershipOptions {
  blockNonAdminInvites: boolean;
}

const MAX_DISPLAYNAME = 256;
const MAX_AVATAR_URL = 1000;

/** The membership a request's action writes. */
export function membershipOfAction(action: MembershipAction): 'join' | 'leave' | 'invite' | 'ban' | 'knock' {
  return action === 'kick' || action === 'unban' ? 'leave' : action;
}

/** A requester for changes the server makes on a user's behalf (deactivation, profile updates). */
export function serverActingAs(userId: string): Requester {
  const localpart = userId.slice(1, userId.indexOf(':'));
  return { userId, localpart, deviceId: null, tokenId: 0, isGuest: false, isAdmin: false, shadowBanned: false };
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a as JsonObject) === canonicalJson(b as JsonObject);
  } catch {
    return false;
  }
}

/**
 * The member event a request makes, or the id of the identical event that
 * is already current. Runs in the room's queue and the write's transaction.
 */
export async function planMembership(
  db: Db,
  roomId: string,
  requester: Requester,
  target: string,
  action: MembershipAction,
  extra: JsonObject,
  opts: MembershipOptions,
): Promise<{ draft: EventDraft } | { existing: string }> {
  const membership = membershipOfAction(action);
  const content: JsonObject = { ...extra };
  // Only the authorising server may add this, and it would not be signed here.
  delete content['join_authorised_via_users_server'];
  const dn = content['displayname'];
  if (typeof dn === 'string' && [...dn].length > MAX_DISPLAYNAME) throw new MatrixError(400, 'M_BAD_JSON', `Displayname is too long (max ${MAX_DISPLAYNAME})`);
  const av = content['avatar_url'];
  if (typeof av === 'string' && [...av].length > MAX_AVATAR_URL) throw new MatrixError(400, 'M_BAD_JSON', `Avatar URL is too long (max ${MAX_AVATAR_URL})`);

  if (membership === 'join' || membership === 'knock' || membership === 'invite') {
    const profile = await getProfile(db, target);
    if (profile?.displayname && content['displayname'] === undefined) content['displayname'] = profile.displayname;
    if (profile?.avatar_url && content['avatar_url'] === undefined) content['avatar_url'] = profile.avatar_url;
  }
  content['membership'] = membership;

  if (membership === 'invite' && opts.blockNonAdminInvites && !requester.isAdmin) {
    throw forbidden('Invites have been disabled on this server');
  }

  const [row] = await currentState(db, roomId, [['m.room.member', target]]);
  const old = row ? await getEvent(db, row.event_id) : undefined;
  const oldMembership = row?.membership ?? undefined;
  if (action === 'unban' && oldMembership !== 'ban') {
    throw new MatrixError(403, 'M_BAD_STATE', `Cannot unban user who was not banned (membership=${oldMembership ?? 'none'})`);
  }
  if (oldMembership === 'ban' && action !== 'ban' && action !== 'unban' && action !== 'leave') {
    throw new MatrixError(403, 'M_BAD_STATE', `Cannot ${action} user who was banned`);
  }
  if (action === 'kick' && (oldMembership === undefined || oldMembership === 'leave' || oldMembership === 'ban')) {
    throw forbidden('The target user is not in the room');
  }
  if (old && old.sender === requester.userId && oldMembership === membership && sameJson(old.json['content'], content)) {
    return { existing: old.event_id };
  }

  if (membership === 'join' && requester.isGuest) {
    const [ga] = await currentState(db, roomId, [['m.room.guest_access', '']]);
    const gaEvent = ga ? (await getEvents(db, [ga.event_id])).get(ga.event_id) : undefined;
    const gaContent = gaEvent?.json['content'] as JsonObject | undefined;
    if (gaContent?.['guest_access'] !== 'can_join') throw forbidden('Guest access not allowed');
  }
  return { draft: { type: 'm.room.member', state_key: target, content } };
}

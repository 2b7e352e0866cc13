/**
 * Who may redact what, for redactions our clients send (the spec's
 * redaction rules, checked as Synapse checks them before sending):
 * - create and server ACL events are never redacted (403);
 * - the target must be in the same room (400);
 * - a sender at or above the room's `redact` level may redact any event;
 *   anyone else only their own events (403), and an unknown target then
 *   is 404.
 * Room versions 1-2 also carry a redaction auth rule (core/auth), which
 * runs before this.
 */
import { namedLevel, userPowerLevel } from '../../core/auth/index.js';
import type { PDU } from '../../core/pdu.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { forbidden, MatrixError } from '../../matrix-error.js';
import { getEvent } from '../../storage/events.js';
import type { Db } from '../../storage/db.js';

/** The event a redaction names: top-level `redacts` before v11, `content.redacts` from v11. */
export function redactionTarget(rv: RoomVersion, pdu: PDU): string | undefined {
  const t = rv.redactsInContent ? pdu.content['redacts'] : pdu.redacts;
  return typeof t === 'string' ? t : undefined;
}

/**
 * Throws unless the redaction's sender may redact its target. `state`
 * looks up the room's state before the redaction (power levels, create).
 */
export async function checkClientRedaction(db: Db, rv: RoomVersion, roomId: string, pdu: PDU, state: (type: string, stateKey: string) => PDU | undefined): Promise<void> {
  const targetId = redactionTarget(rv, pdu);
  if (targetId === undefined) throw new MatrixError(400, 'M_BAD_JSON', 'A redaction must name the event it redacts');
  const target = await getEvent(db, targetId);
  if (target) {
    if (target.type === 'm.room.create') throw forbidden('Redacting create events is not permitted');
    if (target.room_id !== roomId) throw new MatrixError(400, 'M_UNKNOWN', 'Cannot redact event from a different room');
    if (target.type === 'm.room.server_acl' && target.state_key === '') throw forbidden('Redacting server ACL events is not permitted');
  }
  const powerLevels = state('m.room.power_levels', '');
  const create = state('m.room.create', '');
  if (userPowerLevel(rv, pdu.sender, powerLevels, create) >= namedLevel(rv, powerLevels, 'redact')) return;
  if (!target) throw new MatrixError(404, 'M_NOT_FOUND', `Could not find event ${targetId}`);
  if (target.sender !== pdu.sender) throw forbidden("You don't have permission to redact events");
}

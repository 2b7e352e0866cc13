/** What state resolution (v2, v2.1) calls a "power event". */
import type { PDU } from '../pdu.js';
import { stringAt } from './json.js';

/**
 * A power event is a state event that might take someone's ability to act in
 * the room away: `m.room.power_levels` and `m.room.join_rules` (state_key
 * `""`), and `m.room.member` with `leave` or `ban` sent by someone other than
 * the target. `m.room.create` (state_key `""`) also counts, as Synapse and
 * Ruma count it; in a well-formed room it is never conflicted, so this only
 * keeps us in step with them on malformed input.
 */
export function isPowerEvent(event: PDU): boolean {
  const sk = event.state_key;
  if (sk === undefined) return false;
  switch (event.type) {
    case 'm.room.power_levels':
    case 'm.room.join_rules':
    case 'm.room.create':
      return sk === '';
    case 'm.room.member': {
      const m = stringAt(event.content, 'membership');
      return (m === 'leave' || m === 'ban') && event.sender !== sk;
    }
    default:
      return false;
  }
}

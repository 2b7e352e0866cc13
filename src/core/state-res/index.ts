/**
 * State resolution: the room state before an event, from the states after
 * each of its `prev_events`.
 *
 * - room version 1: the original algorithm (v1.ts),
 * - room versions 2-11: state resolution v2 (v2.ts),
 * - room version 12: v2.1 (MSC4297), in v2.ts too.
 *
 * Pure and synchronous: everything the algorithm may read is passed in.
 */
import { requireRoomVersion } from '../room-versions.js';
import { Context, type ResolveStateOptions } from './context.js';
import { compareCodePoints } from '../canonical-json.js';
import { EventGraph } from './graph.js';
import { isUnconflicted, splitStates, type StateEntry } from './split.js';
import { resolveV1 } from './v1.js';
import { resolveV2 } from './v2.js';

export type { ResolveStateOptions } from './context.js';
export { StateResolutionError } from './graph.js';
export type { StateEntry } from './split.js';

/**
 * Resolves `stateSets` (each a list of `[type, state_key, event_id]`, a key
 * at most once per list) under the algorithm of `roomVersion`.
 *
 * `events` holds, keyed by event id, every event the algorithm may read:
 * the events of the states and their auth chains. Events named in a state
 * but absent from `events` are tolerated while they are not conflicted (a
 * conflicted one throws StateResolutionError); absent auth events are
 * treated as not cited.
 *
 * Returns the resolved state as `[type, state_key, event_id]` entries,
 * sorted by type then state key (by code point), so equal states give equal
 * arrays. Throws UnsupportedRoomVersionError for a room version we do not
 * know and StateResolutionError for malformed input.
 */
export function resolveState(
  roomVersion: string,
  stateSets: readonly (readonly StateEntry[])[],
  events: Readonly<Record<string, object>>,
  options: ResolveStateOptions = {},
): [string, string, string][] {
  const rv = requireRoomVersion(roomVersion);
  if (stateSets.length === 0) return [];
  const split = splitStates(stateSets);
  const v1 = rv.stateRes === 'v1';
  let out: [string, string, string][];
  if (split.slots.every((s) => isUnconflicted(s, split.setCount, v1))) {
    out = split.slots.map((s) => [s.type, s.stateKey, s.first]);
  } else {
    const ctx = new Context(rv, new EventGraph(events), options);
    out = v1 ? resolveV1(ctx, split) : resolveV2(ctx, stateSets, split, rv.stateRes === 'v2.1');
  }
  return sortEntries(out);
}

/** Below U+D800, UTF-16 unit order (native string comparison) is code point order. */
const HIGH_UNIT = /[\ud800-\uffff]/;

/** Sorts by type, then state key, by code point. */
function sortEntries(out: [string, string, string][]): [string, string, string][] {
  if (!out.some((e) => HIGH_UNIT.test(e[0]) || HIGH_UNIT.test(e[1]))) {
    return out.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  }
  return out.sort((a, b) => compareCodePoints(a[0], b[0]) || compareCodePoints(a[1], b[1]));
}

/**
 * The state where a room's DAG merges: the states after several events,
 * read from their state groups, resolved by `src/core/state-res` with
 * everything the algorithm may read (the events of every state and their
 * auth chains, and which of them we rejected) loaded here.
 */
import type { PDU } from '../../core/pdu.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { resolveState, type StateEntry } from '../../core/state-res/index.js';
import type { Db } from '../../storage/db.js';
import { authChainIds, getEvents } from '../../storage/events.js';
import { stateAtGroup } from '../../storage/state.js';

/** `type NUL state_key` → event id. */
export type StateMap = Map<string, string>;

/** The states at these groups (null: the empty state before a create event), resolved. */
export async function resolveGroups(db: Db, rv: RoomVersion, groups: readonly (number | null)[]): Promise<StateMap> {
  const maps: StateMap[] = [];
  for (const g of new Set(groups)) maps.push(g === null ? new Map() : await stateAtGroup(db, g));
  return resolveMaps(db, rv, maps);
}

/** Several states of one room, resolved under the room version's algorithm. */
export async function resolveMaps(db: Db, rv: RoomVersion, maps: readonly StateMap[]): Promise<StateMap> {
  if (maps.length === 1 || maps.every((m) => sameState(m, maps[0]!))) return new Map(maps[0]);
  const sets: StateEntry[][] = maps.map((m) => [...m].map(([k, id]) => [...splitKey(k), id] as const));
  const ids = new Set<string>();
  for (const m of maps) for (const id of m.values()) ids.add(id);
  for (const id of await authChainIds(db, [...ids])) ids.add(id);
  const stored = await getEvents(db, [...ids]);
  const events: Record<string, PDU> = {};
  const rejected = new Set<string>();
  for (const [id, e] of stored) {
    events[id] = e.json as PDU;
    if (e.rejected_reason !== null) rejected.add(id);
  }
  const resolved = resolveState(rv.id, sets, events, { isRejected: (id) => rejected.has(id) });
  return new Map(resolved.map(([t, k, id]) => [`${t}\u0000${k}`, id]));
}

export function sameState(a: StateMap, b: StateMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export function splitKey(k: string): [string, string] {
  const i = k.indexOf('\u0000');
  return [k.slice(0, i), k.slice(i + 1)];
}

/**
 * History visibility for servers: which events another server may see, as
 * Synapse's filter_events_for_server decides it, from the state after each
 * event (the event itself included):
 * - `world_readable` and `shared` (and any value not understood): visible;
 * - `invited`: visible when one of the server's users is invited or joined;
 * - `joined`: visible when one of the server's users is joined.
 * An outlier has no state here, so it is visible (Synapse: "assume open").
 * Callers serve an event the server may not see in its redacted form.
 */
import type { Db } from '../../storage/db.js';
import { getEvents } from '../../storage/events.js';
import { serverMembershipAtGroups, type ServedEventRow } from '../../storage/served-events.js';
import { stateAtGroupsForKeys } from '../../storage/state.js';
import { visibilityOf, type Visibility } from '../rooms/visibility.js';

const HISTORY_VISIBILITY = 'm.room.history_visibility';

/** The ids of the events `server` may see. */
export async function eventsVisibleToServer(db: Db, server: string, events: readonly ServedEventRow[]): Promise<Set<string>> {
  const groupOf = (e: ServedEventRow): number | null => (e.outlier ? null : e.state_group_after);
  const groups = [...new Set(events.map(groupOf).filter((g): g is number => g !== null))];
  const visibility = await visibilityAtGroups(db, groups);
  const restricted = groups.filter((g) => {
    const v = visibility.get(g);
    return v === 'invited' || v === 'joined';
  });
  const memberships = await serverMembershipAtGroups(db, restricted, server);
  const out = new Set<string>();
  for (const e of events) {
    const g = groupOf(e);
    const v = g === null ? 'shared' : (visibility.get(g) ?? 'shared');
    const m = g === null ? undefined : memberships.get(g);
    const visible = v === 'world_readable' || v === 'shared' || m?.joined === true || (v === 'invited' && m?.invited === true);
    if (visible) out.add(e.event_id);
  }
  return out;
}

/** The history visibility in each state group (`shared` where none is set). */
async function visibilityAtGroups(db: Db, groups: readonly number[]): Promise<Map<number, Visibility>> {
  const out = new Map<number, Visibility>();
  if (groups.length === 0) return out;
  const byGroup = await stateAtGroupsForKeys(
    db,
    groups.map((group) => ({ group, type: HISTORY_VISIBILITY, stateKey: '' })),
  );
  const ids = new Set<string>();
  for (const m of byGroup.values()) for (const id of m.values()) ids.add(id);
  const events = await getEvents(db, [...ids]);
  for (const g of groups) {
    const id = byGroup.get(g)?.get(`${HISTORY_VISIBILITY}\u0000`);
    out.set(g, id === undefined ? 'shared' : visibilityOf(events.get(id)?.json['content']));
  }
  return out;
}

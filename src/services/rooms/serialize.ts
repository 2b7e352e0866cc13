/**
 * Events as the reading endpoints serve them: the ClientEvent format plus
 * what depends on other events:
 * - `unsigned.redacted_because`: for a redacted event, the redaction event
 *   (client format). The stored JSON already is the redacted form.
 * - `unsigned["m.relations"]`: bundled aggregations (threads, the latest
 *   edit, references), see relations.ts.
 * - `unsigned.transaction_id`: on events the requesting device sent, the
 *   txn id it gave them.
 * - `unsigned.prev_content`, `prev_sender`, `replaces_state`: on state
 *   events of a timeline, the state event each replaced (as Synapse, whatever
 *   the history visibility of the replaced event). State lists go without:
 *   they can be a whole large room.
 *
 * /sync and every timeline endpoint call serializeEvents, so an event reads
 * the same wherever it is served.
 */
import { getEvents, recordedReplacedState, transactionIds, type StoredEvent } from '../../storage/events.js';
import { stateAtGroupsForKeys } from '../../storage/state.js';
import { getTimelineEvents, type TimelineEvent } from '../../storage/timeline.js';
import { toClientEvent, type ClientEvent } from './client-event.js';
import { bundleAggregations } from './relations.js';
import type { Db } from '../../storage/db.js';

export interface SerializeOptions {
  /** The user the events are for: thread participation is theirs. */
  userId: string;
  now?: number;
  /** The requesting device: the events it sent get `unsigned.transaction_id`. */
  deviceId?: string | null;
  /** Add bundled aggregations (timeline events: yes; state lists: no). */
  aggregations?: boolean;
  /** Add prev_content / prev_sender / replaces_state to state events that carry their state group (timeline events). */
  replacedState?: boolean;
  /** Extra `unsigned` fields per event id (e.g. transaction_id for the sending device). */
  extraUnsigned?: ReadonlyMap<string, Record<string, unknown>>;
}

/** How timeline events are served: bundled aggregations, the device's transaction ids, the state each state event replaced. */
export function timelineOptions(userId: string, deviceId: string | null | undefined): SerializeOptions {
  return { userId, deviceId, aggregations: true, replacedState: true };
}

/** For each redacted event among these, the redaction that redacted it, in client format. */
export async function redactionsFor(db: Db, events: readonly StoredEvent[], now = Date.now()): Promise<Map<string, ClientEvent>> {
  const out = new Map<string, ClientEvent>();
  const byRedaction = new Map<string, string[]>();
  for (const e of events) {
    if (!e.redacted_by) continue;
    const list = byRedaction.get(e.redacted_by) ?? [];
    list.push(e.event_id);
    byRedaction.set(e.redacted_by, list);
  }
  if (byRedaction.size === 0) return out;
  const redactions = await getEvents(db, [...byRedaction.keys()]);
  for (const [rid, targets] of byRedaction) {
    const r = redactions.get(rid);
    if (!r) continue;
    const client = toClientEvent(r, now);
    for (const t of targets) out.set(t, client);
  }
  return out;
}

/** `unsigned.prev_content`, `prev_sender` and `replaces_state` of state events: the event each replaced (in the state before it). */
export async function replacedState(db: Db, events: readonly TimelineEvent[]): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  const states = events.filter((e) => e.state_key !== null && e.state_group_before !== null);
  if (states.length === 0) return out;
  // Recorded when the event was persisted (migration 0015); older events walk their state group.
  const recorded = await recordedReplacedState(
    db,
    states.map((e) => e.event_id),
  );
  const prevIds = new Map<string, string>();
  for (const e of states) {
    const id = recorded.get(e.event_id);
    if (id) prevIds.set(e.event_id, id);
  }
  const unknown = states.filter((e) => !recorded.has(e.event_id));
  const found =
    unknown.length === 0
      ? new Map<number, Map<string, string>>()
      : await stateAtGroupsForKeys(
          db,
          unknown.map((e) => ({ group: e.state_group_before as number, type: e.type, stateKey: e.state_key as string })),
        );
  for (const e of unknown) {
    const id = found.get(e.state_group_before as number)?.get(`${e.type}\u0000${e.state_key as string}`);
    if (id !== undefined && id !== e.event_id) prevIds.set(e.event_id, id);
  }
  const prevs = await getTimelineEvents(db, [...prevIds.values()]);
  for (const [id, prevId] of prevIds) {
    const p = prevs.get(prevId);
    if (!p) continue;
    out.set(id, { prev_content: p.json['content'] ?? {}, prev_sender: p.sender, replaces_state: prevId });
  }
  return out;
}

function hasStateGroup(e: StoredEvent): e is TimelineEvent {
  return (e as Partial<TimelineEvent>).state_group_before !== undefined;
}

/** Serializes events for a user, in the order given. */
export async function serializeEvents(db: Db, events: readonly StoredEvent[], opts: SerializeOptions): Promise<ClientEvent[]> {
  const now = opts.now ?? Date.now();
  const none = Promise.resolve(new Map<string, never>());
  const deviceId = opts.deviceId ?? undefined;
  const own = deviceId === undefined ? [] : events.filter((e) => e.sender === opts.userId).map((e) => e.event_id);
  const [redactions, bundles, txnIds, replaced] = await Promise.all([
    redactionsFor(db, events, now),
    opts.aggregations ? bundleAggregations(db, events, opts.userId, now) : Promise.resolve(new Map<string, Record<string, unknown>>()),
    deviceId === undefined ? none : transactionIds(db, opts.userId, deviceId, own),
    opts.replacedState ? replacedState(db, events.filter(hasStateGroup)) : none,
  ]);
  return events.map((e) => {
    const extra: Record<string, unknown> = { ...replaced.get(e.event_id), ...opts.extraUnsigned?.get(e.event_id) };
    const txnId = txnIds.get(e.event_id);
    if (txnId !== undefined) extra['transaction_id'] = txnId;
    const because = redactions.get(e.event_id);
    if (because) extra['redacted_because'] = because;
    const bundle = bundles.get(e.event_id);
    if (bundle) extra['m.relations'] = bundle;
    return toClientEvent(e, now, extra);
  });
}

export async function serializeEvent(db: Db, event: StoredEvent, opts: SerializeOptions): Promise<ClientEvent> {
  const [out] = await serializeEvents(db, [event], opts);
  return out as ClientEvent;
}

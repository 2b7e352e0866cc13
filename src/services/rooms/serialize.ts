/**
 * Events as the reading endpoints serve them: the ClientEvent format plus
 * what depends on other events:
 * - `unsigned.redacted_because`: for a redacted event, the redaction event
 *   (client format). The stored JSON already is the redacted form.
 * - `unsigned["m.relations"]`: bundled aggregations (threads, the latest
 *   edit, references), see relations.ts.
 *
 * /sync and every timeline endpoint call serializeEvents, so an event reads
 * the same wherever it is served.
 */
import type { Kysely, Transaction } from 'kysely';
import { getEvents, type StoredEvent } from '../../storage/events.js';
import type { Schema } from '../../storage/schema.js';
import { toClientEvent, type ClientEvent } from './client-event.js';
import { bundleAggregations } from './relations.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export interface SerializeOptions {
  /** The user the events are for: thread participation is theirs. */
  userId: string;
  now?: number;
  /** Add bundled aggregations (timeline events: yes; state lists: no). */
  aggregations?: boolean;
  /** Extra `unsigned` fields per event id (e.g. transaction_id for the sending device). */
  extraUnsigned?: ReadonlyMap<string, Record<string, unknown>>;
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

/** Serializes events for a user, in the order given. */
export async function serializeEvents(db: Db, events: readonly StoredEvent[], opts: SerializeOptions): Promise<ClientEvent[]> {
  const now = opts.now ?? Date.now();
  const [redactions, bundles] = await Promise.all([
    redactionsFor(db, events, now),
    opts.aggregations ? bundleAggregations(db, events, opts.userId, now) : Promise.resolve(new Map<string, Record<string, unknown>>()),
  ]);
  return events.map((e) => {
    const extra: Record<string, unknown> = { ...opts.extraUnsigned?.get(e.event_id) };
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

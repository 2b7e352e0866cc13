/**
 * The outbound federation sender's durable queue (migration 0019): the
 * events stream position whose fan-out is queued, and each destination's
 * outbox of PDUs (by event id; the JSON is read from `events` when sent)
 * and EDUs. A transaction in flight is the outbox rows carrying its
 * `txn_id`, so a retry sends exactly what the first attempt did.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';
import { textArray } from './sql-arrays.js';

const num = (v: unknown): number => Number(v);

/** A local event the sender fans out. */
export interface OutgoingEventRow {
  stream_ordering: number;
  event_id: string;
  room_id: string;
  type: string;
  state_key: string | null;
}

/** The last stream ordering whose fan-out is queued. */
export async function streamPosition(db: Db): Promise<number> {
  const r = await db.selectFrom('federation_stream_position').select('stream_ordering').executeTakeFirst();
  return num(r?.stream_ordering ?? 0);
}

/** The position, locked until `tx` ends (one fan-out at a time, whatever the process). */
export async function lockStreamPosition(tx: Tx): Promise<number> {
  const r = await tx.selectFrom('federation_stream_position').select('stream_ordering').forUpdate().executeTakeFirst();
  if (r) return num(r.stream_ordering);
  await tx.insertInto('federation_stream_position').values({ stream_ordering: 0 }).execute();
  return 0;
}

export async function setStreamPosition(tx: Tx, position: number): Promise<void> {
  await tx.updateTable('federation_stream_position').set({ stream_ordering: position }).execute();
}

/**
 * Events in (after, upTo] sent by a user of `serverName` (or that we pass
 * on for another server: a membership event of our send_join) that are live
 * (not outliers, not rejected, not soft-failed; backfilled events have
 * negative orderings), in stream order, at most `limit`.
 */
export async function localEventsBetween(db: Db, o: { after: number; upTo: number; serverName: string; limit: number }): Promise<OutgoingEventRow[]> {
  const res = await sql<OutgoingEventRow>`
    SELECT stream_ordering, event_id, room_id, type, state_key
    FROM events
    WHERE stream_ordering > ${o.after} AND stream_ordering <= ${o.upTo}
      AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed
      AND (substr(sender, strpos(sender, ':') + 1) = ${o.serverName} OR send_on_behalf_of IS NOT NULL)
    ORDER BY stream_ordering
    LIMIT ${o.limit}`.execute(db);
  return res.rows.map((r) => ({ ...r, stream_ordering: num(r.stream_ordering) }));
}

/** One PDU queued for one destination. */
export interface QueuedPdu {
  destination: string;
  roomId: string;
  eventId: string;
  streamOrdering: number;
}

/** Makes sure each destination has its row (retry state, the admin API's list). */
export async function ensureDestinations(db: Db, destinations: readonly string[]): Promise<void> {
  if (destinations.length === 0) return;
  await sql`INSERT INTO federation_destinations (destination)
            SELECT unnest(${textArray([...new Set(destinations)].sort())})
            ON CONFLICT (destination) DO NOTHING`.execute(db);
}

/** Queues PDUs (in the order given) and records each (destination, room)'s newest queued ordering. */
export async function queuePdus(tx: Tx, pdus: readonly QueuedPdu[]): Promise<void> {
  if (pdus.length === 0) return;
  await ensureDestinations(
    tx,
    pdus.map((p) => p.destination),
  );
  for (let i = 0; i < pdus.length; i += 500) {
    const chunk = pdus.slice(i, i + 500);
    await tx
      .insertInto('federation_outbox_pdus')
      .values(chunk.map((p) => ({ destination: p.destination, room_id: p.roomId, event_id: p.eventId, stream_ordering: p.streamOrdering, txn_id: null })))
      .execute();
  }
  const newest = new Map<string, QueuedPdu>();
  for (const p of pdus) {
    const k = `${p.destination}\u0000${p.roomId}`;
    const seen = newest.get(k);
    if (!seen || seen.streamOrdering < p.streamOrdering) newest.set(k, p);
  }
  const rows = [...newest.values()].sort((a, b) => (a.destination === b.destination ? (a.roomId < b.roomId ? -1 : 1) : a.destination < b.destination ? -1 : 1));
  await tx
    .insertInto('federation_destination_rooms')
    .values(rows.map((p) => ({ destination: p.destination, room_id: p.roomId, stream_ordering: p.streamOrdering })))
    .onConflict((oc) =>
      oc.columns(['destination', 'room_id']).doUpdateSet({ stream_ordering: sql<number>`GREATEST(federation_destination_rooms.stream_ordering, excluded.stream_ordering)` }),
    )
    .execute();
}

/**
 * Queues an EDU. With a key, it replaces the unsent EDU of the same
 * (destination, type, key) in place; one already in a transaction in
 * flight is left alone (the new one follows it).
 */
export async function queueEdu(db: Db, e: { destination: string; eduType: string; key: string | null; content: Record<string, unknown> }): Promise<void> {
  await ensureDestinations(db, [e.destination]);
  const content = sql<Record<string, unknown>>`${JSON.stringify(e.content)}::jsonb`;
  if (e.key === null) {
    await db.insertInto('federation_outbox_edus').values({ destination: e.destination, edu_type: e.eduType, edu_key: null, content, txn_id: null }).execute();
    return;
  }
  await sql`INSERT INTO federation_outbox_edus (destination, edu_type, edu_key, content)
            VALUES (${e.destination}, ${e.eduType}, ${e.key}, ${content})
            ON CONFLICT (destination, edu_type, edu_key) WHERE edu_key IS NOT NULL AND txn_id IS NULL
            DO UPDATE SET content = excluded.content`.execute(db);
}

/**
 * Catch-up after an outage: for each room with more than `threshold` unsent
 * PDUs for the destination, drops all but the newest `keep` of them (the
 * remote fetches what lies between with /get_missing_events). Returns how
 * many rows were dropped.
 */
export async function trimBacklog(tx: Tx, destination: string, threshold: number, keep: number): Promise<number> {
  const res = await sql`
    DELETE FROM federation_outbox_pdus o
    USING (
      SELECT id,
             row_number() OVER (PARTITION BY room_id ORDER BY stream_ordering DESC, id DESC) AS rn,
             count(*) OVER (PARTITION BY room_id) AS n
      FROM federation_outbox_pdus
      WHERE destination = ${destination} AND txn_id IS NULL
    ) r
    WHERE o.id = r.id AND r.n > ${threshold} AND r.rn > ${keep}`.execute(tx);
  return num(res.numAffectedRows ?? 0);
}

/**
 * Takes the oldest unsent rows (at most `maxPdus` PDUs and `maxEdus` EDUs)
 * into a transaction `txnId` and records it on the destination. Returns
 * false (and takes nothing) when there is nothing to send.
 */
export async function takeTransaction(tx: Tx, o: { destination: string; txnId: string; maxPdus: number; maxEdus: number }): Promise<boolean> {
  const pdus = await sql`
    UPDATE federation_outbox_pdus SET txn_id = ${o.txnId}
    WHERE id IN (SELECT id FROM federation_outbox_pdus WHERE destination = ${o.destination} AND txn_id IS NULL ORDER BY id LIMIT ${o.maxPdus})`.execute(tx);
  const edus = await sql`
    UPDATE federation_outbox_edus SET txn_id = ${o.txnId}
    WHERE id IN (SELECT id FROM federation_outbox_edus WHERE destination = ${o.destination} AND txn_id IS NULL ORDER BY id LIMIT ${o.maxEdus})`.execute(tx);
  if (num(pdus.numAffectedRows ?? 0) + num(edus.numAffectedRows ?? 0) === 0) return false;
  await tx.updateTable('federation_destinations').set({ txn_id: o.txnId }).where('destination', '=', o.destination).execute();
  return true;
}

/** A transaction's PDUs: the stored event JSON in queue order (events gone since are left out). */
export async function transactionPdus(db: Db, destination: string, txnId: string): Promise<{ stream_ordering: number; json: Record<string, unknown> }[]> {
  const res = await sql<{ stream_ordering: unknown; json: Record<string, unknown> }>`
    SELECT o.stream_ordering, e.json
    FROM federation_outbox_pdus o JOIN events e ON e.event_id = o.event_id
    WHERE o.destination = ${destination} AND o.txn_id = ${txnId}
    ORDER BY o.id`.execute(db);
  return res.rows.map((r) => ({ stream_ordering: num(r.stream_ordering), json: r.json }));
}

export async function transactionEdus(db: Db, destination: string, txnId: string): Promise<{ edu_type: string; content: Record<string, unknown> }[]> {
  return db.selectFrom('federation_outbox_edus').select(['edu_type', 'content']).where('destination', '=', destination).where('txn_id', '=', txnId).orderBy('id').execute();
}

/** The destination accepted transaction `txnId`: its rows go, the retry state is cleared. */
export async function completeTransaction(tx: Tx, o: { destination: string; txnId: string; lastStreamOrdering: number | null }): Promise<void> {
  await tx.deleteFrom('federation_outbox_pdus').where('destination', '=', o.destination).where('txn_id', '=', o.txnId).execute();
  await tx.deleteFrom('federation_outbox_edus').where('destination', '=', o.destination).where('txn_id', '=', o.txnId).execute();
  await tx
    .updateTable('federation_destinations')
    .set({
      txn_id: null,
      retry_last_ts: 0,
      retry_interval: 0,
      failure_ts: null,
      catching_up: false,
      ...(o.lastStreamOrdering !== null && {
        last_successful_stream_ordering: sql<number>`GREATEST(COALESCE(last_successful_stream_ordering, 0), ${o.lastStreamOrdering})`,
      }),
    })
    .where('destination', '=', o.destination)
    .execute();
}

/** Destinations with something still to send (woken at start). */
export async function destinationsWithWork(db: Db): Promise<string[]> {
  const res = await sql<{ destination: string }>`
    SELECT destination FROM federation_outbox_pdus GROUP BY destination
    UNION
    SELECT destination FROM federation_outbox_edus GROUP BY destination`.execute(db);
  return res.rows.map((r) => r.destination);
}

/** How many rows wait for the destination (tests, diagnostics). */
export async function outboxCounts(db: Db, destination: string): Promise<{ pdus: number; edus: number }> {
  const res = await sql<{ pdus: unknown; edus: unknown }>`
    SELECT (SELECT count(*) FROM federation_outbox_pdus WHERE destination = ${destination}) AS pdus,
           (SELECT count(*) FROM federation_outbox_edus WHERE destination = ${destination}) AS edus`.execute(db);
  const r = res.rows[0];
  return { pdus: num(r?.pdus ?? 0), edus: num(r?.edus ?? 0) };
}

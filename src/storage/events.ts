/** Queries on events (PDUs) and transaction ids. */
import { sql, type Transaction } from 'kysely';
import type { Db, Tx } from './db.js';

export interface StoredEvent {
  event_id: string;
  room_id: string;
  type: string;
  state_key: string | null;
  sender: string;
  depth: number;
  origin_server_ts: number;
  stream_ordering: number;
  json: Record<string, unknown>;
  redacted_by: string | null;
  rejected_reason: string | null;
}

const COLUMNS = ['event_id', 'room_id', 'type', 'state_key', 'sender', 'depth', 'origin_server_ts', 'stream_ordering', 'json', 'redacted_by', 'rejected_reason'] as const;

/** An event row as the persister writes it (see services/rooms/event-persister.ts). */
export interface NewEventRow {
  eventId: string;
  roomId: string;
  type: string;
  stateKey: string | null;
  sender: string;
  depth: number;
  ts: number;
  json: object;
  stateGroupBefore: number | null;
  stateGroupAfter?: number | null;
  replacesState?: string | null;
  outlier?: boolean;
  /** An outlier that is a user's current membership (0021). */
  outOfBand?: boolean;
  /** The server we pass this event on for (0024). */
  sendOnBehalfOf?: string | null;
  rejectedReason?: string | null;
  softFailed?: boolean;
  /** Backfilled history: a stream ordering below every live event's (events_backfill_stream, migration 0017). */
  backfilled?: boolean;
}

/** An event's row, as both inserts write it. */
function eventValues(e: NewEventRow) {
  return {
    event_id: e.eventId,
    room_id: e.roomId,
    type: e.type,
    state_key: e.stateKey,
    sender: e.sender,
    depth: e.depth,
    origin_server_ts: e.ts,
    json: sql<Record<string, unknown>>`${JSON.stringify(e.json)}::jsonb`,
    outlier: e.outlier ?? false,
    out_of_band: e.outOfBand ?? false,
    send_on_behalf_of: e.sendOnBehalfOf ?? null,
    rejected_reason: e.rejectedReason ?? null,
    soft_failed: e.softFailed ?? false,
    state_group_before: e.stateGroupBefore,
    state_group_after: e.stateGroupAfter ?? null,
    redacted_by: null,
    replaces_state: e.replacesState ?? null,
  };
}

/** Stores an event; returns its stream ordering. */
export async function insertEvent(db: Db, e: NewEventRow): Promise<number> {
  const row = await db
    .insertInto('events')
    .values({ ...(e.backfilled ? { stream_ordering: sql<number>`nextval('events_backfill_stream')` } : {}), ...eventValues(e) })
    .returning('stream_ordering')
    .executeTakeFirstOrThrow();
  return Number(row.stream_ordering);
}

/**
 * Stores outliers (no state, no DAG place) in multi-row inserts, 500 at a
 * time; returns their stream orderings in order. For the state and auth
 * chain a join brings: thousands of events in a few statements.
 */
export async function insertOutliers(
  db: Db,
  rows: readonly Pick<NewEventRow, 'eventId' | 'roomId' | 'type' | 'stateKey' | 'sender' | 'depth' | 'ts' | 'json' | 'rejectedReason'>[],
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const res = await db
      .insertInto('events')
      .values(chunk.map((e) => eventValues({ ...e, outlier: true, stateGroupBefore: null })))
      .returning(['event_id', 'stream_ordering'])
      .execute();
    const byId = new Map(res.map((r) => [r.event_id, Number(r.stream_ordering)]));
    for (const e of chunk) out.push(byId.get(e.eventId)!);
  }
  return out;
}

/** Where stored events sit in their room's DAG and state. */
export interface EventPlacement {
  event_id: string;
  room_id: string;
  depth: number;
  outlier: boolean;
  rejected_reason: string | null;
  soft_failed: boolean;
  state_group_before: number | null;
  state_group_after: number | null;
}

export async function eventPlacements(db: Db, ids: readonly string[]): Promise<Map<string, EventPlacement>> {
  const out = new Map<string, EventPlacement>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('events')
    .select(['event_id', 'room_id', 'depth', 'outlier', 'rejected_reason', 'soft_failed', 'state_group_before', 'state_group_after'])
    .where('event_id', 'in', [...new Set(ids)])
    .execute();
  for (const r of rows) out.set(r.event_id, { ...r, depth: Number(r.depth) });
  return out;
}

/** Drops an outlier's row, so that the event can be stored again with its place in the DAG. */
export async function deleteOutlier(db: Tx, eventId: string): Promise<void> {
  await db.deleteFrom('events').where('event_id', '=', eventId).where('outlier', '=', true).execute();
}

/** Whether a stored, accepted, non-outlier event cites `eventId` among its prev_events. */
export async function hasAcceptedChild(db: Db, eventId: string): Promise<boolean> {
  return (await eventsCitedByAccepted(db, [eventId])).has(eventId);
}

/** Of `ids`, those that a stored, accepted, non-outlier event cites among its prev_events. */
export async function eventsCitedByAccepted(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db
    .selectFrom('event_edges as x')
    .innerJoin('events as c', 'c.event_id', 'x.event_id')
    .select('x.prev_event_id')
    .distinct()
    .where('x.prev_event_id', 'in', [...new Set(ids)])
    .where('c.outlier', '=', false)
    .where('c.rejected_reason', 'is', null)
    .where('c.soft_failed', '=', false)
    .execute();
  return new Set(rows.map((r) => r.prev_event_id));
}

/** The ids of every event in the auth chains of `ids` (not `ids` themselves, unless one cites another). */
export async function authChainIds(db: Db, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const res = await sql<{ id: string }>`
    WITH RECURSIVE chain(id) AS (
      SELECT auth_id FROM event_auth_edges WHERE event_id = ANY(${sql.val([...new Set(ids)])}::text[])
      UNION
      SELECT a.auth_id FROM chain c JOIN event_auth_edges a ON a.event_id = c.id
    )
    SELECT id FROM chain`.execute(db);
  return res.rows.map((r) => r.id);
}

export async function getEvents(db: Db, ids: readonly string[]): Promise<Map<string, StoredEvent>> {
  const out = new Map<string, StoredEvent>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('events')
    .select(COLUMNS)
    .where('event_id', 'in', [...new Set(ids)])
    .execute();
  for (const r of rows) out.set(r.event_id, r);
  return out;
}

export async function getEvent(db: Db, id: string): Promise<StoredEvent | undefined> {
  return db.selectFrom('events').select(COLUMNS).where('event_id', '=', id).executeTakeFirst();
}

export async function maxStreamOrdering(db: Db): Promise<number> {
  const r = await db
    .selectFrom('events')
    .select((eb) => eb.fn.max('stream_ordering').as('m'))
    .executeTakeFirst();
  return Number(r?.m ?? 0);
}

export async function markRedacted(db: Db, eventId: string, redactedBy: string, redactedJson: object): Promise<void> {
  await db
    .updateTable('events')
    .set({ redacted_by: redactedBy, json: sql`${JSON.stringify(redactedJson)}::jsonb` })
    .where('event_id', '=', eventId)
    .execute();
}

/**
 * Transaction ids: a client's (device, endpoint path, txn id) names one
 * event. `scope` is the path without its version prefix and txn id (see
 * services/rooms/room-service.ts txnScope).
 */
export interface TxnKey {
  userId: string;
  deviceId: string;
  scope: string;
  txnId: string;
}

export async function findTxn(db: Db, k: TxnKey): Promise<string | undefined> {
  const r = await db
    .selectFrom('event_txn_ids')
    .select('event_id')
    .where('user_id', '=', k.userId)
    .where('device_id', '=', k.deviceId)
    .where('txn_id', '=', k.txnId)
    .where('scope', '=', k.scope)
    .executeTakeFirst();
  return r?.event_id;
}

export async function recordTxn(db: Db, k: TxnKey, eventId: string, now: number): Promise<void> {
  await db.insertInto('event_txn_ids').values({ user_id: k.userId, device_id: k.deviceId, txn_id: k.txnId, scope: k.scope, event_id: eventId, created_ts: now }).execute();
}

/** The transaction ids this device gave these events, of those it sent (for `unsigned.transaction_id`). */
export async function transactionIds(db: Db, userId: string, deviceId: string, eventIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (eventIds.length === 0) return out;
  const rows = await db
    .selectFrom('event_txn_ids')
    .select(['event_id', 'txn_id'])
    .where(sql<boolean>`event_id = ANY(${sql.val([...eventIds])}::text[])`)
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .execute();
  for (const r of rows) out.set(r.event_id, r.txn_id);
  return out;
}

/** `replaces_state` of these events, where recorded ('' when the event replaced nothing). */
export async function recordedReplacedState(db: Db, eventIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (eventIds.length === 0) return out;
  const rows = await db
    .selectFrom('events')
    .select(['event_id', 'replaces_state'])
    .where('event_id', '=', sql<string>`ANY(${sql.val([...new Set(eventIds)])}::text[])`)
    .where('replaces_state', 'is not', null)
    .execute();
  for (const r of rows) out.set(r.event_id, r.replaces_state as string);
  return out;
}

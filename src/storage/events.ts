/** Queries on events (PDUs) and transaction ids. */
import { sql, type Transaction } from 'kysely';
import type { Db } from './db.js';

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

export async function insertEvent(
  db: Db,
  e: { eventId: string; roomId: string; type: string; stateKey: string | null; sender: string; depth: number; ts: number; json: object; stateGroupBefore: number | null; replacesState?: string | null },
): Promise<number> {
  const row = await db
    .insertInto('events')
    .values({
      event_id: e.eventId,
      room_id: e.roomId,
      type: e.type,
      state_key: e.stateKey,
      sender: e.sender,
      depth: e.depth,
      origin_server_ts: e.ts,
      json: sql`${JSON.stringify(e.json)}::jsonb`,
      rejected_reason: null,
      state_group_before: e.stateGroupBefore,
      redacted_by: null,
      replaces_state: e.replacesState ?? null,
    })
    .returning('stream_ordering')
    .executeTakeFirstOrThrow();
  return row.stream_ordering;
}

export async function getEvents(db: Db, ids: readonly string[]): Promise<Map<string, StoredEvent>> {
  const out = new Map<string, StoredEvent>();
  if (ids.length === 0) return out;
  const rows = await db.selectFrom('events').select(COLUMNS).where('event_id', 'in', [...new Set(ids)]).execute();
  for (const r of rows) out.set(r.event_id, r);
  return out;
}

export async function getEvent(db: Db, id: string): Promise<StoredEvent | undefined> {
  return db.selectFrom('events').select(COLUMNS).where('event_id', '=', id).executeTakeFirst();
}

/** Events of a room in stream order: after `from` (exclusive) up to `to` (inclusive), newest last. */
export async function roomEventsBetween(db: Db, roomId: string, from: number, to: number, limit: number, dir: 'f' | 'b'): Promise<StoredEvent[]> {
  let q = db.selectFrom('events').select(COLUMNS).where('room_id', '=', roomId).where('outlier', '=', false);
  if (dir === 'f') q = q.where('stream_ordering', '>', from).where('stream_ordering', '<=', to).orderBy('stream_ordering', 'asc');
  else q = q.where('stream_ordering', '<=', from).where('stream_ordering', '>', to).orderBy('stream_ordering', 'desc');
  return q.limit(limit).execute();
}

export async function maxStreamOrdering(db: Db): Promise<number> {
  const r = await db.selectFrom('events').select((eb) => eb.fn.max('stream_ordering').as('m')).executeTakeFirst();
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

/**
 * Receipts (migration 0008): the latest receipt per (room, type, user,
 * thread), thread '' meaning unthreaded. Every write takes a new position on
 * the receipts stream (`stream_id`), which /sync reads.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** The thread_id stored for an unthreaded receipt. */
export const UNTHREADED = '';

export interface ReceiptRow {
  room_id: string;
  receipt_type: string;
  user_id: string;
  thread_id: string;
  event_id: string;
  data: Record<string, unknown>;
  stream_id: number;
}

/**
 * Stores a receipt if it points later in the room than the one it replaces
 * (receipts only move forward). Returns the new stream position, or
 * undefined when the existing receipt was already at or past this event.
 */
export async function upsertReceipt(
  db: Db,
  r: { roomId: string; type: string; userId: string; threadId: string; eventId: string; eventStreamOrdering: number; data: Record<string, unknown> },
): Promise<number | undefined> {
  const row = await db
    .insertInto('receipts')
    .values({
      room_id: r.roomId,
      receipt_type: r.type,
      user_id: r.userId,
      thread_id: r.threadId,
      event_id: r.eventId,
      event_stream_ordering: r.eventStreamOrdering,
      data: sql<Record<string, unknown>>`${JSON.stringify(r.data)}::jsonb`,
    })
    .onConflict((oc) =>
      oc
        .columns(['room_id', 'receipt_type', 'user_id', 'thread_id'])
        .doUpdateSet((eb) => ({
          event_id: eb.ref('excluded.event_id'),
          event_stream_ordering: eb.ref('excluded.event_stream_ordering'),
          data: eb.ref('excluded.data'),
          stream_id: eb.ref('excluded.stream_id'),
        }))
        .where('receipts.event_stream_ordering', '<', (eb) => eb.ref('excluded.event_stream_ordering')),
    )
    .returning('stream_id')
    .executeTakeFirst();
  return row?.stream_id;
}

/**
 * Receipts in `roomIds` written after position `from` (and up to `to` when
 * given). Private receipts (`m.read.private`) are only returned for `userId`.
 */
export async function receiptsSince(db: Db, roomIds: readonly string[], from: number, userId: string, to?: number): Promise<ReceiptRow[]> {
  if (roomIds.length === 0) return [];
  let q = db
    .selectFrom('receipts')
    .select(['room_id', 'receipt_type', 'user_id', 'thread_id', 'event_id', 'data', 'stream_id'])
    .where('room_id', 'in', [...new Set(roomIds)])
    .where('stream_id', '>', from)
    .where((eb) => eb.or([eb('receipt_type', '<>', 'm.read.private'), eb('user_id', '=', userId)]));
  if (to !== undefined) q = q.where('stream_id', '<=', to);
  return q.orderBy('stream_id').execute();
}

/** The newest position on the receipts stream (0 before any receipt). */
export async function maxReceiptStreamId(db: Db): Promise<number> {
  const r = await db
    .selectFrom('receipts')
    .select((eb) => eb.fn.max('stream_id').as('m'))
    .executeTakeFirst();
  return Number(r?.m ?? 0);
}

/** One receipt of a user, or undefined. */
export async function getReceipt(db: Db, roomId: string, type: string, userId: string, threadId: string): Promise<{ event_id: string; event_stream_ordering: number } | undefined> {
  return db
    .selectFrom('receipts')
    .select(['event_id', 'event_stream_ordering'])
    .where('room_id', '=', roomId)
    .where('receipt_type', '=', type)
    .where('user_id', '=', userId)
    .where('thread_id', '=', threadId)
    .executeTakeFirst();
}

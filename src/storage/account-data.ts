/**
 * Queries on account data: per user, global (room_id '') or per room. Each
 * write takes a new position on `account_data_stream_seq`, so /sync can ask
 * what changed since a position.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** The room_id stored for global account data. */
export const GLOBAL = '';

export async function getAccountData(db: Db, userId: string, roomId: string, type: string): Promise<Record<string, unknown> | undefined> {
  const row = await db.selectFrom('account_data').select('content').where('user_id', '=', userId).where('room_id', '=', roomId).where('type', '=', type).executeTakeFirst();
  return row?.content;
}

/** Inserts or replaces one entry at a new stream position; returns that position. */
export async function putAccountData(db: Db, userId: string, roomId: string, type: string, content: Record<string, unknown>): Promise<number> {
  const json = sql<Record<string, unknown>>`${JSON.stringify(content)}::jsonb`;
  const row = await db
    .insertInto('account_data')
    .values({ user_id: userId, room_id: roomId, type, content: json, stream_id: sql<number>`nextval('account_data_stream_seq')` })
    .onConflict((oc) => oc.columns(['user_id', 'room_id', 'type']).doUpdateSet((eb) => ({ content: eb.ref('excluded.content'), stream_id: eb.ref('excluded.stream_id') })))
    .returning('stream_id')
    .executeTakeFirstOrThrow();
  return row.stream_id;
}

/** Removes all of a user's account data (deactivation). */
export async function deleteAllAccountData(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('account_data').where('user_id', '=', userId).execute();
}

/** A user's entries written after stream position `since` (global ones have room_id ''), oldest first. */
export async function accountDataSince(db: Db, userId: string, since: number): Promise<{ room_id: string; type: string; content: Record<string, unknown>; stream_id: number }[]> {
  return db
    .selectFrom('account_data')
    .select(['room_id', 'type', 'content', 'stream_id'])
    .where('user_id', '=', userId)
    .where('stream_id', '>', since)
    .orderBy('stream_id')
    .execute();
}

/** The newest position on the account-data stream (0 before any write). */
export async function accountDataMaxStreamId(db: Db): Promise<number> {
  const row = await sql<{ last: string | number | null }>`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last FROM account_data_stream_seq`.execute(db);
  return Number(row.rows[0]?.last ?? 0);
}

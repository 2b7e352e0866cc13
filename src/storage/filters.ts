/**
 * Uploaded filters. Ids are per user and count up from 0, as Synapse's do;
 * uploading a filter identical to one the user already has returns that
 * filter's id instead of storing it twice.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';

/**
 * Stores a filter (or finds the same one) in the caller's transaction;
 * returns its id. A transaction-scoped advisory lock on the user serialises
 * two uploads by one user, so they cannot both take the same id.
 */
export async function addUserFilter(tx: Tx, userId: string, filter: Record<string, unknown>, now: number): Promise<number> {
  const json = JSON.stringify(filter);
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`user_filters:${userId}`}))`.execute(tx);
  const same = await tx
    .selectFrom('user_filters')
    .select('filter_id')
    .where('user_id', '=', userId)
    .where('filter_json', '=', sql<Record<string, unknown>>`${json}::jsonb`)
    .executeTakeFirst();
  if (same) return same.filter_id;
  const max = await tx
    .selectFrom('user_filters')
    .select((eb) => eb.fn.max('filter_id').as('m'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  const id = max?.m === null || max?.m === undefined ? 0 : Number(max.m) + 1;
  await tx
    .insertInto('user_filters')
    .values({ user_id: userId, filter_id: id, filter_json: sql<Record<string, unknown>>`${json}::jsonb`, created_ts: now })
    .execute();
  return id;
}

export async function getUserFilter(db: Db, userId: string, filterId: number): Promise<Record<string, unknown> | undefined> {
  const row = await db.selectFrom('user_filters').select('filter_json').where('user_id', '=', userId).where('filter_id', '=', filterId).executeTakeFirst();
  return row?.filter_json;
}

/** Per-user rate-limit overrides (`ratelimit_override`, the admin API's override_ratelimit). */
import type { Db } from './db.js';

export interface RatelimitOverrideRow {
  user_id: string;
  messages_per_second: number;
  burst_count: number;
}

/** Every override (the table holds one row per user an admin set one for). */
export async function listRatelimitOverrides(db: Db): Promise<RatelimitOverrideRow[]> {
  return db.selectFrom('ratelimit_override').select(['user_id', 'messages_per_second', 'burst_count']).execute();
}

export async function setRatelimitOverride(db: Db, row: RatelimitOverrideRow): Promise<void> {
  await db
    .insertInto('ratelimit_override')
    .values(row)
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ messages_per_second: row.messages_per_second, burst_count: row.burst_count }))
    .execute();
}

export async function deleteRatelimitOverride(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('ratelimit_override').where('user_id', '=', userId).execute();
}

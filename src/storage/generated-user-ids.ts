/** Numeric localparts for guests and for registrations that give no username (migration 0003's sequence). */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** The next candidate numeric localpart; the caller retries when the insert finds it taken. */
export async function nextGeneratedLocalpart(db: Db): Promise<string> {
  const { rows } = await sql<{ n: number | string }>`SELECT nextval('user_id_seq') AS n`.execute(db);
  return String(rows[0]?.n);
}

/**
 * Moves the sequence past the highest numeric localpart in use (numeric
 * users can also come from elsewhere, e.g. imported data), so the next
 * candidate is free.
 */
export async function skipTakenGeneratedLocalparts(db: Db): Promise<void> {
  await sql`
    SELECT setval('user_id_seq', greatest(
      (SELECT last_value FROM user_id_seq),
      (SELECT coalesce(max(localpart::numeric), 1) FROM users WHERE localpart ~ '^[0-9]{1,18}$')::bigint
    ))`.execute(db);
}

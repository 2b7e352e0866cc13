/**
 * Queries on server-side key backups (migration 0010): versions per user,
 * numbered from 1 and never reused (a deleted version keeps its row, marked
 * `deleted`), and the backed-up session keys of each version. Writes run in
 * the caller's transaction after `lockUserBackups`, which serialises one
 * user's backup writes (version numbers, the "current version" check, etags).
 */
import { sql } from 'kysely';
import { textArray } from './sql-arrays.js';
import type { Db, Tx } from './db.js';

const num = (v: unknown): number => Number(v);

function intArray(values: readonly number[]) {
  return sql`${sql.val([...values])}::int[]`;
}

function boolArray(values: readonly boolean[]) {
  return sql`${sql.val([...values])}::boolean[]`;
}

export interface BackupVersionRow {
  version: number;
  algorithm: string;
  auth_data: Record<string, unknown>;
  etag: number;
}

export interface BackedUpKey {
  room_id: string;
  session_id: string;
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Record<string, unknown>;
}

/** Serialises one user's backup writes until the caller's transaction ends. */
export async function lockUserBackups(tx: Tx, userId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${`room_keys:${userId}`}))`.execute(tx);
}

/** Creates the user's next version (one above any they ever had); returns its number. */
export async function createBackupVersion(tx: Tx, userId: string, algorithm: string, authData: Record<string, unknown>): Promise<number> {
  const res = await sql<{ version: string | number }>`
    INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data)
    SELECT ${userId}, coalesce(max(version), 0) + 1, ${algorithm}, ${JSON.stringify(authData)}::jsonb
    FROM e2e_room_keys_versions WHERE user_id = ${userId}
    RETURNING version`.execute(tx);
  return num(res.rows[0]?.version);
}

/** A version that is not deleted: the given one, or the newest (the current one) when none is given. */
export async function getBackupVersion(db: Db, userId: string, version?: number): Promise<BackupVersionRow | undefined> {
  let q = db.selectFrom('e2e_room_keys_versions').select(['version', 'algorithm', 'auth_data', 'etag']).where('user_id', '=', userId).where('deleted', '=', false);
  q = version === undefined ? q.orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
  const row = await q.executeTakeFirst();
  return row && { ...row, version: num(row.version), etag: num(row.etag) };
}

/** Replaces a version's auth_data. */
export async function updateBackupAuthData(tx: Tx, userId: string, version: number, authData: Record<string, unknown>): Promise<void> {
  await tx
    .updateTable('e2e_room_keys_versions')
    .set({ auth_data: sql<Record<string, unknown>>`${JSON.stringify(authData)}::jsonb` })
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .execute();
}

/** Marks a version deleted (its number stays taken) and deletes its keys; false when the user never had it. */
export async function deleteBackupVersion(tx: Tx, userId: string, version: number): Promise<boolean> {
  const r = await tx.updateTable('e2e_room_keys_versions').set({ deleted: true }).where('user_id', '=', userId).where('version', '=', version).executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  await tx.deleteFrom('e2e_room_keys').where('user_id', '=', userId).where('version', '=', version).execute();
  return true;
}

/** Adds one to a version's etag (its keys changed); returns the new etag. */
export async function bumpBackupEtag(tx: Tx, userId: string, version: number): Promise<number> {
  const row = await tx
    .updateTable('e2e_room_keys_versions')
    .set((eb) => ({ etag: eb('etag', '+', 1) }))
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .returning('etag')
    .executeTakeFirstOrThrow();
  return num(row.etag);
}

/** How many keys a version holds. */
export async function countBackupKeys(db: Db, userId: string, version: number): Promise<number> {
  const row = await db
    .selectFrom('e2e_room_keys')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('user_id', '=', userId)
    .where('version', '=', version)
    .executeTakeFirst();
  return num(row?.n ?? 0);
}

/**
 * Stores keys in a version, keeping for each session the better of the
 * stored key and the new one (the spec's rule: a verified key beats an
 * unverified one, then the lower first_message_index, then the lower
 * forwarded_count; on a tie the stored key stays). Each (room, session)
 * may appear once. Returns how many keys were written (new or replaced).
 */
export async function upsertBackupKeys(tx: Tx, userId: string, version: number, keys: readonly BackedUpKey[]): Promise<number> {
  let changed = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const res = await sql<{ session_id: string }>`
      INSERT INTO e2e_room_keys AS k (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
      SELECT ${userId}, ${version}::bigint, n.room_id, n.session_id, n.first_message_index, n.forwarded_count, n.is_verified, n.session_data::jsonb
      FROM unnest(
        ${textArray(chunk.map((k) => k.room_id))}, ${textArray(chunk.map((k) => k.session_id))},
        ${intArray(chunk.map((k) => k.first_message_index))}, ${intArray(chunk.map((k) => k.forwarded_count))},
        ${boolArray(chunk.map((k) => k.is_verified))}, ${textArray(chunk.map((k) => JSON.stringify(k.session_data)))}
      ) AS n(room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
      ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
        first_message_index = excluded.first_message_index,
        forwarded_count = excluded.forwarded_count,
        is_verified = excluded.is_verified,
        session_data = excluded.session_data
      WHERE (NOT excluded.is_verified, excluded.first_message_index, excluded.forwarded_count)
          < (NOT k.is_verified, k.first_message_index, k.forwarded_count)
      RETURNING k.session_id`.execute(tx);
    changed += res.rows.length;
  }
  return changed;
}

/** A version's keys: all, one room's, or one session's. */
export async function getBackupKeys(db: Db, userId: string, version: number, roomId?: string, sessionId?: string): Promise<BackedUpKey[]> {
  let q = db
    .selectFrom('e2e_room_keys')
    .select(['room_id', 'session_id', 'first_message_index', 'forwarded_count', 'is_verified', 'session_data'])
    .where('user_id', '=', userId)
    .where('version', '=', version);
  if (roomId !== undefined) q = q.where('room_id', '=', roomId);
  if (sessionId !== undefined) q = q.where('session_id', '=', sessionId);
  const rows = await q.orderBy('room_id').orderBy('session_id').execute();
  return rows.map((r) => ({ ...r, first_message_index: num(r.first_message_index), forwarded_count: num(r.forwarded_count) }));
}

/** Deletes a version's keys: all, one room's, or one session's; returns how many went. */
export async function deleteBackupKeys(tx: Tx, userId: string, version: number, roomId?: string, sessionId?: string): Promise<number> {
  let q = tx.deleteFrom('e2e_room_keys').where('user_id', '=', userId).where('version', '=', version);
  if (roomId !== undefined) q = q.where('room_id', '=', roomId);
  if (sessionId !== undefined) q = q.where('session_id', '=', sessionId);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows);
}

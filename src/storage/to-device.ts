/**
 * Queries on to-device messages: the per-device inbox (`device_inbox`, in
 * the to-device stream's order) and the transaction ids of /sendToDevice
 * requests already done (`to_device_txns`). See migration 0010.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';

const num = (v: unknown): number => Number(v);

function textArray(values: readonly string[]) {
  return sql`${sql.val([...values])}::text[]`;
}

/**
 * Records a /sendToDevice transaction id for (user, device); false when it
 * was already there (a retry). Run first in the sending transaction: a
 * concurrent retry waits on the row and then finds it.
 */
export async function claimToDeviceTxn(tx: Tx, userId: string, deviceId: string, txnId: string, now: number): Promise<boolean> {
  const row = await tx
    .insertInto('to_device_txns')
    .values({ user_id: userId, device_id: deviceId, txn_id: txnId, ts: now })
    .onConflict((oc) => oc.columns(['user_id', 'device_id', 'txn_id']).doNothing())
    .returning('txn_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * The (user, device) pairs that exist among those asked for: every visible
 * device of the `all` users, and the `pairs` that name a visible device.
 * The rows are share-locked, so a device deleted at the same time either
 * waits for the caller to commit (and then deletes its messages) or is not
 * returned.
 */
export async function existingDevices(tx: Tx, all: readonly string[], pairs: readonly { userId: string; deviceId: string }[]): Promise<{ user_id: string; device_id: string }[]> {
  if (all.length === 0 && pairs.length === 0) return [];
  const res = await sql<{ user_id: string; device_id: string }>`
    SELECT d.user_id, d.device_id FROM devices d
    WHERE NOT d.hidden AND (
      d.user_id = ANY(${textArray(all)})
      OR (d.user_id, d.device_id) IN (
        SELECT * FROM unnest(${textArray(pairs.map((p) => p.userId))}, ${textArray(pairs.map((p) => p.deviceId))})
      )
    )
    ORDER BY d.user_id, d.device_id
    FOR SHARE OF d`.execute(tx);
  return res.rows;
}

/** Queues messages (JSON text each) for devices, each at a new position on the to-device stream. */
export async function insertInboxMessages(tx: Tx, rows: readonly { userId: string; deviceId: string; json: string }[], now: number): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    await sql`
      INSERT INTO device_inbox (user_id, device_id, message_json, ts)
      SELECT m.user_id, m.device_id, m.message::jsonb, ${now}::bigint
      FROM unnest(${textArray(chunk.map((r) => r.userId))}, ${textArray(chunk.map((r) => r.deviceId))}, ${textArray(chunk.map((r) => r.json))})
        WITH ORDINALITY AS m(user_id, device_id, message, n)
      ORDER BY m.n`.execute(tx);
  }
}

export interface InboxMessage {
  stream_id: number;
  message: Record<string, unknown>;
}

/** Up to `limit` messages for one device with a position in (after, upto], oldest first. */
export async function inboxMessages(db: Db, userId: string, deviceId: string, after: number, upto: number, limit: number): Promise<InboxMessage[]> {
  if (upto <= after || limit <= 0) return [];
  const rows = await db
    .selectFrom('device_inbox')
    .select(['stream_id', 'message_json'])
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('stream_id', '>', after)
    .where('stream_id', '<=', upto)
    .orderBy('stream_id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ stream_id: num(r.stream_id), message: r.message_json }));
}

/** Deletes one device's messages up to position `upto` (acknowledged by a sync from a token past them). */
export async function deleteInboxUpTo(db: Db, userId: string, deviceId: string, upto: number): Promise<number> {
  const r = await db.deleteFrom('device_inbox').where('user_id', '=', userId).where('device_id', '=', deviceId).where('stream_id', '<=', upto).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Removes what devices leave behind in the to-device tables: their pending messages and their transaction ids. */
export async function deleteToDeviceForDevices(db: Db, userId: string, deviceIds: readonly string[]): Promise<void> {
  if (deviceIds.length === 0) return;
  await sql`DELETE FROM device_inbox WHERE user_id = ${userId} AND device_id = ANY(${textArray(deviceIds)})`.execute(db);
  await sql`DELETE FROM to_device_txns WHERE user_id = ${userId} AND device_id = ANY(${textArray(deviceIds)})`.execute(db);
}

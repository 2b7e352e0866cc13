/**
 * Queries on end-to-end keys (migration 0010): each device's identity keys,
 * its one-time and fallback keys, users' cross-signing keys and the
 * signatures made over keys with them. The server only stores and hands
 * out public keys; services/e2ee/keys.ts checks what comes in.
 */
import { sql, type RawBuilder } from 'kysely';
import { textArray } from './sql-arrays.js';
import type { Db, Tx } from './db.js';

type Json = Record<string, unknown>;

const num = (v: unknown): number => Number(v);

function jsonb(value: unknown): RawBuilder<Json> {
  return sql<Json>`${JSON.stringify(value)}::jsonb`;
}

// ------------------------------------------------------------ device keys

export async function getDeviceKeys(db: Db, userId: string, deviceId: string): Promise<Json | undefined> {
  const row = await db.selectFrom('e2e_device_keys').select('key_json').where('user_id', '=', userId).where('device_id', '=', deviceId).executeTakeFirst();
  return row?.key_json;
}

/** Stores (or replaces) a device's identity keys. */
export async function putDeviceKeys(db: Db, userId: string, deviceId: string, keys: Json, ts: number): Promise<void> {
  await db
    .insertInto('e2e_device_keys')
    .values({ user_id: userId, device_id: deviceId, key_json: jsonb(keys), ts })
    .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet((eb) => ({ key_json: eb.ref('excluded.key_json'), ts: eb.ref('excluded.ts') })))
    .execute();
}

export interface DeviceKeysRow {
  user_id: string;
  device_id: string;
  key_json: Json;
  display_name: string | null;
}

/**
 * The identity keys of existing (visible) devices: every device of the
 * `all` users, and the `pairs` that name one. Devices without keys are left out;
 * `all` and `pairs` name different users (no row comes twice).
 */
export async function deviceKeysOf(db: Db, all: readonly string[], pairs: readonly { userId: string; deviceId: string }[]): Promise<DeviceKeysRow[]> {
  if (all.length === 0 && pairs.length === 0) return [];
  // Two index probes rather than one OR, which no index serves.
  const res = await sql<DeviceKeysRow>`
    SELECT k.user_id, k.device_id, k.key_json, d.display_name
    FROM e2e_device_keys k
    JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id AND NOT d.hidden
    WHERE k.user_id = ANY(${textArray(all)})
    UNION ALL
    SELECT k.user_id, k.device_id, k.key_json, d.display_name
    FROM unnest(${textArray(pairs.map((p) => p.userId))}, ${textArray(pairs.map((p) => p.deviceId))}) AS w(user_id, device_id)
    JOIN e2e_device_keys k ON k.user_id = w.user_id AND k.device_id = w.device_id
    JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id AND NOT d.hidden
    ORDER BY user_id, device_id`.execute(db);
  return res.rows;
}

// ------------------------------------------------------- one-time keys

export interface NewKey {
  algorithm: string;
  keyId: string;
  key: unknown;
}

/**
 * Adds one-time keys to a device. Keys whose (algorithm, key id) is
 * already stored are not written: their stored content is returned, for
 * the caller to compare.
 */
export async function insertOneTimeKeys(db: Db, userId: string, deviceId: string, keys: readonly NewKey[], ts: number): Promise<Map<string, unknown>> {
  const clashes = new Map<string, unknown>();
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    const res = await sql<{ algorithm: string; key_id: string }>`
      INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, ts)
      SELECT ${userId}, ${deviceId}, k.algorithm, k.key_id, k.key_json::jsonb, ${ts}::bigint
      FROM unnest(${textArray(chunk.map((k) => k.algorithm))}, ${textArray(chunk.map((k) => k.keyId))}, ${textArray(chunk.map((k) => JSON.stringify(k.key)))})
        AS k(algorithm, key_id, key_json)
      ON CONFLICT (user_id, device_id, algorithm, key_id) DO NOTHING
      RETURNING algorithm, key_id`.execute(db);
    if (res.rows.length === chunk.length) continue;
    const written = new Set(res.rows.map((r) => `${r.algorithm}:${r.key_id}`));
    const missing = chunk.filter((k) => !written.has(`${k.algorithm}:${k.keyId}`));
    const stored = await sql<{ algorithm: string; key_id: string; key_json: unknown }>`
      SELECT o.algorithm, o.key_id, o.key_json FROM e2e_one_time_keys o
      JOIN unnest(${textArray(missing.map((k) => k.algorithm))}, ${textArray(missing.map((k) => k.keyId))}) AS m(algorithm, key_id)
        ON o.algorithm = m.algorithm AND o.key_id = m.key_id
      WHERE o.user_id = ${userId} AND o.device_id = ${deviceId}`.execute(db);
    for (const r of stored.rows) clashes.set(`${r.algorithm}:${r.key_id}`, r.key_json);
  }
  return clashes;
}

/** Unclaimed one-time keys of a device, per algorithm. */
export async function oneTimeKeyCounts(db: Db, userId: string, deviceId: string): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('e2e_one_time_keys')
    .select(['algorithm', (eb) => eb.fn.countAll().as('n')])
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .groupBy('algorithm')
    .execute();
  const out: Record<string, number> = {};
  for (const r of rows) out[r.algorithm] = num(r.n);
  return out;
}

/** What /sync tells a device about its keys: unclaimed one-time keys per algorithm, algorithms of unused fallback keys. */
export async function deviceKeyStatus(db: Db, userId: string, deviceId: string): Promise<{ counts: Record<string, number>; unusedFallback: string[] }> {
  const res = await sql<{ kind: string; algorithm: string; n: number }>`
    SELECT 'otk' AS kind, algorithm, count(*) AS n FROM e2e_one_time_keys WHERE user_id = ${userId} AND device_id = ${deviceId} GROUP BY algorithm
    UNION ALL
    SELECT 'fallback' AS kind, algorithm, 0 AS n FROM e2e_fallback_keys WHERE user_id = ${userId} AND device_id = ${deviceId} AND NOT used`.execute(db);
  const counts: Record<string, number> = {};
  const unusedFallback: string[] = [];
  for (const r of res.rows) {
    if (r.kind === 'otk') counts[r.algorithm] = num(r.n);
    else unusedFallback.push(r.algorithm);
  }
  unusedFallback.sort();
  return { counts, unusedFallback };
}

export interface ClaimWanted {
  userId: string;
  deviceId: string;
  algorithm: string;
}

export interface ClaimedKey {
  user_id: string;
  device_id: string;
  algorithm: string;
  key_id: string;
  key_json: unknown;
}

/**
 * Takes one one-time key for each (user, device, algorithm), oldest upload
 * first, deleting it in the same statement. Rows another transaction is
 * claiming right now are skipped (FOR UPDATE SKIP LOCKED), so concurrent
 * claims each get a different key, and none waits for another.
 */
export async function claimOneTimeKeys(tx: Db, wanted: readonly ClaimWanted[]): Promise<ClaimedKey[]> {
  if (wanted.length === 0) return [];
  const res = await sql<ClaimedKey>`
    WITH picked AS (
      SELECT k.user_id, k.device_id, k.algorithm, k.key_id
      FROM unnest(${textArray(wanted.map((w) => w.userId))}, ${textArray(wanted.map((w) => w.deviceId))}, ${textArray(wanted.map((w) => w.algorithm))})
        AS w(user_id, device_id, algorithm)
      CROSS JOIN LATERAL (
        SELECT o.user_id, o.device_id, o.algorithm, o.key_id FROM e2e_one_time_keys o
        WHERE o.user_id = w.user_id AND o.device_id = w.device_id AND o.algorithm = w.algorithm
        ORDER BY o.ts, o.key_id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
      ) k
    )
    DELETE FROM e2e_one_time_keys o USING picked p
    WHERE o.user_id = p.user_id AND o.device_id = p.device_id AND o.algorithm = p.algorithm AND o.key_id = p.key_id
    RETURNING o.user_id, o.device_id, o.algorithm, o.key_id, o.key_json`.execute(tx);
  return res.rows;
}

/** Hands out the fallback key of each (user, device, algorithm) that has one, marking it used (it stays). */
export async function claimFallbackKeys(tx: Db, wanted: readonly ClaimWanted[]): Promise<ClaimedKey[]> {
  if (wanted.length === 0) return [];
  const res = await sql<ClaimedKey>`
    UPDATE e2e_fallback_keys f SET used = true
    FROM unnest(${textArray(wanted.map((w) => w.userId))}, ${textArray(wanted.map((w) => w.deviceId))}, ${textArray(wanted.map((w) => w.algorithm))})
      AS w(user_id, device_id, algorithm)
    WHERE f.user_id = w.user_id AND f.device_id = w.device_id AND f.algorithm = w.algorithm
    RETURNING f.user_id, f.device_id, f.algorithm, f.key_id, f.key_json`.execute(tx);
  return res.rows;
}

// ---------------------------------------------------------- fallback keys

/**
 * Sets a device's fallback key for an algorithm, replacing the one before.
 * A new key starts unused; uploading the very same key again keeps its
 * `used` flag, as Synapse does.
 */
export async function putFallbackKey(db: Db, userId: string, deviceId: string, key: NewKey): Promise<void> {
  await sql`
    INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)
    VALUES (${userId}, ${deviceId}, ${key.algorithm}, ${key.keyId}, ${JSON.stringify(key.key)}::jsonb, false)
    ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET
      used = (e2e_fallback_keys.key_id = excluded.key_id AND e2e_fallback_keys.key_json = excluded.key_json AND e2e_fallback_keys.used),
      key_id = excluded.key_id,
      key_json = excluded.key_json`.execute(db);
}

// ---------------------------------------------------------- removal

/**
 * Removes what devices leave behind in the key tables: identity keys,
 * one-time and fallback keys, and cross-signing signatures made over them.
 */
export async function deleteKeysOfDevices(db: Db, userId: string, deviceIds: readonly string[]): Promise<void> {
  if (deviceIds.length === 0) return;
  const ids = textArray(deviceIds);
  await sql`DELETE FROM e2e_device_keys WHERE user_id = ${userId} AND device_id = ANY(${ids})`.execute(db);
  await sql`DELETE FROM e2e_one_time_keys WHERE user_id = ${userId} AND device_id = ANY(${ids})`.execute(db);
  await sql`DELETE FROM e2e_fallback_keys WHERE user_id = ${userId} AND device_id = ANY(${ids})`.execute(db);
  await sql`DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ${userId} AND target_device_id = ANY(${ids})`.execute(db);
}

// ---------------------------------------------------------- cross-signing

export type CrossSigningType = 'master' | 'self_signing' | 'user_signing';

export interface CrossSigningRow {
  user_id: string;
  key_type: CrossSigningType;
  key_json: Json;
}

/** The users' current cross-signing keys (of the given types). */
export async function crossSigningKeysOf(db: Db, userIds: readonly string[], types: readonly CrossSigningType[]): Promise<CrossSigningRow[]> {
  if (userIds.length === 0 || types.length === 0) return [];
  const res = await sql<CrossSigningRow>`
    SELECT user_id, key_type, key_json FROM e2e_cross_signing_keys
    WHERE user_id = ANY(${textArray(userIds)}) AND key_type = ANY(${textArray(types)})`.execute(db);
  return res.rows;
}

/** The ids of all the user's devices, hidden ones included (cross-signing public keys must differ from them). */
export async function deviceIdsOf(db: Db, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('devices').select('device_id').where('user_id', '=', userId).execute();
  return rows.map((r) => r.device_id);
}

/** Serialises cross-signing uploads of one user until the transaction ends (a transaction-scoped advisory lock). */
export async function lockCrossSigning(tx: Tx, userId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`cross-signing:${userId}`}, 0))`.execute(tx);
}

/** Sets a user's key of one type, with the device-list stream position it changed at. */
export async function putCrossSigningKey(db: Db, userId: string, type: CrossSigningType, key: Json, streamId: number): Promise<void> {
  await db
    .insertInto('e2e_cross_signing_keys')
    .values({ user_id: userId, key_type: type, key_json: jsonb(key), stream_id: streamId })
    .onConflict((oc) => oc.columns(['user_id', 'key_type']).doUpdateSet((eb) => ({ key_json: eb.ref('excluded.key_json'), stream_id: eb.ref('excluded.stream_id') })))
    .execute();
}

export interface SignatureRow {
  /** Who signed, and with which key (`ed25519:<public key or device id>`). */
  user_id: string;
  key_id: string;
  /** What was signed: a device (by id) or a cross-signing key (by public key) of this user. */
  target_user_id: string;
  target_device_id: string;
  signature: string;
}

export async function putSignatures(db: Db, rows: readonly SignatureRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('e2e_cross_signing_signatures')
    .values(rows.map((r) => ({ ...r })))
    .onConflict((oc) => oc.columns(['target_user_id', 'target_device_id', 'user_id', 'key_id']).doUpdateSet((eb) => ({ signature: eb.ref('excluded.signature') })))
    .execute();
}

/**
 * Signatures over these targets that `viewer` may see: those made by the
 * target's owner (their devices and cross-signing keys), and the viewer's own.
 */
export async function signaturesOver(db: Db, targets: readonly { userId: string; deviceId: string }[], viewer: string | null): Promise<SignatureRow[]> {
  if (targets.length === 0) return [];
  const res = await sql<SignatureRow>`
    SELECT s.user_id, s.key_id, s.target_user_id, s.target_device_id, s.signature
    FROM unnest(${textArray(targets.map((t) => t.userId))}, ${textArray(targets.map((t) => t.deviceId))}) AS t(user_id, device_id)
    JOIN e2e_cross_signing_signatures s ON s.target_user_id = t.user_id AND s.target_device_id = t.device_id
    WHERE s.user_id = s.target_user_id OR s.user_id = ${viewer}`.execute(db);
  return res.rows;
}

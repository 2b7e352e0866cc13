/**
 * The cache of other servers' users' device lists (migration 0025): who we
 * hold a list for and at which position of their server's stream, their
 * devices, their master and self-signing keys; and the membership lookups
 * that say whether a remote user still shares a room with one of our users.
 */
import { sql, type RawBuilder } from 'kysely';
import { textArray } from './sql-arrays.js';
import type { Db, Tx } from './db.js';

type Json = Record<string, unknown>;

const num = (v: unknown): number => Number(v);

function jsonb(value: unknown): RawBuilder<Json> {
  return sql<Json>`${JSON.stringify(value)}::jsonb`;
}

export interface CachedRemoteUser {
  user_id: string;
  stream_id: number;
  stale: boolean;
}

export interface CachedRemoteDevice {
  user_id: string;
  device_id: string;
  display_name: string | null;
  keys: Json | null;
}

export interface CachedCrossSigningKey {
  user_id: string;
  key_type: 'master' | 'self_signing';
  key_json: Json;
}

/** The cached users among `userIds`, with their position and staleness. */
export async function cachedRemoteUsers(db: Db, userIds: readonly string[]): Promise<Map<string, CachedRemoteUser>> {
  const out = new Map<string, CachedRemoteUser>();
  if (userIds.length === 0) return out;
  const rows = await db
    .selectFrom('remote_device_users')
    .select(['user_id', 'stream_id', 'stale'])
    .where('user_id', 'in', [...userIds])
    .execute();
  for (const r of rows) out.set(r.user_id, { user_id: r.user_id, stream_id: num(r.stream_id), stale: r.stale });
  return out;
}

/** One cached user, its row locked until the transaction ends (an update reads the position it then moves). */
export async function lockCachedRemoteUser(tx: Tx, userId: string): Promise<CachedRemoteUser | undefined> {
  const r = await tx.selectFrom('remote_device_users').select(['user_id', 'stream_id', 'stale']).where('user_id', '=', userId).forUpdate().executeTakeFirst();
  return r ? { user_id: r.user_id, stream_id: num(r.stream_id), stale: r.stale } : undefined;
}

/** The cached devices and cross-signing keys of these users. */
export async function cachedRemoteKeys(db: Db, userIds: readonly string[]): Promise<{ devices: CachedRemoteDevice[]; crossSigning: CachedCrossSigningKey[] }> {
  if (userIds.length === 0) return { devices: [], crossSigning: [] };
  const ids = [...userIds];
  const [devices, crossSigning] = await Promise.all([
    db.selectFrom('remote_devices').select(['user_id', 'device_id', 'display_name', 'keys']).where('user_id', 'in', ids).orderBy('user_id').orderBy('device_id').execute(),
    db.selectFrom('remote_cross_signing_keys').select(['user_id', 'key_type', 'key_json']).where('user_id', 'in', ids).execute(),
  ]);
  return { devices, crossSigning: crossSigning as CachedCrossSigningKey[] };
}

export interface RemoteDeviceList {
  userId: string;
  streamId: number;
  devices: readonly { deviceId: string; displayName: string | null; keys: Json | null }[];
  masterKey?: Json;
  selfSigningKey?: Json;
}

/** Replaces what is cached for a user with a whole list (from their server's /user/devices); the user is no longer stale. */
export async function replaceRemoteDeviceList(tx: Tx, list: RemoteDeviceList, ts: number): Promise<void> {
  await tx
    .insertInto('remote_device_users')
    .values({ user_id: list.userId, stream_id: list.streamId, stale: false, updated_ts: ts })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ stream_id: list.streamId, stale: false, updated_ts: ts }))
    .execute();
  await tx.deleteFrom('remote_devices').where('user_id', '=', list.userId).execute();
  await tx.deleteFrom('remote_cross_signing_keys').where('user_id', '=', list.userId).execute();
  if (list.devices.length > 0) {
    await tx
      .insertInto('remote_devices')
      .values(list.devices.map((d) => ({ user_id: list.userId, device_id: d.deviceId, display_name: d.displayName, keys: d.keys === null ? null : jsonb(d.keys) })))
      .execute();
  }
  for (const [keyType, key] of [
    ['master', list.masterKey],
    ['self_signing', list.selfSigningKey],
  ] as const) {
    if (key !== undefined) await putRemoteCrossSigningKey(tx, list.userId, keyType, key);
  }
}

/** Stores (or replaces) one cached device. */
export async function putRemoteDevice(tx: Tx, userId: string, deviceId: string, displayName: string | null, keys: Json | null): Promise<void> {
  await tx
    .insertInto('remote_devices')
    .values({ user_id: userId, device_id: deviceId, display_name: displayName, keys: keys === null ? null : jsonb(keys) })
    .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet((eb) => ({ display_name: eb.ref('excluded.display_name'), keys: eb.ref('excluded.keys') })))
    .execute();
}

export async function deleteRemoteDevice(tx: Tx, userId: string, deviceId: string): Promise<void> {
  await tx.deleteFrom('remote_devices').where('user_id', '=', userId).where('device_id', '=', deviceId).execute();
}

/** Moves a cached user to a new position of their server's stream. */
export async function setRemoteDeviceStream(tx: Tx, userId: string, streamId: number, ts: number): Promise<void> {
  await tx.updateTable('remote_device_users').set({ stream_id: streamId, updated_ts: ts }).where('user_id', '=', userId).execute();
}

/** Marks a cached user's list as missing an update; returns whether they were cached. */
export async function markRemoteDeviceListStale(db: Db, userId: string, ts: number): Promise<boolean> {
  const res = await db.updateTable('remote_device_users').set({ stale: true, updated_ts: ts }).where('user_id', '=', userId).executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function putRemoteCrossSigningKey(tx: Tx, userId: string, keyType: 'master' | 'self_signing', key: Json): Promise<void> {
  await tx
    .insertInto('remote_cross_signing_keys')
    .values({ user_id: userId, key_type: keyType, key_json: jsonb(key) })
    .onConflict((oc) => oc.columns(['user_id', 'key_type']).doUpdateSet((eb) => ({ key_json: eb.ref('excluded.key_json') })))
    .execute();
}

/** Forgets these users' lists (their devices and keys go with them). */
export async function dropRemoteDeviceUsers(db: Db, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await db
    .deleteFrom('remote_device_users')
    .where('user_id', 'in', [...userIds])
    .execute();
}

/** Whether the user `u` (a column or value) is joined to a room where a user of `serverName` is joined. */
const sharesWithServer = (serverName: string) => sql`EXISTS (
  SELECT 1 FROM current_state theirs
  JOIN current_state ours ON ours.room_id = theirs.room_id AND ours.type = 'm.room.member' AND ours.membership = 'join'
    AND substr(ours.state_key, strpos(ours.state_key, ':') + 1) = ${serverName}
  WHERE theirs.type = 'm.room.member' AND theirs.membership = 'join' AND theirs.state_key = c.user_id)`;

/** Which of `userIds` are joined (now) to a room that a user of `serverName` is joined to. */
export async function usersSharingARoomWithServer(db: Db, userIds: readonly string[], serverName: string): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const res = await sql<{ user_id: string }>`
    SELECT c.user_id FROM unnest(${textArray([...new Set(userIds)])}) AS c(user_id)
    WHERE ${sharesWithServer(serverName)}`.execute(db);
  return new Set(res.rows.map((r) => r.user_id));
}

/**
 * Forgets the cached users among `userIds` (and, when `roomId` is given,
 * among the room's joined members) who share no room with a user of
 * `serverName` any more; returns who was dropped.
 */
export async function dropUnsharedRemoteDeviceUsers(db: Db, serverName: string, userIds: readonly string[], roomId?: string): Promise<string[]> {
  const inRoom =
    roomId === undefined ? sql`false` : sql`c.user_id IN (SELECT state_key FROM current_state WHERE room_id = ${roomId} AND type = 'm.room.member' AND membership = 'join')`;
  const res = await sql<{ user_id: string }>`
    DELETE FROM remote_device_users c
    WHERE (c.user_id = ANY(${textArray(userIds)}) OR ${inRoom}) AND NOT ${sharesWithServer(serverName)}
    RETURNING c.user_id`.execute(db);
  return res.rows.map((r) => r.user_id);
}

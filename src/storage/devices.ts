/** Queries on devices and client IPs (for whois and the devices API). */
import { recordDeviceListChange } from './device-lists.js';
import { deleteKeysOfDevices } from './e2e-keys.js';
import { deleteAllPushersOfUser, deletePushersOfDevices } from './pushers.js';
import { deleteToDeviceForDevices } from './to-device.js';
import type { Db } from './db.js';

export async function upsertDevice(db: Db, userId: string, deviceId: string, displayName: string | null): Promise<void> {
  await db
    .insertInto('devices')
    .values({ user_id: userId, device_id: deviceId, display_name: displayName, last_seen_ts: null, last_seen_ip: null, last_seen_user_agent: null })
    .onConflict((oc) =>
      oc.columns(['user_id', 'device_id']).doUpdateSet((eb) => ({
        // Logging in again with a device id keeps its name unless a new one is given.
        display_name: displayName === null ? eb.ref('devices.display_name') : eb.val(displayName),
      })),
    )
    .execute();
}

/** Records that a token was used from an address; also the device's last-seen fields. */
export async function recordClientIp(db: Db, userId: string, deviceId: string | null, ip: string, userAgent: string, ts: number): Promise<void> {
  await db
    .insertInto('user_ips')
    .values({ user_id: userId, device_id: deviceId ?? '', ip, user_agent: userAgent, last_seen: ts })
    .onConflict((oc) => oc.columns(['user_id', 'device_id', 'ip', 'user_agent']).doUpdateSet({ last_seen: ts }))
    .execute();
  if (deviceId) {
    await db
      .updateTable('devices')
      .set({ last_seen_ts: ts, last_seen_ip: ip, last_seen_user_agent: userAgent })
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .execute();
  }
}

export interface DeviceRow {
  user_id: string;
  device_id: string;
  display_name: string | null;
  last_seen_ip: string | null;
  last_seen_ts: number | null;
  last_seen_user_agent: string | null;
}

const DEVICE_COLUMNS = ['user_id', 'device_id', 'display_name', 'last_seen_ip', 'last_seen_ts', 'last_seen_user_agent'] as const;

/** Creates a device with no name; an existing one is left as it is. */
export async function ensureDevice(db: Db, userId: string, deviceId: string): Promise<void> {
  await db
    .insertInto('devices')
    .values({ user_id: userId, device_id: deviceId, display_name: null, last_seen_ts: null, last_seen_ip: null, last_seen_user_agent: null })
    .onConflict((oc) => oc.columns(['user_id', 'device_id']).doNothing())
    .execute();
}

/** A user's devices (hidden ones left out, as Synapse does), oldest first. */
export async function listDevices(db: Db, userId: string): Promise<DeviceRow[]> {
  return db.selectFrom('devices').select(DEVICE_COLUMNS).where('user_id', '=', userId).where('hidden', '=', false).orderBy('created_ts').orderBy('device_id').execute();
}

export async function getDevice(db: Db, userId: string, deviceId: string): Promise<DeviceRow | undefined> {
  return db.selectFrom('devices').select(DEVICE_COLUMNS).where('user_id', '=', userId).where('device_id', '=', deviceId).where('hidden', '=', false).executeTakeFirst();
}

/** Sets a device's display name; false when the user has no such device. */
export async function setDeviceDisplayName(db: Db, userId: string, deviceId: string, displayName: string | null): Promise<boolean> {
  const r = await db
    .updateTable('devices')
    .set({ display_name: displayName })
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('hidden', '=', false)
    .executeTakeFirst();
  const updated = Number(r.numUpdatedRows) > 0;
  // The name is part of what /keys/query shows (unsigned.device_display_name), as Synapse announces a rename.
  if (updated) await recordDeviceListChange(db, userId, [deviceId], Date.now());
  return updated;
}

/** Deletes device rows: the given ones, or all the user's (but `exceptDeviceId`). Returns the ids deleted. */
export async function deleteDeviceRows(db: Db, userId: string, opts: { deviceIds?: string[]; exceptDeviceId?: string | null } = {}): Promise<string[]> {
  let q = db.deleteFrom('devices').where('user_id', '=', userId).where('hidden', '=', false);
  if (opts.deviceIds) {
    if (opts.deviceIds.length === 0) return [];
    q = q.where('device_id', 'in', opts.deviceIds);
  }
  if (opts.exceptDeviceId) q = q.where('device_id', '!=', opts.exceptDeviceId);
  const rows = await q.returning('device_id').execute();
  const ids = rows.map((r) => r.device_id);
  // Their pending to-device messages (and to-device transaction ids) go with them.
  await deleteToDeviceForDevices(db, userId, ids);
  // So do their keys; others tracking the user learn of it from the device-list stream.
  if (ids.length > 0) {
    await deleteKeysOfDevices(db, userId, ids);
    await recordDeviceListChange(db, userId, ids, Date.now());
  }
  // And the pushers they set (as Synapse); with every device going, all the user's pushers.
  if (!opts.deviceIds && !opts.exceptDeviceId) await deleteAllPushersOfUser(db, userId);
  else await deletePushersOfDevices(db, userId, ids);
  return ids;
}

/** Queries on devices and client IPs (for whois and the devices API). */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;

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

/**
 * Which membership events each device has already been sent, for
 * lazy-loading without `include_redundant_members`: an incremental sync
 * and /messages skip a member event the device already has (same event
 * id), as the spec allows ("redundant membership events"); both record
 * what they send. One cache per process (services/index.ts). An
 * initial sync starts the device's record afresh. The record is memory only
 * and bounded (LRU on devices and on entries per device): forgetting an
 * entry only means the event is sent again, which is always correct.
 */
const MAX_DEVICES = 512;
const MAX_ENTRIES_PER_DEVICE = 2048;

/** The cache key of a user's device (a requester without a device has one record per user). */
export function lazyMemberDeviceKey(userId: string, deviceId: string | null | undefined): string {
  return `${userId}\u0000${deviceId ?? ''}`;
}

export class LazyMemberCache {
  private readonly devices = new Map<string, Map<string, string>>();

  private device(key: string): Map<string, string> {
    let d = this.devices.get(key);
    if (d) {
      this.devices.delete(key);
      this.devices.set(key, d);
      return d;
    }
    d = new Map();
    this.devices.set(key, d);
    if (this.devices.size > MAX_DEVICES) this.devices.delete(this.devices.keys().next().value as string);
    return d;
  }

  /** Starts the device's record afresh (an initial sync). */
  reset(deviceKey: string): void {
    this.devices.delete(deviceKey);
  }

  /** Whether the device was already sent this member event. */
  has(deviceKey: string, roomId: string, userId: string, eventId: string): boolean {
    return this.devices.get(deviceKey)?.get(`${roomId}\u0000${userId}`) === eventId;
  }

  /** Records that the device now has this member event. */
  remember(deviceKey: string, roomId: string, userId: string, eventId: string): void {
    const d = this.device(deviceKey);
    const k = `${roomId}\u0000${userId}`;
    d.delete(k);
    d.set(k, eventId);
    if (d.size > MAX_ENTRIES_PER_DEVICE) d.delete(d.keys().next().value as string);
  }
}

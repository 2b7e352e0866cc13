/**
 * The EDUs other servers send in their transactions, each to the service
 * that owns it:
 * - `m.typing` → TypingService (their user, joined to the room);
 * - `m.receipt` → ReceiptsService (public read receipts of their users);
 * - `m.direct_to_device` → ToDeviceService (messages for our devices, once
 *   per message id);
 * - `m.device_list_update` and `m.signing_key_update` → RemoteDeviceCache
 *   (applied to the cached list of the user, if we hold one; our users who
 *   share a room with theirs are told to query again);
 * - `m.presence` → PresenceService (when presence is on);
 * Every EDU names users of the origin only; anything else in it is skipped,
 * as are typing and receipts in rooms whose server ACL bans the origin.
 */
import { serverNameOf } from '../../core/event-format.js';
import { isJsonObject } from '../../core/json-values.js';
import type { RemoteDeviceCache } from '../e2ee/remote-device-cache.js';
import type { ToDeviceService } from '../e2ee/to-device.js';
import type { PresenceService } from '../presence.js';
import type { ReceiptsService } from '../receipts.js';
import type { TypingService } from '../typing.js';
import type { FederationTransactions } from './transactions.js';

export interface EduServices {
  /** Whether the room's server ACL lets `origin` in (typing and receipts are room-scoped). */
  allowed: (roomId: string, origin: string) => Promise<boolean>;
  typing: Pick<TypingService, 'remote'>;
  receipts: Pick<ReceiptsService, 'remote'>;
  toDevice: Pick<ToDeviceService, 'receiveFederated'>;
  remoteDevices: Pick<RemoteDeviceCache, 'deviceListUpdate' | 'signingKeyUpdate'>;
  presence: Pick<PresenceService, 'remote'>;
}

/** Presence updates taken from one EDU (a server has no reason to send more at once). */
const MAX_PRESENCE_PUSH = 1000;

export function registerEduHandlers(transactions: Pick<FederationTransactions, 'onEdu'>, s: EduServices): void {
  transactions.onEdu('m.typing', async (origin, c) => {
    if (typeof c['room_id'] !== 'string' || typeof c['user_id'] !== 'string') return;
    if (!(await s.allowed(c['room_id'], origin))) return;
    await s.typing.remote(origin, c['room_id'], c['user_id'], c['typing'] === true);
  });
  transactions.onEdu('m.receipt', async (origin, c) => {
    const allowed: Record<string, unknown> = {};
    for (const roomId of Object.keys(c)) if (await s.allowed(roomId, origin)) allowed[roomId] = c[roomId];
    await s.receipts.remote(origin, allowed);
  });
  transactions.onEdu('m.direct_to_device', (origin, c) => s.toDevice.receiveFederated(origin, c));
  transactions.onEdu('m.device_list_update', async (origin, c) => {
    const userId = c['user_id'];
    if (typeof userId !== 'string' || serverNameOf(userId) !== origin) return;
    await s.remoteDevices.deviceListUpdate(userId, c);
  });
  transactions.onEdu('m.signing_key_update', async (origin, c) => {
    const userId = c['user_id'];
    if (typeof userId !== 'string' || serverNameOf(userId) !== origin) return;
    await s.remoteDevices.signingKeyUpdate(userId, c);
  });
  transactions.onEdu('m.presence', async (origin, c) => {
    const push = Array.isArray(c['push']) ? c['push'] : [];
    for (const p of push.slice(0, MAX_PRESENCE_PUSH)) if (isJsonObject(p)) await s.presence.remote(origin, p);
  });
}

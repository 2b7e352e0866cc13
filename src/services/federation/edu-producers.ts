/**
 * What our users do that the other servers of their rooms must hear of,
 * queued as EDUs with the federation sender:
 * - typing (`m.typing`, keyed per room and user, so only the newest waits);
 * - public read receipts (`m.receipt`, keyed per room, user and thread);
 * - device and cross-signing key changes (`m.device_list_update` with the
 *   device's keys and their owner's signatures, or `deleted`, and `prev_id`
 *   the user's previous change so a receiver holding the list there can
 *   apply it; `m.signing_key_update` with the master and self-signing keys
 *   when the change was to those), to every server sharing a room with the
 *   user.
 * - presence changes (`m.presence`, keyed per user) to every server sharing
 *   a room with the user.
 * To-device messages are queued by ToDeviceService itself (`sendRemote`).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { serverNameOf } from '../../core/event-format.js';
import { latestDeviceListRow } from '../../storage/device-lists.js';
import { crossSigningKeysOf, getDeviceKeys, signaturesOver } from '../../storage/e2e-keys.js';
import { serversSharingRoomWith } from '../../storage/memberships.js';
import type { Schema } from '../../storage/schema.js';
import type { DeviceListsService } from '../e2ee/device-lists.js';
import { crossSigningPublicKey, withSignatures } from '../e2ee/keys.js';
import type { PresenceService } from '../presence.js';
import type { ReceiptsService } from '../receipts.js';
import type { TypingService } from '../typing.js';
import type { FederationSender } from './sender/federation-sender.js';

export interface EduProducerDeps {
  db: Kysely<Schema>;
  serverName: string;
  sender: Pick<FederationSender, 'queueEdu' | 'queueEduForRoom'>;
  typing: Pick<TypingService, 'onLocalTyping'>;
  receipts: Pick<ReceiptsService, 'onLocalReceipt'>;
  deviceLists: Pick<DeviceListsService, 'onChange'>;
  presence: Pick<PresenceService, 'onLocalChange'>;
  logger: Logger;
}

export function connectEduProducers(d: EduProducerDeps): void {
  const failed = (what: string) => (err: Error) => d.logger.warn({ err: err.message }, `could not queue ${what}`);
  d.typing.onLocalTyping((roomId, userId, typing) => {
    void d.sender.queueEduForRoom(roomId, 'm.typing', { room_id: roomId, user_id: userId, typing }, `${roomId}|${userId}`).catch(failed('a typing EDU'));
  });
  d.receipts.onLocalReceipt((roomId, userId, eventId, data) => {
    const content = { [roomId]: { 'm.read': { [userId]: { event_ids: [eventId], data } } } };
    void d.sender.queueEduForRoom(roomId, 'm.receipt', content, `${roomId}|${userId}|${String(data['thread_id'] ?? '')}`).catch(failed('a receipt EDU'));
  });
  d.presence.onLocalChange((userId, content) => {
    void (async () => {
      const servers = (await serversSharingRoomWith(d.db, userId)).filter((s) => s !== d.serverName);
      const edu = { push: [{ user_id: userId, ...content }] };
      for (const server of servers) await d.sender.queueEdu(server, 'm.presence', edu, { key: `m.presence|${userId}` });
    })().catch(failed('a presence EDU'));
  });
  d.deviceLists.onChange((userIds) => {
    for (const userId of userIds) if (serverNameOf(userId) === d.serverName) void deviceListEdus(d, userId).catch(failed('a device list EDU'));
  });
}

/** The EDU for a local user's latest device-list change, to every other server sharing a room with them. */
async function deviceListEdus(d: EduProducerDeps, userId: string): Promise<void> {
  const servers = (await serversSharingRoomWith(d.db, userId)).filter((s) => s !== d.serverName);
  if (servers.length === 0) return;
  const latest = await latestDeviceListRow(d.db, userId);
  if (!latest) return;
  const cross = await crossSigningKeysOf(d.db, [userId], ['master', 'self_signing', 'user_signing']);
  const publicKeys = new Set(cross.map((k) => crossSigningPublicKey(k.key_json)));
  let type: string;
  let content: Record<string, unknown>;
  // A change of the cross-signing keys is recorded under their public keys (or no device, for signatures over them).
  if (latest.device_id === '' || publicKeys.has(latest.device_id)) {
    type = 'm.signing_key_update';
    content = { user_id: userId };
    for (const k of cross) {
      if (k.key_type === 'master') {
        // With the signatures the user's devices made over it, as /user/keys/query shows it.
        const pub = crossSigningPublicKey(k.key_json);
        content['master_key'] = pub === undefined ? k.key_json : withSignatures(k.key_json, await signaturesOver(d.db, [{ userId, deviceId: pub }], null));
      } else if (k.key_type === 'self_signing') {
        content['self_signing_key'] = k.key_json;
      }
    }
  } else {
    const stored = await getDeviceKeys(d.db, userId, latest.device_id);
    // With the self-signing key's signature over the device, as /user/devices shows it, so a receiver can apply it as is.
    const keys = stored === undefined ? undefined : withSignatures(stored, await signaturesOver(d.db, [{ userId, deviceId: latest.device_id }], null));
    type = 'm.device_list_update';
    content = {
      user_id: userId,
      device_id: latest.device_id,
      stream_id: latest.stream_id,
      prev_id: latest.prev_stream_id === undefined ? [] : [latest.prev_stream_id],
      deleted: keys === undefined,
      ...(keys !== undefined && { keys }),
    };
  }
  for (const server of servers) await d.sender.queueEdu(server, type, content, { key: `${type}|${userId}` });
}

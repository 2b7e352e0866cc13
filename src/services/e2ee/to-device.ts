/**
 * Send-to-device messaging: messages for devices of local users, queued in
 * each device's inbox and handed out by /sync exactly once.
 *
 * - Sending (PUT /sendToDevice): `messages` maps user → device id (or `*`,
 *   every visible device of the user) → content. Each device gets
 *   `{type, sender, content}` at a new position on the to-device stream.
 *   Unknown users and devices are skipped silently, as Synapse does; with
 *   `*` the user's other entries are ignored (one message per device per
 *   request). Users on other servers are skipped too until federation
 *   exists. The transaction id is recorded in the same transaction as the
 *   inbox rows, so a retry (same user, device and txn id) delivers nothing
 *   again. `m.room_key_request` messages to other users count against
 *   rc_key_requests per sending device; over it they are dropped silently
 *   for that user, as Synapse does.
 * - Receiving (/sync): up to 100 messages per response, oldest first, with
 *   a position in (since, upto]; when more remain, next_batch stops at the
 *   last one handed out. A sync from a token acknowledges (deletes) the
 *   device's messages up to that token's position, so a client that
 *   retries with an older token gets the unacknowledged ones again.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { RateLimitConfig } from '../../config/types.js';
import { isValidUserId } from '../../core/auth/ids.js';
import { MatrixError } from '../../matrix-error.js';
import type { Tx } from '../../storage/db.js';
import type { Schema } from '../../storage/schema.js';
import { serverNameOf } from '../../core/event-format.js';
import { claimToDeviceTxn, deleteInboxUpTo, existingDevices, inboxMessages, insertInboxMessages } from '../../storage/to-device.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import type { RateLimiter } from '../rate-limit.js';
import { containsNul, isJsonObject } from '../../core/json-values.js';
import { withSubsystemLogger } from '../../logger.js';

type Json = Record<string, unknown>;

/** Messages handed out per /sync response (the spec's recommendation, and Synapse's limit). */
export const TO_DEVICE_SYNC_LIMIT = 100;
/** The most message bytes one request may queue (fan-out with `*` multiplies the body). */
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Event types are bounded like those of room events. */
const MAX_TYPE_BYTES = 255;

/** What a /sendToDevice body asks for: per user, either every device or named ones. */
export interface ToDeviceRequest {
  eventType: string;
  /** user → `*` content, or device id → content. */
  messages: Map<string, { all: Json } | { devices: Map<string, Json> }>;
}

/**
 * Checks the path parameters and body of a /sendToDevice request (400 on
 * anything malformed); the route's schema has made sure `messages` is an
 * object.
 */
export function parseSendToDevice(eventType: string, txnId: string, body: Json): ToDeviceRequest {
  if (eventType === '') throw new MatrixError(400, 'M_INVALID_PARAM', 'Event type may not be empty');
  if (Buffer.byteLength(eventType) > MAX_TYPE_BYTES) throw new MatrixError(400, 'M_INVALID_PARAM', `Event type may not be longer than ${MAX_TYPE_BYTES} bytes`);
  if (eventType.includes('\u0000') || txnId.includes('\u0000')) throw new MatrixError(400, 'M_INVALID_PARAM', 'Path parameters may not contain U+0000');
  const raw = body['messages'] as Json;
  if (containsNul(raw)) throw new MatrixError(400, 'M_BAD_JSON', 'messages may not contain U+0000');
  const messages: ToDeviceRequest['messages'] = new Map();
  for (const [userId, byDevice] of Object.entries(raw)) {
    if (!isValidUserId(userId) || Buffer.byteLength(userId) > 255) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid user ID: ${userId.slice(0, 300)}`);
    if (!isJsonObject(byDevice)) throw new MatrixError(400, 'M_BAD_JSON', `messages for ${userId} must be an object`);
    const devices = new Map<string, Json>();
    for (const [deviceId, content] of Object.entries(byDevice)) {
      if (!isJsonObject(content)) throw new MatrixError(400, 'M_BAD_JSON', `The message for ${userId} ${deviceId.slice(0, 300)} must be an object`);
      devices.set(deviceId, content);
    }
    const all = devices.get('*');
    messages.set(userId, all ? { all } : { devices });
  }
  return { eventType, messages };
}

export interface ToDeviceServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  /** Whether a user id belongs to this server. */
  isMine(userId: string): boolean;
  logger: Logger;
  /** rc_key_requests: room key requests to other users, per sending device. */
  keyRequests?: { limiter: RateLimiter; cfg: RateLimitConfig };
  /** Queues an `m.direct_to_device` EDU for another server (the federation sender); without it, remote users are skipped. */
  sendRemote?: (destination: string, content: Record<string, unknown>) => Promise<void>;
}

export class ToDeviceService {
  constructor(private readonly d: ToDeviceServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.e2ee');
  }

  /**
   * Queues the messages of one /sendToDevice request, unless this
   * (user, device, txn id) was done before; wakes the recipients' syncs.
   * Returns how many devices got a message (0 for a retry).
   */
  async send(requester: Requester, txnId: string, req: ToDeviceRequest, now = Date.now()): Promise<number> {
    const sender = requester.userId;
    const all: string[] = [];
    const pairs: { userId: string; deviceId: string }[] = [];
    let remote = 0;
    for (const [userId, m] of req.messages) {
      if (!this.d.isMine(userId)) {
        remote++;
        continue;
      }
      if (!this.keyRequestAllowed(requester, req.eventType, userId)) {
        // Synapse drops these silently (the request still succeeds).
        this.d.logger.info({ sender, user_id: userId }, 'dropping room_key_request due to rate limit');
        continue;
      }
      if ('all' in m) all.push(userId);
      else for (const deviceId of m.devices.keys()) pairs.push({ userId, deviceId });
    }
    if (remote > 0) await this.sendToServers(requester, txnId, req);

    const recipients = await this.d.db.transaction().execute(async (tx) => {
      if (!(await claimToDeviceTxn(tx, sender, requester.deviceId ?? '', txnId, now))) return [];
      return this.queue(tx, sender, req, all, pairs, now);
    });
    if (recipients.length > 0) this.d.notifier.notifyUsers(recipients);
    return recipients.length;
  }

  /**
   * The messages of a request for other servers' users: one
   * `m.direct_to_device` EDU per server, queued durably by the sender. The
   * message id is the sender's device and txn id, so a retried request is
   * the same message to the receiving server, which takes it once.
   */
  private async sendToServers(requester: Requester, txnId: string, req: ToDeviceRequest): Promise<void> {
    const send = this.d.sendRemote;
    if (!send) {
      this.d.logger.debug({ sender: requester.userId }, 'to-device messages for remote users skipped (federation sending is off)');
      return;
    }
    const byServer = new Map<string, Record<string, Record<string, Json>>>();
    for (const [userId, m] of req.messages) {
      if (this.d.isMine(userId)) continue;
      const server = serverNameOf(userId);
      if (server === undefined) continue;
      let forServer = byServer.get(server);
      if (!forServer) byServer.set(server, (forServer = {}));
      forServer[userId] = 'all' in m ? { '*': m.all } : Object.fromEntries(m.devices);
    }
    const messageId = createHash('sha256')
      .update(`${requester.userId}\u0000${requester.deviceId ?? ''}\u0000${txnId}`)
      .digest('base64url')
      .slice(0, 32);
    for (const [server, messages] of byServer) {
      await send(server, { sender: requester.userId, type: req.eventType, message_id: messageId, messages });
    }
  }

  /**
   * A message from another server's user (the `m.direct_to_device` EDU):
   * for our users' devices, once per (sender, message_id); the sender must
   * be of the origin.
   */
  async receiveFederated(origin: string, content: Record<string, unknown>, now = Date.now()): Promise<void> {
    const { sender, type, message_id: messageId, messages } = content;
    if (typeof sender !== 'string' || serverNameOf(sender) !== origin) return;
    if (typeof type !== 'string' || typeof messageId !== 'string' || !isJsonObject(messages)) return;
    const req = parseSendToDevice(type, messageId, { messages });
    const all: string[] = [];
    const pairs: { userId: string; deviceId: string }[] = [];
    for (const [userId, m] of req.messages) {
      if (!this.d.isMine(userId)) continue;
      if ('all' in m) all.push(userId);
      else for (const deviceId of m.devices.keys()) pairs.push({ userId, deviceId });
    }
    if (all.length === 0 && pairs.length === 0) return;
    const recipients = await this.d.db.transaction().execute(async (tx) => {
      if (!(await claimToDeviceTxn(tx, sender, '', `federation:${messageId}`, now))) return [];
      return this.queue(tx, sender, req, all, pairs, now);
    });
    if (recipients.length > 0) this.d.notifier.notifyUsers(recipients);
  }

  /** Queues one request's messages for the devices that exist; returns the users who got one. */
  private async queue(tx: Tx, sender: string, req: ToDeviceRequest, all: string[], pairs: { userId: string; deviceId: string }[], now: number): Promise<string[]> {
    const targets = await existingDevices(tx, all, pairs);
    const rows: { userId: string; deviceId: string; json: string }[] = [];
    const cache = new Map<string, string>();
    let bytes = 0;
    for (const t of targets) {
      const m = req.messages.get(t.user_id);
      if (!m) continue;
      const content = 'all' in m ? m.all : m.devices.get(t.device_id);
      if (!content) continue;
      const cacheKey = 'all' in m ? t.user_id : `${t.user_id}\u0000${t.device_id}`;
      let json = cache.get(cacheKey);
      if (json === undefined) {
        json = JSON.stringify({ type: req.eventType, sender, content });
        cache.set(cacheKey, json);
      }
      bytes += json.length;
      if (bytes > MAX_QUEUED_BYTES) throw new MatrixError(413, 'M_TOO_LARGE', 'Too many message bytes for these devices in one request');
      rows.push({ userId: t.user_id, deviceId: t.device_id, json });
    }
    await insertInboxMessages(tx, rows, now);
    return [...new Set(rows.map((r) => r.userId))];
  }

  /** rc_key_requests, counted per recipient user other than the sender, as Synapse counts it. */
  private keyRequestAllowed(requester: Requester, eventType: string, recipient: string): boolean {
    const kr = this.d.keyRequests;
    if (!kr || eventType !== 'm.room_key_request' || recipient === requester.userId) return true;
    return kr.limiter.allow(`key_requests:${requester.userId}\u0000${requester.deviceId ?? ''}`, kr.cfg, { user: requester.userId });
  }
}

/**
 * The to-device section of one /sync for a device: its messages with a
 * position in (after, upto], at most TO_DEVICE_SYNC_LIMIT, oldest first,
 * and the to-device position next_batch may carry (`upto`, or the last
 * message handed out when more remain).
 */
export async function toDeviceForSync(db: Kysely<Schema>, userId: string, deviceId: string, after: number, upto: number): Promise<{ events: Json[]; position: number }> {
  const rows = await inboxMessages(db, userId, deviceId, after, upto, TO_DEVICE_SYNC_LIMIT + 1);
  const more = rows.length > TO_DEVICE_SYNC_LIMIT;
  const shown = more ? rows.slice(0, TO_DEVICE_SYNC_LIMIT) : rows;
  const last = shown[shown.length - 1];
  return { events: shown.map((r) => r.message), position: more && last ? last.stream_id : upto };
}

/** A sync from a token acknowledges the device's messages up to the token's to-device position: they go. */
export async function acknowledgeToDevice(db: Kysely<Schema>, userId: string, deviceId: string, upto: number): Promise<void> {
  if (upto > 0) await deleteInboxUpTo(db, userId, deviceId, upto);
}

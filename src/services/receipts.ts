/**
 * Read receipts and the fully-read marker.
 *
 * - `m.read` and `m.read.private`, unthreaded or for a thread (`main` or a
 *   thread root), are stored per (room, type, user, thread) and only move
 *   forward in the room's stream. Each stored change takes a new receipts
 *   stream position; writes are serialised in this process so positions
 *   commit in order and a sync reading the newest position never skips one.
 * - `m.fully_read` is room account data (`{event_id}`), which also only
 *   moves forward, and reaches the user's clients through /sync.
 * - After a change, the room's joined members are woken (only the user
 *   for private receipts and the read marker).
 */
import type { Kysely } from 'kysely';
import { serverNameOf } from '../core/event-format.js';
import { isJsonObject } from '../core/json-values.js';
import type { JsonObject } from '../core/pdu.js';
import { forbidden, MatrixError } from '../matrix-error.js';
import { getAccountData, putAccountData } from '../storage/account-data.js';
import { getEvent, getEvents, type StoredEvent } from '../storage/events.js';
import { maxReceiptStreamId, receiptsSince, UNTHREADED, upsertReceipt } from '../storage/receipts.js';
import type { Schema } from '../storage/schema.js';
import { currentState, roomMembers } from '../storage/state.js';
import type { Notifier } from './notifier.js';
import { receiptFitsThread, type EventLookup } from './push/threads.js';
import type { Db, Tx } from '../storage/db.js';

export const RECEIPT_TYPES = ['m.read', 'm.read.private', 'm.fully_read'] as const;
export type ReceiptType = (typeof RECEIPT_TYPES)[number];

/** `m.receipt` event content: event id → receipt type → user id → `{ts, thread_id?}`. */
export type ReceiptContent = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

export interface ReceiptsServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
}

/** Told of each public read receipt a local user sets, for other servers (the federation sender's m.receipt). */
export type LocalReceiptListener = (roomId: string, userId: string, eventId: string, data: Record<string, unknown>) => void;

export class ReceiptsService {
  private readonly listeners: LocalReceiptListener[] = [];

  /** Adds a listener told of every public read receipt a local user sets. */
  onLocalReceipt(listener: LocalReceiptListener): void {
    this.listeners.push(listener);
  }

  private writeQueue: Promise<unknown> = Promise.resolve();
  /**
   * The newest position in the database when first asked, and the newest
   * one this service's writes have committed since: it is the only writer,
   * so the larger of the two is the stream's position from then on.
   */
  private stored: number | undefined;
  private committed = 0;
  /** The newest position the write in progress took (writes run one at a time). */
  private pending = 0;

  constructor(private readonly d: ReceiptsServiceDeps) {}

  /** The newest position on the receipts stream (read from the database once; every sync asks). */
  async position(): Promise<number> {
    this.stored ??= await maxReceiptStreamId(this.d.db);
    return Math.max(this.stored, this.committed);
  }

  /**
   * Receipts in these rooms changed after `fromPos` (up to `toPos` when
   * given), as each room's `m.receipt` content. `m.read.private` receipts
   * are included only for `userId`, their owner.
   */
  async since(roomIds: string[], fromPos: number, userId: string, toPos?: number): Promise<Map<string, ReceiptContent>> {
    const out = new Map<string, ReceiptContent>();
    for (const r of await receiptsSince(this.d.db, roomIds, fromPos, userId, toPos)) {
      let content = out.get(r.room_id);
      if (!content) out.set(r.room_id, (content = {}));
      const byType = (content[r.event_id] ??= {});
      const byUser = (byType[r.receipt_type] ??= {});
      byUser[r.user_id] = r.data;
    }
    return out;
  }

  /**
   * POST /rooms/{roomId}/receipt/{type}/{eventId}: `m.read`,
   * `m.read.private` (optionally threaded) or `m.fully_read`.
   */
  async receipt(userId: string, roomId: string, type: ReceiptType, eventId: string, threadId?: string): Promise<void> {
    if (threadId !== undefined && type === 'm.fully_read') {
      throw new MatrixError(400, 'M_INVALID_PARAM', 'thread_id is not compatible with m.fully_read receipts.');
    }
    await this.requireJoined(roomId, userId);
    const event = await this.roomEvent(roomId, eventId);
    if (threadId !== undefined && !(await receiptFitsThread(eventId, event.json as JsonObject, threadId, this.lookup(roomId)))) {
      throw new MatrixError(400, 'M_INVALID_PARAM', `event_id ${eventId} is not related to thread ${threadId}`);
    }
    const changed = await this.write((tx) =>
      type === 'm.fully_read' ? this.setFullyRead(tx, userId, roomId, event) : this.storeReceipt(tx, userId, roomId, type, event, threadId),
    );
    if (changed) await this.wake(roomId, userId, type === 'm.read' ? 'room' : 'self');
    if (changed && type === 'm.read') this.told(roomId, userId, event.event_id, threadId);
  }

  private told(roomId: string, userId: string, eventId: string, threadId: string | undefined): void {
    const data: Record<string, unknown> = { ts: Date.now() };
    if (threadId !== undefined) data['thread_id'] = threadId;
    for (const l of this.listeners) l(roomId, userId, eventId, data);
  }

  /**
   * Another server's `m.receipt` EDU: public read receipts of its users,
   * joined to the room, on events we hold there; anything else is skipped.
   */
  async remote(origin: string, content: Record<string, unknown>): Promise<void> {
    for (const [roomId, byType] of Object.entries(content)) {
      const reads = isJsonObject(byType) ? byType['m.read'] : undefined;
      if (!isJsonObject(reads)) continue;
      for (const [userId, r] of Object.entries(reads)) {
        if (serverNameOf(userId) !== origin || !isJsonObject(r) || !Array.isArray(r['event_ids'])) continue;
        const [member] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
        if (member?.membership !== 'join') continue;
        const data = isJsonObject(r['data']) ? r['data'] : {};
        const threadId = typeof data['thread_id'] === 'string' ? data['thread_id'] : undefined;
        for (const eventId of r['event_ids']) {
          if (typeof eventId !== 'string') continue;
          const e = await getEvent(this.d.db, eventId);
          if (!e || e.room_id !== roomId || e.rejected_reason !== null) continue;
          const changed = await this.write((tx) => this.storeReceipt(tx, userId, roomId, 'm.read', e, threadId));
          if (changed) await this.wake(roomId, userId, 'room');
        }
      }
    }
  }

  /**
   * POST /rooms/{roomId}/read_markers: any of `m.fully_read`, `m.read` and
   * `m.read.private`, all in one transaction.
   */
  async readMarkers(userId: string, roomId: string, markers: Partial<Record<ReceiptType, string>>): Promise<void> {
    const wanted = RECEIPT_TYPES.filter((t) => markers[t] !== undefined);
    if (wanted.length === 0) return;
    await this.requireJoined(roomId, userId);
    const events = new Map<ReceiptType, StoredEvent>();
    for (const t of wanted) events.set(t, await this.roomEvent(roomId, markers[t] as string));
    const changed = await this.write(async (tx) => {
      const done = new Set<ReceiptType>();
      for (const [t, e] of events) {
        const did = t === 'm.fully_read' ? await this.setFullyRead(tx, userId, roomId, e) : await this.storeReceipt(tx, userId, roomId, t, e, undefined);
        if (did) done.add(t);
      }
      return done;
    });
    if (changed.size > 0) await this.wake(roomId, userId, changed.has('m.read') ? 'room' : 'self');
    const read = events.get('m.read');
    if (changed.has('m.read') && read) this.told(roomId, userId, read.event_id, undefined);
  }

  private async storeReceipt(tx: Tx, userId: string, roomId: string, type: ReceiptType, event: StoredEvent, threadId: string | undefined): Promise<boolean> {
    const data: Record<string, unknown> = { ts: Date.now() };
    if (threadId !== undefined) data['thread_id'] = threadId;
    const pos = await upsertReceipt(tx, {
      roomId,
      type,
      userId,
      threadId: threadId ?? UNTHREADED,
      eventId: event.event_id,
      eventStreamOrdering: event.stream_ordering,
      data,
    });
    if (pos !== undefined) this.pending = Math.max(this.pending, pos);
    return pos !== undefined;
  }

  /** Moves the fully-read marker forward (never back), as Synapse does. */
  private async setFullyRead(tx: Tx, userId: string, roomId: string, event: StoredEvent): Promise<boolean> {
    const existing = await getAccountData(tx, userId, roomId, 'm.fully_read');
    const oldId = existing?.['event_id'];
    if (typeof oldId === 'string') {
      const old = await getEvent(tx, oldId);
      if (old && old.room_id === roomId && old.stream_ordering >= event.stream_ordering) return false;
    }
    await putAccountData(tx, userId, roomId, 'm.fully_read', { event_id: event.event_id });
    return true;
  }

  /** Runs a write in one transaction, one write at a time, so stream positions commit in order. */
  private async write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = this.writeQueue
      .catch(() => undefined)
      .then(async () => {
        this.pending = 0;
        const result = await this.d.db.transaction().execute(fn);
        // Committed: syncs may report it now (before the wake that follows).
        this.committed = Math.max(this.committed, this.pending);
        return result;
      });
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  private async wake(roomId: string, userId: string, who: 'room' | 'self'): Promise<void> {
    if (who === 'self') {
      this.d.notifier.notifyUsers([userId]);
      return;
    }
    const members = await roomMembers(this.d.db, roomId, ['join']);
    this.d.notifier.notifyUsers(new Set([userId, ...members.map((m) => m.user_id)]));
  }

  private async requireJoined(roomId: string, userId: string): Promise<void> {
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    if (row?.membership !== 'join') throw forbidden(`User ${userId} not in room ${roomId}`);
  }

  /** The event, which must be in the room (404 M_NOT_FOUND otherwise). */
  private async roomEvent(roomId: string, eventId: string): Promise<StoredEvent> {
    const e = await getEvent(this.d.db, eventId);
    if (!e || e.room_id !== roomId || e.rejected_reason !== null) throw new MatrixError(404, 'M_NOT_FOUND', 'Event not found');
    return e;
  }

  private lookup(roomId: string): EventLookup {
    return async (id) => {
      const e = (await getEvents(this.d.db, [id])).get(id);
      return e && e.room_id === roomId ? (e.json as JsonObject) : undefined;
    };
  }
}

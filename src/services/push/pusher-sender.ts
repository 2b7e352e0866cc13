/**
 * The loop that sends notifications to HTTP pushers, in-process, started
 * and stopped with the server.
 *
 * - Waking: every Notifier call (made after a commit: an event, a receipt)
 *   marks the users it names; the HTTP pushers of those users that have
 *   notifications after their position (or a badge to bring down) run. At
 *   start, and every minute after, every pusher with notifications after
 *   its position runs (a restart, a retry lost, another process's commit).
 * - A run: the pusher's notifications (event_push_actions rows of its user)
 *   after its `last_stream_ordering`, up to the settled events position (a
 *   position below which nothing can still commit, see streams/positions.ts),
 *   oldest first. Those the user has read by now are skipped; the others
 *   are POSTed one at a time, and each success moves the pusher's position
 *   on, in the database, so a restart neither re-sends nor skips.
 * - Failures: retried with exponential backoff (1 s doubling to 1 h) while
 *   the pusher keeps its place; after a day of failing the notification is
 *   given up and the next one tried (Synapse's rule). A gateway's
 *   `rejected` naming the pusher's pushkey deletes the pusher.
 * - Badges: after a push, when the user's unread count changes without a
 *   new notification (they read rooms elsewhere), a badge-only
 *   notification carries the new count, once.
 * - Isolation: each pusher runs on its own (never two runs of one at once).
 *   At most PER_GATEWAY requests are in flight to one gateway (origin), and
 *   each times out, so a slow gateway holds up only its own pushers; at
 *   most MAX_RUNS runs query the database at once (a run waiting for a
 *   gateway gives its place up), so a message in a big room does not take
 *   the whole connection pool. Nothing here runs inside a request or a
 *   sync; errors are logged, never thrown.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { getEvents } from '../../storage/events.js';
import { readPositions } from '../../storage/push.js';
import {
  advancePusher,
  deletePusher,
  eventStateGroupsBefore,
  getPusherById,
  httpPushersToWake,
  pendingPushActions,
  type PendingPush,
  type PusherRow,
  setPusherFailingSince,
} from '../../storage/pushers.js';
import type { Schema } from '../../storage/schema.js';
import { currentState, roomsForUser, stateAtGroup, type StateKeyTuple } from '../../storage/state.js';
import type { Notifier } from '../notifier.js';
import { StreamPositions } from '../streams/positions.js';
import type { GatewayClient } from './gateway-client.js';
import { badgeNotification, eventNotification, type NotifiedEvent, type RoomContext } from './gateway-notification.js';
import type { PushService } from './push-service.js';
import { withSubsystemLogger } from '../../logger.js';
import { objectOrEmpty } from '../../core/json-values.js';

export interface PusherSenderOptions {
  /** `push.include_content` (Synapse's default true). */
  includeContent: boolean;
  /** `push.group_unread_count_by_room` (true): the badge counts rooms, not notifications. */
  groupUnreadCountByRoom: boolean;
  initialBackoffMs: number;
  maxBackoffMs: number;
  giveUpAfterMs: number;
  sweepIntervalMs: number;
}

export const PUSHER_SENDER_DEFAULTS = {
  initialBackoffMs: 1000,
  maxBackoffMs: 60 * 60_000,
  giveUpAfterMs: 24 * 60 * 60_000,
  sweepIntervalMs: 60_000,
};

export interface PusherSenderDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  push: PushService;
  gateway: GatewayClient;
  logger: Logger;
  options: PusherSenderOptions;
  /** The server's settled stream positions (the ones /sync hands out). */
  positions: StreamPositions;
}

/** Requests in flight to one gateway (origin). */
const PER_GATEWAY = 8;
/** Runs using the database at once. */
const MAX_RUNS = 8;
/** Notifications read per query. */
const BATCH = 50;
/** When stream positions were held back by a writer, look again this soon. */
const HELD_RETRY_MS = 500;

/** One pusher's in-memory state. */
interface Runner {
  running: boolean;
  again: boolean;
  retryTimer?: NodeJS.Timeout;
  backoffMs: number;
  /** The unread count last sent (undefined: none sent since start). */
  lastBadge?: number;
}

export class PusherSender {
  private readonly users = new Set<string>();
  /** Bumped whenever a pusher is set, so a query that raced it does not drop its user. */
  private generation = 0;
  private readonly runners = new Map<number, Runner>();
  private readonly dirty = new Set<string>();
  private drainScheduled = false;
  private closed = false;
  private unsubscribe?: () => void;
  private sweepTimer?: NodeJS.Timeout;
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly abort = new AbortController();
  private readonly positions: StreamPositions;
  private readonly runSlots = new Semaphore(MAX_RUNS);
  private readonly gatewaySlots = new Map<string, Semaphore>();

  constructor(private readonly d: PusherSenderDeps) {
    this.d = withSubsystemLogger(d, 'axon.push');
    this.positions = d.positions;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.d.notifier.onNotify((ids) => this.poke(ids));
    this.sweepTimer = setInterval(() => this.sweep(), this.d.options.sweepIntervalMs);
    this.sweepTimer.unref();
    // Pick up where the last run stopped.
    await this.sweepOnce();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.sweepTimer);
    for (const r of this.runners.values()) clearTimeout(r.retryTimer);
    this.abort.abort();
    this.runSlots.openAll();
    for (const g of this.gatewaySlots.values()) g.openAll();
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  /** A pusher was created or changed: start it afresh. */
  pusherSet(userId: string, pusherId: number): void {
    this.generation++;
    const r = this.runners.get(pusherId);
    if (r) {
      clearTimeout(r.retryTimer);
      r.retryTimer = undefined;
      r.backoffMs = this.d.options.initialBackoffMs;
    }
    this.users.add(userId);
    this.poke([userId]);
  }

  private poke(userIds: readonly string[]): void {
    if (this.closed) return;
    for (const u of userIds) if (this.users.has(u)) this.dirty.add(u);
    if (this.dirty.size === 0 || this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      const users = [...this.dirty];
      this.dirty.clear();
      this.track(this.wake(users));
    });
  }

  private sweep(): void {
    if (!this.closed) this.track(this.sweepOnce());
  }

  /** Every HTTP pusher with notifications after its position runs. */
  private async sweepOnce(): Promise<void> {
    for (const p of await httpPushersToWake(this.d.db)) {
      this.users.add(p.user_id);
      if (p.pending) this.trigger(p.id);
    }
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch((err: unknown) => {
      if (!this.closed) this.d.logger.warn({ err }, 'pusher loop failed');
    });
    this.tasks.add(t);
    void t.finally(() => this.tasks.delete(t));
  }

  private async wake(userIds: string[]): Promise<void> {
    if (this.closed || userIds.length === 0) return;
    const generation = this.generation;
    const pushers = await httpPushersToWake(this.d.db, userIds);
    const have = new Set(pushers.map((p) => p.user_id));
    if (generation === this.generation) for (const u of userIds) if (!have.has(u)) this.users.delete(u);
    for (const p of pushers) {
      // Typing and presence wake users too: run only with something to send or a badge to bring down.
      const r = this.runners.get(p.id);
      if (p.pending || (r?.lastBadge ?? 0) > 0) this.trigger(p.id);
    }
  }

  private trigger(id: number): void {
    if (this.closed) return;
    let r = this.runners.get(id);
    if (!r) this.runners.set(id, (r = { running: false, again: false, backoffMs: this.d.options.initialBackoffMs }));
    if (r.retryTimer) return; // backing off: the timer runs it
    if (r.running) {
      r.again = true;
      return;
    }
    r.running = true;
    const runner = r;
    this.track(
      (async () => {
        try {
          do {
            runner.again = false;
            await this.runSlots.acquire();
            try {
              await this.run(id, runner);
            } finally {
              this.runSlots.release();
            }
          } while (runner.again && !this.closed && !runner.retryTimer);
        } finally {
          runner.running = false;
        }
      })(),
    );
  }

  /** One pass over the pusher's pending notifications. */
  private async run(id: number, r: Runner): Promise<void> {
    const p = await getPusherById(this.d.db, id);
    if (!p || p.kind !== 'http') {
      this.runners.delete(id);
      return;
    }
    const url = p.data['url'];
    if (typeof url !== 'string') return;
    const upTo = (await this.positions.current()).events;
    if (this.positions.held) setTimeout(() => this.trigger(id), HELD_RETRY_MS).unref();
    let sent = false;
    for (;;) {
      if (this.closed) return;
      const rows = await pendingPushActions(this.d.db, p.user_id, p.last_stream_ordering, upTo, BATCH);
      if (rows.length === 0) break;
      const unread = await this.unreadOf(p.user_id, rows);
      let badge: number | undefined;
      for (const row of rows) {
        if (this.closed) return;
        if (!unread.has(row)) continue;
        badge ??= await this.badge(p.user_id);
        const body = await this.eventBody(p, row, badge);
        if (!body) continue; // the event is gone
        const res = await this.post(url, body);
        if (this.closed) return;
        if (!res.ok) {
          if (await this.failed(p, r, row, res.error)) continue;
          return;
        }
        sent = true;
        r.backoffMs = this.d.options.initialBackoffMs;
        r.lastBadge = badge;
        if (res.rejected.includes(p.pushkey)) {
          this.d.logger.info({ user_id: p.user_id, app_id: p.app_id }, 'push gateway rejected the pushkey; pusher removed');
          await deletePusher(this.d.db, p.user_id, p.app_id, p.pushkey);
          this.runners.delete(id);
          return;
        }
        if (!(await advancePusher(this.d.db, id, row.stream_ordering, Date.now()))) {
          this.runners.delete(id);
          return;
        }
        p.last_stream_ordering = Math.max(p.last_stream_ordering, row.stream_ordering);
        p.failing_since = null;
      }
      // Read (skipped) notifications up to the batch's end are done with too.
      const last = rows[rows.length - 1]!.stream_ordering;
      if (last > p.last_stream_ordering) {
        if (!(await advancePusher(this.d.db, id, last))) {
          this.runners.delete(id);
          return;
        }
        p.last_stream_ordering = last;
      }
      if (rows.length < BATCH) break;
    }
    if (!sent && r.lastBadge !== undefined && r.lastBadge > 0) await this.updateBadge(p, url, r);
  }

  /**
   * A send failed: keep the place and retry later (false), or, once the
   * pusher has been failing for longer than a day, give this notification
   * up and go on with the next (true).
   */
  private async failed(p: PusherRow, r: Runner, row: PendingPush, error: string): Promise<boolean> {
    const now = Date.now();
    if (p.failing_since === null) {
      p.failing_since = now;
      await setPusherFailingSince(this.d.db, p.id, now);
    }
    if (now - p.failing_since > this.d.options.giveUpAfterMs) {
      this.d.logger.warn({ user_id: p.user_id, app_id: p.app_id, event_id: row.event_id, error }, 'giving up on a push notification');
      r.backoffMs = this.d.options.initialBackoffMs;
      await advancePusher(this.d.db, p.id, row.stream_ordering);
      p.last_stream_ordering = Math.max(p.last_stream_ordering, row.stream_ordering);
      p.failing_since = null;
      await setPusherFailingSince(this.d.db, p.id, null);
      return true;
    }
    const delay = r.backoffMs;
    this.d.logger.info({ user_id: p.user_id, app_id: p.app_id, error, retry_in_ms: delay }, 'push failed; will retry');
    r.backoffMs = Math.min(r.backoffMs * 2, this.d.options.maxBackoffMs);
    clearTimeout(r.retryTimer);
    r.retryTimer = setTimeout(() => {
      r.retryTimer = undefined;
      this.trigger(p.id);
    }, delay);
    r.retryTimer.unref();
    return false;
  }

  /** Sends the new unread count when it changed since the last push (best effort, no retry). */
  private async updateBadge(p: PusherRow, url: string, r: Runner): Promise<void> {
    const badge = await this.badge(p.user_id);
    if (badge === r.lastBadge || this.closed) return;
    r.lastBadge = badge;
    const res = await this.post(url, badgeNotification(p, badge));
    if (!res.ok) this.d.logger.debug({ user_id: p.user_id, app_id: p.app_id, error: res.error }, 'badge update failed');
  }

  /** POSTs to the gateway, giving the run's database place up meanwhile. */
  private async post(url: string, body: unknown): Promise<Awaited<ReturnType<GatewayClient['notify']>>> {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return { ok: false, error: 'invalid URL' };
    }
    let slots = this.gatewaySlots.get(origin);
    if (!slots) this.gatewaySlots.set(origin, (slots = new Semaphore(PER_GATEWAY)));
    const gateway = slots;
    this.runSlots.release();
    try {
      await gateway.acquire();
      try {
        if (this.closed) return { ok: false, error: 'shutting down' };
        return await this.d.gateway.notify(url, body, this.abort.signal);
      } finally {
        gateway.release();
        if (gateway.idle() && this.gatewaySlots.get(origin) === gateway) this.gatewaySlots.delete(origin);
      }
    } finally {
      await this.runSlots.acquire();
    }
  }

  /** The rows the user has not read by now (their receipts and own events, per thread). */
  private async unreadOf(userId: string, rows: readonly PendingPush[]): Promise<Set<PendingPush>> {
    const positions = await readPositions(
      this.d.db,
      userId,
      rows.map((r) => r.room_id),
    );
    const readUpTo = new Map<string, number>();
    for (const pos of positions) {
      const k = `${pos.room_id}\u0000${pos.thread_id}`;
      readUpTo.set(k, Math.max(readUpTo.get(k) ?? 0, pos.pos));
    }
    const out = new Set<PendingPush>();
    for (const r of rows) {
      const read = Math.max(readUpTo.get(`${r.room_id}\u0000`) ?? 0, readUpTo.get(`${r.room_id}\u0000${r.thread_id}`) ?? 0);
      if (r.stream_ordering > read) out.add(r);
    }
    return out;
  }

  /**
   * The unread count for the badge: rooms with unread notifications (or
   * the notifications themselves without grouping) plus pending invites,
   * as Synapse counts it.
   */
  private async badge(userId: string): Promise<number> {
    const [joined, invited] = await Promise.all([roomsForUser(this.d.db, userId, ['join']), roomsForUser(this.d.db, userId, ['invite'])]);
    const counts = await this.d.push.unreadCountsForRooms(
      userId,
      joined.map((r) => r.room_id),
    );
    let n = invited.length;
    for (const c of counts.values()) if (c.notification_count > 0) n += this.d.options.groupUnreadCountByRoom ? 1 : c.notification_count;
    return n;
  }

  private async eventBody(p: PusherRow, row: PendingPush, unread: number): Promise<{ notification: Record<string, unknown> } | undefined> {
    const stored = (await getEvents(this.d.db, [row.event_id])).get(row.event_id);
    if (!stored || stored.redacted_by !== null) return undefined;
    const json = stored.json;
    const content = json['content'];
    const ev: NotifiedEvent = {
      event_id: row.event_id,
      room_id: row.room_id,
      type: stored.type,
      sender: stored.sender,
      ...(stored.state_key !== null ? { state_key: stored.state_key } : {}),
      content: objectOrEmpty(content),
    };
    const room = p.data['format'] === 'event_id_only' ? {} : await this.roomContext(ev);
    return eventNotification(p, ev, row.actions, unread, room, { includeContent: this.d.options.includeContent });
  }

  /** The sender's display name and the room's name and alias, from the state before the event. */
  private async roomContext(ev: NotifiedEvent): Promise<RoomContext> {
    const keys: StateKeyTuple[] = [
      ['m.room.name', ''],
      ['m.room.canonical_alias', ''],
      ['m.room.member', ev.sender],
    ];
    const group = (await eventStateGroupsBefore(this.d.db, [ev.event_id])).get(ev.event_id) ?? null;
    const ids = new Map<string, string>();
    if (group !== null) {
      for (const [k, id] of await stateAtGroup(this.d.db, group, keys)) ids.set(k, id);
    } else {
      for (const r of await currentState(this.d.db, ev.room_id, keys)) ids.set(`${r.type}\u0000${r.state_key}`, r.event_id);
    }
    const events = await getEvents(this.d.db, [...ids.values()]);
    const contentOf = (type: string, stateKey: string): Record<string, unknown> => {
      const id = ids.get(`${type}\u0000${stateKey}`);
      const c = id ? events.get(id)?.json['content'] : undefined;
      return objectOrEmpty(c);
    };
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const ctx: RoomContext = {};
    const alias = str(contentOf('m.room.canonical_alias', '')['alias']);
    const name = str(contentOf('m.room.name', '')['name']) ?? alias;
    if (name) ctx.roomName = name;
    if (alias) ctx.roomAlias = alias;
    if (ids.has(`m.room.member\u0000${ev.sender}`)) ctx.senderDisplayName = str(contentOf('m.room.member', ev.sender)['displayname']) ?? ev.sender;
    return ctx;
  }
}

/** A counting semaphore; `openAll` lets every waiter (and later caller) through, for shutting down. */
class Semaphore {
  private active = 0;
  private open = false;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly max: number) {}

  acquire(): Promise<void> {
    if (this.open || this.active < this.max) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  /** Hands the place to the next waiter, if any. */
  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }

  idle(): boolean {
    return this.active === 0 && this.queue.length === 0;
  }

  openAll(): void {
    this.open = true;
    for (const w of this.queue.splice(0)) {
      this.active++;
      w();
    }
  }
}

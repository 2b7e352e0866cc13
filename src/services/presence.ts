/**
 * Presence: online / unavailable / offline, a status message, and how long
 * ago the user was active, as Synapse keeps it for local users.
 *
 * FOR /sync (ctx.services.presence may be absent in embeddings; use `?.`):
 *
 *   // The presence position for the `_<presence>` part of next_batch; read it
 *   // before querying, and pass it as `to` so nothing is skipped or repeated.
 *   const to: number = presence.position;
 *
 *   // The m.presence events of `userIds` (the users sharing a joined room with
 *   // the syncing user, and the user themself) that changed after `from` up
 *   // to `to`. from = 0 (initial sync) leaves offline users out, as Synapse.
 *   // For rooms newly joined since the last sync, call it with from = 0 and
 *   // the new members, so the user learns their current presence.
 *   await presence.since(userIds: Iterable<string>, from: number, to?: number): Promise<PresenceEvent[]>
 *
 *   // Around each /sync request, with its set_presence (default "online"):
 *   // marks the user online (or unavailable) and keeps them from timing out
 *   // to offline while the request waits; call the returned function when
 *   // the request ends. set_presence "offline" leaves presence untouched.
 *   const done = await presence.userSyncing(userId: string, setPresence: PresenceState): Promise<() => void>
 *
 *   // Or, without the waiting guard:
 *   await presence.set(userId: string, state: PresenceState, statusMsg?: string | null, opts?: { sync?: boolean }): Promise<void>
 *   //   statusMsg undefined keeps the current message; null clears it.
 *   //   { sync: true } is how /sync sets presence: "offline" then changes nothing.
 *
 *   // The users whose syncs a change of `userId` wakes (sharing a joined room).
 *   await presence.interestedUsers(userId: string): Promise<string[]>
 *
 * With `presence.enabled: false` every call is a no-op: since() returns [],
 * position stays 0, get() answers offline. With `enabled: untracked`, local
 * users' changes are ignored but reads work.
 *
 * Model (Synapse's timers, configurable as Synapse's `presence:` keys
 * `idle_timeout`, `sync_online_timeout`, `last_active_granularity`):
 * - online users inactive for 5 minutes become unavailable;
 * - users with no /sync in flight and none (nor any activity) for 30 s
 *   become offline, whatever they set (so a PUT online without syncing
 *   lasts 30 s, as in Synapse);
 * - `currently_active` is true while online and active in the last 60 s.
 * Only notable changes (state, status message, currently_active, or an
 * inactive user becoming active after the granularity) take a new stream
 * position, are written, and wake the syncs of users sharing a room;
 * activity bumps in between stay in memory and are flushed every minute.
 */
import { serverNameOf } from '../core/event-format.js';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import {
  getPresence,
  maxPresenceStreamId,
  presenceBetween,
  presenceNotOffline,
  shareARoom,
  touchPresence,
  usersSharingRoomWith,
  writePresence,
  type PresenceRow,
} from '../storage/presence.js';
import type { Schema } from '../storage/schema.js';
import type { Notifier } from './notifier.js';
import { withSubsystemLogger } from '../logger.js';
import { objectOrEmpty } from '../core/json-values.js';

export type PresenceState = 'online' | 'unavailable' | 'offline';
export const PRESENCE_STATES: readonly PresenceState[] = ['online', 'unavailable', 'offline'];

export interface PresenceContent {
  presence: PresenceState;
  last_active_ago?: number;
  status_msg?: string;
  currently_active?: boolean;
}

export interface PresenceEvent {
  type: 'm.presence';
  sender: string;
  content: PresenceContent;
}

export interface PresenceOptions {
  /** Presence is served at all (`presence.enabled` / `use_presence`). */
  enabled: boolean;
  /** Local users' changes are recorded (false for `enabled: untracked`). */
  track: boolean;
  idleTimeoutMs: number;
  syncOnlineTimeoutMs: number;
  lastActiveGranularityMs: number;
  /** How often timers are checked. */
  sweepIntervalMs: number;
  /** How often in-memory activity bumps are written. */
  flushIntervalMs: number;
}

/** Synapse's defaults. */
export const PRESENCE_DEFAULTS = {
  idleTimeoutMs: 5 * 60_000,
  syncOnlineTimeoutMs: 30_000,
  lastActiveGranularityMs: 60_000,
  sweepIntervalMs: 5_000,
  flushIntervalMs: 60_000,
};

/** Presence options from the config: `presence.enabled` (true, false, "untracked") and Synapse's timer keys, in ms. */
export function presenceOptions(config: HomeserverConfig): PresenceOptions {
  const raw = config.raw['presence'];
  const p = objectOrEmpty(raw);
  const ms = (k: string, d: number) => {
    const v = p[k];
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : d;
  };
  return {
    enabled: config.presence_enabled,
    track: config.presence_enabled && p['enabled'] !== 'untracked',
    idleTimeoutMs: ms('idle_timeout', PRESENCE_DEFAULTS.idleTimeoutMs),
    syncOnlineTimeoutMs: ms('sync_online_timeout', PRESENCE_DEFAULTS.syncOnlineTimeoutMs),
    lastActiveGranularityMs: ms('last_active_granularity', PRESENCE_DEFAULTS.lastActiveGranularityMs),
    sweepIntervalMs: PRESENCE_DEFAULTS.sweepIntervalMs,
    flushIntervalMs: PRESENCE_DEFAULTS.flushIntervalMs,
  };
}

interface Live {
  state: PresenceState;
  status_msg: string | null;
  last_active_ts: number;
  last_user_sync_ts: number;
  currently_active: boolean;
  /** Last PUT or sync, in memory only: the offline timer counts from it (Synapse's per-device last_active_ts). */
  touched_ts: number;
  /** Activity times changed since the last write. */
  dirty: boolean;
}

export interface PresenceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  logger: Logger;
  options: PresenceOptions;
  now?: () => number;
  /** Whether a user is ours: other servers' users are timed out only after FEDERATION_PRESENCE_TIMEOUT_MS without news. */
  isMine?: (userId: string) => boolean;
}

/** A remote user not heard of for this long is taken as offline (Synapse's FEDERATION_TIMEOUT). */
export const FEDERATION_PRESENCE_TIMEOUT_MS = 30 * 60_000;

/** Told of each notable presence change of a local user, for other servers (the federation sender's m.presence). */
export type LocalPresenceListener = (userId: string, content: PresenceContent) => void;

export class PresenceService {
  private pos = 0;
  /** Local users who are not offline (their timers run), with fresh activity times. */
  private readonly live = new Map<string, Live>();
  /** /sync requests in flight per user. */
  private readonly syncing = new Map<string, number>();
  /** Writes run one at a time, so stream positions become visible in order. */
  private queue: Promise<unknown> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly now: () => number;

  private readonly listeners: LocalPresenceListener[] = [];

  constructor(private readonly d: PresenceDeps) {
    this.d = withSubsystemLogger(d, 'axon.presence');
    this.now = d.now ?? Date.now;
  }

  /** Adds a listener told of every notable presence change of a local user. */
  onLocalChange(listener: LocalPresenceListener): void {
    this.listeners.push(listener);
  }

  private isMine(userId: string): boolean {
    return this.d.isMine?.(userId) ?? true;
  }

  /**
   * Another server's `m.presence` push for one of its users (`origin`'s
   * own): taken as that server says, and kept until it says otherwise or
   * FEDERATION_PRESENCE_TIMEOUT_MS passes without news.
   */
  async remote(origin: string, p: Record<string, unknown>): Promise<void> {
    if (!this.d.options.enabled) return;
    const userId = p['user_id'];
    const state = p['presence'];
    if (typeof userId !== 'string' || serverNameOf(userId) !== origin || this.isMine(userId)) return;
    if (typeof state !== 'string' || !(PRESENCE_STATES as readonly string[]).includes(state)) return;
    const ago = typeof p['last_active_ago'] === 'number' && p['last_active_ago'] >= 0 ? p['last_active_ago'] : 0;
    await this.enqueue(async () => {
      const now = this.now();
      const prev = await this.current(userId);
      const next: Live = {
        ...prev,
        state: state as PresenceState,
        status_msg: typeof p['status_msg'] === 'string' ? p['status_msg'] : null,
        last_active_ts: now - ago,
        currently_active: p['currently_active'] === true,
        touched_ts: now,
        dirty: true,
      };
      await this.apply(userId, prev, next);
    });
  }

  get enabled(): boolean {
    return this.d.options.enabled;
  }

  /** The newest presence stream position (0 when presence is off). */
  get position(): number {
    return this.pos;
  }

  /** Loads the stream position and the users who were not offline, and starts the timers. */
  async start(): Promise<void> {
    if (!this.d.options.enabled) return;
    this.pos = await maxPresenceStreamId(this.d.db);
    if (this.d.options.track) {
      for (const r of await presenceNotOffline(this.d.db)) this.live.set(r.user_id, fromRow(r));
      this.lastFlush = this.now();
      this.sweepTimer = setInterval(() => void this.sweep().catch((err) => this.d.logger.warn({ err }, 'presence timers failed')), this.d.options.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  /** Stops the timers and writes pending activity times. */
  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.enqueue(() => this.flush()).catch(() => undefined);
  }

  /**
   * Sets a local user's presence. `statusMsg` undefined keeps the current
   * message, null clears it. With `{sync: true}` (from /sync's set_presence)
   * "offline" changes nothing and the message is kept.
   */
  async set(userId: string, state: PresenceState, statusMsg?: string | null, opts: { sync?: boolean } = {}): Promise<void> {
    if (!this.d.options.track) return;
    if (opts.sync && state === 'offline') return;
    await this.enqueue(async () => {
      const now = this.now();
      const prev = await this.current(userId);
      const next: Live = { ...prev, state, touched_ts: now, dirty: true };
      if (state === 'online') next.last_active_ts = now;
      if (opts.sync) next.last_user_sync_ts = now;
      else if (statusMsg !== undefined) next.status_msg = statusMsg;
      next.currently_active = state === 'online' && now - next.last_active_ts < this.d.options.lastActiveGranularityMs;
      await this.apply(userId, prev, next);
    });
  }

  /**
   * Marks a /sync request of `userId` in flight (see the comment at the top);
   * returns the function to call when it ends.
   */
  async userSyncing(userId: string, setPresence: PresenceState = 'online'): Promise<() => void> {
    if (!this.d.options.track || setPresence === 'offline') return () => undefined;
    this.syncing.set(userId, (this.syncing.get(userId) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.syncing.get(userId) ?? 1) - 1;
      if (n <= 0) this.syncing.delete(userId);
      else this.syncing.set(userId, n);
      // The offline timer counts from the end of the last sync.
      const l = this.live.get(userId);
      if (l) {
        l.last_user_sync_ts = l.touched_ts = this.now();
        l.dirty = true;
      }
    };
    try {
      await this.set(userId, setPresence, undefined, { sync: true });
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** A user's presence as GET /presence/{userId}/status shows it. */
  async get(userId: string): Promise<PresenceContent> {
    if (!this.d.options.enabled) return { presence: 'offline' };
    return format(await this.current(userId), this.now());
  }

  /** Whether `observer` may see `observed`'s presence: themself, or sharing a joined room. */
  async isVisible(observer: string, observed: string): Promise<boolean> {
    return observer === observed || shareARoom(this.d.db, observer, observed);
  }

  /** Users whose syncs a change of `userId`'s presence wakes: those sharing a joined room, and themself. */
  async interestedUsers(userId: string): Promise<string[]> {
    const users = new Set(await usersSharingRoomWith(this.d.db, userId));
    users.add(userId);
    return [...users];
  }

  /** m.presence events of `userIds` changed after `from` up to `to` (see the comment at the top). */
  async since(userIds: Iterable<string>, from: number, to: number = this.pos): Promise<PresenceEvent[]> {
    if (!this.d.options.enabled) return [];
    const ids = [...new Set(userIds)];
    const rows = await presenceBetween(this.d.db, ids, from, to, from === 0);
    const now = this.now();
    return rows.map((r) => {
      const l = this.live.get(r.user_id);
      // Fresher activity times from memory, the notable fields from the row.
      const view: Live = l && l.state === r.state ? { ...fromRow(r), last_active_ts: Math.max(l.last_active_ts, r.last_active_ts) } : fromRow(r);
      return { type: 'm.presence', sender: r.user_id, content: format(view, now) };
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async current(userId: string): Promise<Live> {
    const l = this.live.get(userId);
    if (l) return { ...l };
    const r = await getPresence(this.d.db, userId);
    return r ? fromRow(r) : { state: 'offline', status_msg: null, last_active_ts: 0, last_user_sync_ts: 0, currently_active: false, touched_ts: 0, dirty: false };
  }

  /** Keeps `next` in memory; writes it at a new stream position and wakes others when it is notable. */
  private async apply(userId: string, prev: Live, next: Live): Promise<void> {
    if (this.notable(prev, next)) {
      const pos = await writePresence(this.d.db, {
        user_id: userId,
        state: next.state,
        status_msg: next.status_msg,
        last_active_ts: next.last_active_ts,
        last_user_sync_ts: next.last_user_sync_ts,
        currently_active: next.currently_active,
      });
      next.dirty = false;
      this.remember(userId, next);
      this.pos = Math.max(this.pos, pos);
      this.d.notifier.notifyUsers(await this.interestedUsers(userId));
      if (this.listeners.length > 0 && this.isMine(userId)) {
        const content = format(next, this.now());
        for (const l of this.listeners) l(userId, content);
      }
    } else {
      this.remember(userId, next);
    }
  }

  private remember(userId: string, s: Live): void {
    if (s.state === 'offline' && !s.dirty) this.live.delete(userId);
    else this.live.set(userId, s);
  }

  /** Synapse's should_notify. */
  private notable(prev: Live, next: Live): boolean {
    if (prev.status_msg !== next.status_msg || prev.state !== next.state) return true;
    if (prev.state === 'online') {
      if (prev.currently_active !== next.currently_active) return true;
      if (next.last_active_ts - prev.last_active_ts > this.d.options.lastActiveGranularityMs && !next.currently_active) return true;
    }
    return false;
  }

  /** Runs the timers: idle, offline, currently_active; flushes activity times now and then. */
  async sweep(): Promise<void> {
    await this.enqueue(async () => {
      const now = this.now();
      const o = this.d.options;
      for (const [userId, l] of [...this.live]) {
        if (l.state === 'offline') continue;
        if (!this.isMine(userId)) {
          // Another server's user: its own server runs their timers; we only give up on silence.
          if (now - l.touched_ts > FEDERATION_PRESENCE_TIMEOUT_MS) await this.apply(userId, l, { ...l, state: 'offline', currently_active: false, dirty: true });
          continue;
        }
        const next: Live = { ...l };
        if (next.state === 'online' && now - next.last_active_ts > o.idleTimeoutMs) next.state = 'unavailable';
        if (!this.syncing.has(userId) && now - Math.max(next.last_user_sync_ts, next.last_active_ts, next.touched_ts) > o.syncOnlineTimeoutMs) next.state = 'offline';
        next.currently_active = next.state === 'online' && now - next.last_active_ts < o.lastActiveGranularityMs;
        if (this.notable(l, next)) await this.apply(userId, l, next);
      }
      if (now - this.lastFlush >= o.flushIntervalMs) await this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.lastFlush = this.now();
    for (const [userId, l] of this.live) {
      if (!l.dirty) continue;
      await touchPresence(this.d.db, userId, l.last_active_ts, l.last_user_sync_ts);
      l.dirty = false;
      if (l.state === 'offline') this.live.delete(userId);
    }
  }
}

function fromRow(r: PresenceRow): Live {
  return {
    state: (PRESENCE_STATES as readonly string[]).includes(r.state) ? (r.state as PresenceState) : 'offline',
    status_msg: r.status_msg,
    last_active_ts: Number(r.last_active_ts),
    last_user_sync_ts: Number(r.last_user_sync_ts),
    currently_active: r.currently_active,
    touched_ts: 0,
    dirty: false,
  };
}

/** Synapse's format_user_presence_state, without user_id. */
function format(s: Live, now: number): PresenceContent {
  const c: PresenceContent = { presence: s.state };
  if (s.last_active_ts) c.last_active_ago = Math.max(0, now - s.last_active_ts);
  if (s.status_msg) c.status_msg = s.status_msg;
  if (s.state === 'online') c.currently_active = s.currently_active;
  return c;
}

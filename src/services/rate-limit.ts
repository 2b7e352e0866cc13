/**
 * Rate limits as Synapse applies them (`rc_*` settings): a leaky bucket per
 * key that drains at `per_second` and holds `burst_count` actions. Over the
 * limit is 429 M_LIMIT_EXCEEDED with `retry_after_ms` (the error handler
 * adds `Retry-After` in seconds).
 *
 * Buckets live in memory only. Memory stays bounded: a bucket that has
 * drained is worth nothing and is dropped by a sweep that runs at most once
 * a minute, or when MAX_KEYS is reached; if the sweep frees too little, the
 * least recently used buckets go until a tenth of the room is free again
 * (so a flood of new keys costs one sweep per MAX_KEYS / 10 of them).
 *
 * Checks made for a user (`user` given) honour Synapse's per-user override
 * (`ratelimit_override`, set through the admin API): an override of 0
 * messages per second exempts that user from every such limit.
 */
import type { RateLimitConfig } from '../config/types.js';
import { limitExceeded } from '../matrix-error.js';

interface Bucket {
  level: number;
  at: number;
  /** The drain rate it was filled at, for the sweep. */
  rate: number;
}

/** A user's row of `ratelimit_override`; 0 messages per second means "not limited". */
export interface RatelimitOverride {
  messages_per_second: number;
  burst_count: number;
}

/** Where the limiter reads overrides from (kept in memory; see RatelimitOverrides). */
export interface OverrideSource {
  get(userId: string): RatelimitOverride | undefined;
}

export interface CheckOptions {
  /** false: only ask, do not count (Synapse's `update=False`). */
  update?: boolean;
  now?: number;
  /** How many actions this is (Synapse's n_actions). */
  cost?: number;
  /** The user doing it, so that an exempting override applies. */
  user?: string;
}

const MAX_KEYS = 100_000;
/** What a full sweep brings the count down to. */
const LOW_WATER = MAX_KEYS * 0.9;
const SWEEP_EVERY_MS = 60_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(private readonly overrides?: OverrideSource) {}

  /** The user's override, if an admin set one. */
  override(userId: string): RatelimitOverride | undefined {
    return this.overrides?.get(userId);
  }

  /** Whether an override takes the user out of every rate limit (0 messages per second). */
  isExempt(userId: string | undefined): boolean {
    if (userId === undefined) return false;
    const o = this.override(userId);
    return o !== undefined && !o.messages_per_second;
  }

  /**
   * Counts the action for `key` (unless `update` is false) and throws
   * M_LIMIT_EXCEEDED when it would exceed the bucket, counting nothing. A
   * rate of 0 or less means no limit.
   */
  check(key: string, cfg: RateLimitConfig, opts: CheckOptions = {}): void {
    const waitMs = this.attempt(key, cfg, opts);
    if (waitMs !== undefined) throw limitExceeded(waitMs);
  }

  /** As check, but answers whether the action may go ahead instead of throwing (Synapse's can_do_action). */
  allow(key: string, cfg: RateLimitConfig, opts: CheckOptions = {}): boolean {
    return this.attempt(key, cfg, opts) === undefined;
  }

  /** Counts actions whether or not they fit (Synapse's record_action), for things that happened anyway. */
  record(key: string, cfg: RateLimitConfig, cost = 1, now = Date.now()): void {
    if (cfg.per_second <= 0 || !Number.isFinite(cfg.per_second)) return;
    const b = this.buckets.get(key);
    this.store(key, (b ? drained(b, now) : 0) + cost, now, cfg.per_second);
  }

  /** Gives back actions counted for an action that then failed. */
  refund(key: string, cost = 1, now = Date.now()): void {
    const b = this.buckets.get(key);
    if (!b) return;
    const level = drained(b, now) - cost;
    if (level <= 0) this.buckets.delete(key);
    else this.buckets.set(key, { level, at: now, rate: b.rate });
  }

  /** Forgets a key (Synapse clears the failed-login bucket after a good login). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** How many buckets are held (for tests of the sweep). */
  get size(): number {
    return this.buckets.size;
  }

  /** The wait in ms when over the limit, else undefined (and the action counted when `update`). */
  private attempt(key: string, cfg: RateLimitConfig, opts: CheckOptions): number | undefined {
    if (cfg.per_second <= 0 || !Number.isFinite(cfg.per_second)) return undefined;
    if (this.isExempt(opts.user)) return undefined;
    const now = opts.now ?? Date.now();
    const cost = opts.cost ?? 1;
    const b = this.buckets.get(key);
    const level = b ? drained(b, now) : 0;
    if (level + cost > cfg.burst_count) {
      // (Rounded up, less float noise: 600.0000001 ms is 600.)
      return Math.max(1, Math.ceil(((level + cost - cfg.burst_count) / cfg.per_second) * 1000 - 1e-6));
    }
    if (opts.update === false) return undefined;
    this.store(key, level + cost, now, cfg.per_second);
    return undefined;
  }

  private store(key: string, level: number, now: number, rate: number): void {
    if (now - this.lastSweep >= SWEEP_EVERY_MS || (!this.buckets.has(key) && this.buckets.size >= MAX_KEYS)) this.sweep(now);
    // Delete first so that Map order is least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, { level, at: now, rate });
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (drained(b, now) <= 0) this.buckets.delete(k);
    if (this.buckets.size < MAX_KEYS) return;
    for (const k of this.buckets.keys()) {
      if (this.buckets.size <= LOW_WATER) break;
      this.buckets.delete(k);
    }
  }
}

function drained(b: Bucket, now: number): number {
  return Math.max(0, b.level - ((now - b.at) / 1000) * b.rate);
}

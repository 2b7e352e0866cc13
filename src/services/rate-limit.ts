/**
 * Rate limits as Synapse applies them (`rc_*` settings): a leaky bucket per
 * key that drains at `per_second` and holds `burst_count` actions. Over the
 * limit is 429 M_LIMIT_EXCEEDED with `retry_after_ms`.
 */
import type { RateLimitConfig } from '../config/types.js';
import { limitExceeded } from '../matrix-error.js';

interface Bucket {
  level: number;
  at: number;
}

const MAX_KEYS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * Counts one action for `key` (unless `update` is false) and throws
   * M_LIMIT_EXCEEDED when it would exceed the bucket. A rate of 0 or less
   * means no limit, as Synapse treats it.
   */
  check(key: string, cfg: RateLimitConfig, opts: { update?: boolean; now?: number; cost?: number } = {}): void {
    if (cfg.per_second <= 0 || !Number.isFinite(cfg.per_second)) return;
    const now = opts.now ?? Date.now();
    const cost = opts.cost ?? 1;
    const b = this.buckets.get(key);
    const level = b ? Math.max(0, b.level - ((now - b.at) / 1000) * cfg.per_second) : 0;
    if (level + cost > cfg.burst_count) {
      const waitMs = Math.ceil(((level + cost - cfg.burst_count) / cfg.per_second) * 1000);
      throw limitExceeded(Math.max(1, waitMs));
    }
    if (opts.update === false) return;
    if (!b && this.buckets.size >= MAX_KEYS) this.sweep(now, cfg);
    this.buckets.set(key, { level: level + cost, at: now });
  }

  /** Forgets a key (Synapse clears the failed-login bucket after a good login). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  private sweep(now: number, cfg: RateLimitConfig): void {
    for (const [k, b] of this.buckets) {
      if (b.level - ((now - b.at) / 1000) * cfg.per_second <= 0) this.buckets.delete(k);
    }
    if (this.buckets.size >= MAX_KEYS) this.buckets.clear();
  }
}

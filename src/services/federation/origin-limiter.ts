/**
 * Synapse's `rc_federation` (its FederationRateLimiter), per origin server,
 * over every authenticated federation request:
 * - requests in the last `window_size` ms beyond `reject_limit` are refused
 *   (429 `M_LIMIT_EXCEEDED`);
 * - beyond `sleep_limit` each waits `sleep_delay` ms first;
 * - at most `concurrent` are handled at once, the rest wait their turn.
 * Defaults are Synapse's (1 s, 10, 500 ms, 50, 3). A request's turn is
 * given back when its response is done (`release`). Origins that have gone
 * quiet are forgotten.
 */
import type { FederationRateLimitConfig } from '../../config/types.js';
import { limitExceeded } from '../../matrix-error.js';

interface OriginState {
  times: number[];
  active: number;
  waiting: (() => void)[];
}

/** Origins tracked at most; the quietest go first. */
const MAX_ORIGINS = 10_000;

export class FederationOriginLimiter {
  private readonly origins = new Map<string, OriginState>();

  constructor(
    private readonly cfg: FederationRateLimitConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** Waits for the origin's turn (or refuses); returns the function that gives the turn back, safe to call twice. */
  async admit(origin: string): Promise<() => void> {
    const st = this.state(origin);
    const now = this.now();
    const cutoff = now - this.cfg.window_size;
    while (st.times.length > 0 && st.times[0]! <= cutoff) st.times.shift();
    if (this.cfg.reject_limit > 0 && st.times.length >= this.cfg.reject_limit) {
      const oldest = st.times[0] ?? now;
      throw limitExceeded(Math.max(1, oldest + this.cfg.window_size - now));
    }
    st.times.push(now);
    if (this.cfg.sleep_limit > 0 && st.times.length > this.cfg.sleep_limit && this.cfg.sleep_delay > 0) {
      await new Promise((r) => setTimeout(r, this.cfg.sleep_delay).unref());
    }
    const concurrent = Math.max(1, this.cfg.concurrent);
    // A waiter is handed the turn of the request that ends (still counted in `active`).
    if (st.active >= concurrent) await new Promise<void>((r) => st.waiting.push(r));
    else st.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = st.waiting.shift();
      if (next) next();
      else st.active--;
    };
  }

  private state(origin: string): OriginState {
    let st = this.origins.get(origin);
    if (st) {
      // Most recently used last.
      this.origins.delete(origin);
      this.origins.set(origin, st);
      return st;
    }
    st = { times: [], active: 0, waiting: [] };
    this.origins.set(origin, st);
    if (this.origins.size > MAX_ORIGINS) {
      for (const [k, v] of this.origins) {
        if (this.origins.size <= MAX_ORIGINS) break;
        if (v.active === 0 && v.waiting.length === 0) this.origins.delete(k);
      }
    }
    return st;
  }
}

/**
 * A destination's retry schedule (as Synapse's `destinations` table keeps
 * it): after a failure the next try waits `retry_interval` from
 * `retry_last_ts`. The first failure waits the minimum; each further one
 * multiplies the interval (with up to ±10 % jitter, so servers that failed
 * together do not retry together), up to the maximum. Success resets it.
 */
import type { SenderSettings } from './settings.js';

type Schedule = Pick<SenderSettings, 'minRetryMs' | 'retryMultiplier' | 'maxRetryMs'>;

/** The interval after one more failure, given the current one (0 or null: none yet). */
export function nextRetryInterval(current: number | null, s: Schedule, random: () => number = Math.random): number {
  if (!current || current <= 0) return s.minRetryMs;
  const jitter = 0.9 + 0.2 * random();
  return Math.min(s.maxRetryMs, Math.max(s.minRetryMs, Math.round(current * s.retryMultiplier * jitter)));
}

/** Milliseconds until the destination may be tried again (0: now). */
export function backoffRemaining(row: { retry_last_ts: number | null; retry_interval: number | null }, now: number): number {
  if (!row.retry_last_ts || !row.retry_interval) return 0;
  return Math.max(0, row.retry_last_ts + row.retry_interval - now);
}

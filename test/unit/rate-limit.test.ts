/**
 * The in-memory leaky buckets behind every rc_* limit: Synapse's counting
 * (burst, drain, cost, update=false), overrides, refunds, and bounded
 * memory (drained buckets are swept; past the cap the least recently used
 * go first). Times are passed in, so nothing here waits.
 */
import { describe, expect, it } from 'vitest';
import { MatrixError } from '../../src/matrix-error.js';
import { RateLimiter, type RatelimitOverride } from '../../src/services/rate-limit.js';

const CFG = { per_second: 1, burst_count: 3 };

function retryAfter(fn: () => void): number {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MatrixError);
    const m = err as MatrixError;
    expect(m.statusCode).toBe(429);
    expect(m.errcode).toBe('M_LIMIT_EXCEEDED');
    return m.extra.retry_after_ms as number;
  }
  throw new Error('not limited');
}

describe('RateLimiter', () => {
  it('allows the burst, then limits until enough has drained; a refused action counts nothing', () => {
    const l = new RateLimiter();
    for (let i = 0; i < 3; i++) l.check('k', CFG, { now: 0 });
    expect(retryAfter(() => l.check('k', CFG, { now: 0 }))).toBe(1000);
    expect(retryAfter(() => l.check('k', CFG, { now: 400 }))).toBe(600);
    l.check('k', CFG, { now: 1000 });
    expect(l.allow('k', CFG, { now: 1000 })).toBe(false);
    expect(l.allow('other', CFG, { now: 1000 })).toBe(true);
  });

  it('update: false only asks; cost counts several actions at once; rate 0 means no limit', () => {
    const l = new RateLimiter();
    for (let i = 0; i < 10; i++) l.check('k', CFG, { now: 0, update: false });
    expect(l.allow('k', CFG, { now: 0, cost: 3 })).toBe(true);
    expect(l.allow('k', CFG, { now: 0 })).toBe(false);
    for (let i = 0; i < 10; i++) l.check('off', { per_second: 0, burst_count: 0 }, { now: 0 });
  });

  it('record counts past the limit; refund gives back', () => {
    const l = new RateLimiter();
    for (let i = 0; i < 5; i++) l.record('k', CFG, 1, 0);
    expect(retryAfter(() => l.check('k', CFG, { now: 0 }))).toBe(3000);
    l.refund('k', 3, 0);
    expect(l.allow('k', CFG, { now: 0 })).toBe(true);
  });

  it('an override of 0 messages per second exempts the user; other overrides do not', () => {
    const overrides = new Map<string, RatelimitOverride>([
      ['@free:x', { messages_per_second: 0, burst_count: 0 }],
      ['@paced:x', { messages_per_second: 5, burst_count: 5 }],
    ]);
    const l = new RateLimiter({ get: (u) => overrides.get(u) });
    for (let i = 0; i < 10; i++) l.check('a', CFG, { now: 0, user: '@free:x' });
    for (let i = 0; i < 3; i++) l.check('b', CFG, { now: 0, user: '@paced:x' });
    expect(l.allow('b', CFG, { now: 0, user: '@paced:x' })).toBe(false);
    expect(l.isExempt('@free:x')).toBe(true);
    expect(l.isExempt('@paced:x')).toBe(false);
  });

  it('sweeps drained buckets, each at its own rate, at most once a minute', () => {
    const l = new RateLimiter();
    for (let i = 0; i < 1000; i++) l.check(`fast${i}`, { per_second: 1, burst_count: 3 }, { now: 0 });
    for (let i = 0; i < 10; i++) l.check(`slow${i}`, { per_second: 0.001, burst_count: 3 }, { now: 0 });
    expect(l.size).toBe(1010);
    l.check('trigger', CFG, { now: 61_000 });
    expect(l.size).toBe(11);
  });

  it('holds at most 100 000 buckets, dropping the least recently used first', () => {
    const l = new RateLimiter();
    const slow = { per_second: 0.0001, burst_count: 3 };
    l.check('old', slow, { now: 0 });
    l.check('kept', slow, { now: 0 });
    for (let i = 0; i < 50_000; i++) l.check(`a${i}`, slow, { now: 1 });
    l.check('kept', slow, { now: 2 }); // touched: newer than the first 50 000
    for (let i = 0; i < 60_000; i++) l.check(`b${i}`, slow, { now: 3 });
    expect(l.size).toBeLessThanOrEqual(100_000);
    expect(l.size).toBeGreaterThan(90_000);
    // 'old' was forgotten (its count gone), 'kept' was not (2 of 3 used).
    for (let i = 0; i < 2; i++) l.check('old', slow, { now: 4 });
    expect(l.allow('old', slow, { now: 4 })).toBe(true);
    expect(l.allow('kept', slow, { now: 4 })).toBe(true);
    expect(l.allow('kept', slow, { now: 4 })).toBe(false);
  });
});

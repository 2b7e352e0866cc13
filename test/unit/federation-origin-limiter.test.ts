/** rc_federation per origin (Synapse's FederationRateLimiter): reject past the limit, sleep past the sleep limit, a few at a time. */
import { describe, expect, it } from 'vitest';
import { FederationOriginLimiter } from '../../src/services/federation/origin-limiter.js';

const cfg = { window_size: 1000, sleep_limit: 3, sleep_delay: 20, reject_limit: 5, concurrent: 2 };

describe('FederationOriginLimiter', () => {
  it('refuses past reject_limit in the window with 429 and retry_after_ms, per origin, and forgets old requests', async () => {
    let now = 10_000;
    const l = new FederationOriginLimiter({ ...cfg, sleep_limit: 0, concurrent: 100 }, () => now);
    for (let i = 0; i < 5; i++) (await l.admit('a.example'))();
    await expect(l.admit('a.example')).rejects.toMatchObject({ statusCode: 429, errcode: 'M_LIMIT_EXCEEDED', extra: { retry_after_ms: 1000 } });
    // Another origin has its own count.
    (await l.admit('b.example'))();
    now += 1001;
    (await l.admit('a.example'))();
  });

  it('delays requests past sleep_limit by sleep_delay', async () => {
    const l = new FederationOriginLimiter({ ...cfg, concurrent: 100 });
    for (let i = 0; i < 3; i++) (await l.admit('a.example'))();
    let admitted = false;
    const fourth = l.admit('a.example').then((r) => {
      admitted = true;
      return r;
    });
    await Promise.resolve();
    expect(admitted).toBe(false);
    (await fourth)();
    expect(admitted).toBe(true);
  });

  it('handles at most `concurrent` at once; the next waits for a turn to be given back (once)', async () => {
    const l = new FederationOriginLimiter({ ...cfg, sleep_limit: 0 });
    const r1 = await l.admit('a.example');
    const r2 = await l.admit('a.example');
    let third = false;
    const p3 = l.admit('a.example').then((r) => {
      third = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(third).toBe(false);
    r1();
    r1();
    const r3 = await p3;
    expect(third).toBe(true);
    // r1 twice gave back one turn: a fourth still waits for r2 or r3.
    let fourth = false;
    const p4 = l.admit('a.example').then((r) => {
      fourth = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(fourth).toBe(false);
    r2();
    (await p4)();
    r3();
  });
});

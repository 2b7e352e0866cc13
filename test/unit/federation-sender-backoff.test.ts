/**
 * The federation sender's retry schedule (backoff.ts) and its settings
 * (settings.ts): the first failure waits the minimum, each further one
 * about twice as long (±10 % jitter) up to the maximum; the keys Synapse
 * names, with Axon's defaults (10 s, ×2, one day), and refusals of bad values.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import type { HomeserverConfig } from '../../src/config/types.js';
import { backoffRemaining, nextRetryInterval } from '../../src/services/federation/sender/backoff.js';
import { SENDER_DEFAULTS, senderSettings } from '../../src/services/federation/sender/settings.js';

const config = (raw: Record<string, unknown>) => ({ raw }) as unknown as HomeserverConfig;

describe('nextRetryInterval', () => {
  it('starts at the minimum, doubles, and stops at the maximum', () => {
    const mid = () => 0.5; // no jitter
    let i = nextRetryInterval(null, SENDER_DEFAULTS, mid);
    const seen = [i];
    while (i < SENDER_DEFAULTS.maxRetryMs) seen.push((i = nextRetryInterval(i, SENDER_DEFAULTS, mid)));
    expect(seen.slice(0, 4)).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(seen.at(-1)).toBe(24 * 3600 * 1000);
    expect(seen.length).toBe(15);
    expect(nextRetryInterval(0, SENDER_DEFAULTS, mid)).toBe(10_000);
  });

  it('jitters growth by at most 10 %', () => {
    expect(nextRetryInterval(10_000, SENDER_DEFAULTS, () => 0)).toBe(18_000);
    expect(nextRetryInterval(10_000, SENDER_DEFAULTS, () => 1)).toBe(22_000);
  });

  it('backoffRemaining counts down from retry_last_ts + retry_interval', () => {
    expect(backoffRemaining({ retry_last_ts: 1000, retry_interval: 500 }, 1200)).toBe(300);
    expect(backoffRemaining({ retry_last_ts: 1000, retry_interval: 500 }, 2000)).toBe(0);
    expect(backoffRemaining({ retry_last_ts: 0, retry_interval: 0 }, 5)).toBe(0);
    expect(backoffRemaining({ retry_last_ts: null, retry_interval: null }, 5)).toBe(0);
  });
});

describe('senderSettings', () => {
  it('defaults', () => {
    expect(senderSettings(config({}))).toEqual(SENDER_DEFAULTS);
  });

  it('reads send_federation and the federation retry keys', () => {
    expect(
      senderSettings(
        config({ send_federation: false, federation: { destination_min_retry_interval: '1m', destination_retry_multiplier: 5, destination_max_retry_interval: '2h' } }),
      ),
    ).toEqual({ enabled: false, minRetryMs: 60_000, retryMultiplier: 5, maxRetryMs: 7_200_000 });
  });

  it.each([
    [{ send_federation: 'yes' }, 'send_federation'],
    [{ federation: { destination_min_retry_interval: 'soon' } }, 'federation.destination_min_retry_interval'],
    [{ federation: { destination_retry_multiplier: 0.5 } }, 'federation.destination_retry_multiplier'],
  ])('refuses %j', (raw, key) => {
    expect(() => senderSettings(config(raw))).toThrow(ConfigError);
    expect(() => senderSettings(config(raw))).toThrow(key);
  });
});

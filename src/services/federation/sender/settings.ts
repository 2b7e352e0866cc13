/**
 * The federation sender's settings, read from the raw homeserver.yaml:
 * `send_federation` (Synapse's; default true) and the retry schedule under
 * `federation:` with Synapse's key names (`destination_min_retry_interval`,
 * `destination_retry_multiplier`, `destination_max_retry_interval`), whose
 * defaults here are 10 s, ×2 and one day.
 */
import { ConfigError } from '../../../config/errors.js';
import { parseDuration } from '../../../config/durations.js';
import type { HomeserverConfig } from '../../../config/types.js';

export interface SenderSettings {
  enabled: boolean;
  minRetryMs: number;
  retryMultiplier: number;
  maxRetryMs: number;
}

export const SENDER_DEFAULTS: SenderSettings = {
  enabled: true,
  minRetryMs: 10_000,
  retryMultiplier: 2,
  maxRetryMs: 24 * 60 * 60 * 1000,
};

function duration(v: unknown, key: string, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  try {
    return parseDuration(v);
  } catch (err) {
    throw new ConfigError((err as Error).message, { key });
  }
}

export function senderSettings(config: HomeserverConfig): SenderSettings {
  const raw = config.raw;
  const send = raw['send_federation'];
  if (send !== undefined && send !== null && typeof send !== 'boolean') throw new ConfigError('expected true or false', { key: 'send_federation' });
  const fed = raw['federation'];
  const f = typeof fed === 'object' && fed !== null && !Array.isArray(fed) ? (fed as Record<string, unknown>) : {};
  const mult = f['destination_retry_multiplier'];
  if (mult !== undefined && mult !== null && !(typeof mult === 'number' && Number.isFinite(mult) && mult >= 1)) {
    throw new ConfigError('expected a number not below 1', { key: 'federation.destination_retry_multiplier' });
  }
  const minRetryMs = Math.max(1, duration(f['destination_min_retry_interval'], 'federation.destination_min_retry_interval', SENDER_DEFAULTS.minRetryMs));
  return {
    enabled: send !== false,
    minRetryMs,
    retryMultiplier: typeof mult === 'number' ? mult : SENDER_DEFAULTS.retryMultiplier,
    maxRetryMs: Math.max(minRetryMs, duration(f['destination_max_retry_interval'], 'federation.destination_max_retry_interval', SENDER_DEFAULTS.maxRetryMs)),
  };
}

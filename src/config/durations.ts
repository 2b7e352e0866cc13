/**
 * Synapse's duration and size forms, as `synapse/config/_base.py`
 * (`Config.parse_duration`, `Config.parse_size`) reads them and the
 * configuration manual ("Config Conventions") documents them:
 *
 * Durations: an integer is milliseconds; a string is digits with an optional
 * one-letter suffix, case-sensitive:
 *   s = second, m = minute, h = hour, d = day, w = week (7 d), y = year (365 d);
 * no suffix means milliseconds ("86400000"). Axon also accepts "ms" (e.g.
 * "500ms"), which Synapse itself would reject; everything Synapse accepts means
 * the same here.
 *
 * Sizes: an integer is bytes; a string is digits with an optional suffix,
 * case-sensitive and binary:
 *   K = 1024, M = 1024^2, G = 1024^3, T = 1024^4 bytes;
 * no suffix means bytes. "50m" or "10KB" are errors, as in Synapse.
 *
 * Fractions ("1.5h") and negative values are not accepted (Synapse uses int()).
 */
import { InvalidValueError, describeValue } from './errors.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: SECOND,
  m: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
  y: 365 * DAY,
};

export const SIZE_UNITS: Readonly<Record<string, number>> = {
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

const DURATION_RE = /^(\d+)(ms|s|m|h|d|w|y)?$/;
const SIZE_RE = /^(\d+)([KMGT])?$/;

const DURATION_HINT = 'expected a duration such as "30s", "5m", "1h", "7d", "1w", "1y", "500ms" or a whole number of milliseconds';
const SIZE_HINT = 'expected a size such as "10K", "50M", "1G" (1K = 1024 bytes) or a whole number of bytes';

function checked(n: number, hint: string, value: unknown): number {
  if (!Number.isSafeInteger(n)) throw new InvalidValueError(`${hint}; ${describeValue(value)} is too large`);
  return n;
}

/** A Synapse duration (see above) as milliseconds. Throws InvalidValueError. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return checked(value, DURATION_HINT, value);
    throw new InvalidValueError(`${DURATION_HINT}, got ${describeValue(value)}`);
  }
  if (typeof value === 'string') {
    const m = DURATION_RE.exec(value);
    if (m) return checked(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!, DURATION_HINT, value);
  }
  throw new InvalidValueError(`${DURATION_HINT}, got ${describeValue(value)}`);
}

/** A Synapse size (see above) as bytes. Throws InvalidValueError. */
export function parseSize(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return checked(value, SIZE_HINT, value);
    throw new InvalidValueError(`${SIZE_HINT}, got ${describeValue(value)}`);
  }
  if (typeof value === 'string') {
    const m = SIZE_RE.exec(value);
    if (m) return checked(Number(m[1]) * (m[2] ? SIZE_UNITS[m[2]]! : 1), SIZE_HINT, value);
  }
  throw new InvalidValueError(`${SIZE_HINT}, got ${describeValue(value)}`);
}

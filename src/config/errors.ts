import { StartupError } from '../startup-error.js';

/**
 * The one error the config loader throws. Its message always says where the
 * bad value came from, as `<file>: <key path>: <what is wrong>`, e.g.
 *   homeserver.yaml: listeners[0].port: expected an integer between 1 and 65535, got "abc"
 * so an operator can go straight to the line.
 */
export class ConfigError extends StartupError {
  /** The config file (as given on the command line or found in a conf.d directory), or "environment". */
  readonly file?: string;
  /** The key path inside the file, e.g. `listeners[0].port`. */
  readonly key?: string;

  constructor(detail: string, where: { file?: string; key?: string } = {}) {
    const prefix = [where.file, where.key].filter((p) => p !== undefined && p !== '').join(': ');
    super(prefix ? `${prefix}: ${detail}` : detail);
    this.name = 'ConfigError';
    this.file = where.file;
    this.key = where.key;
  }
}

/**
 * A value that does not have the expected form. Thrown by the value parsers
 * (durations, sizes); the loader turns it into a ConfigError naming the key
 * and file.
 */
export class InvalidValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidValueError';
  }
}

/** A short, log-safe rendering of a bad value for "got ..." in messages. */
export function describeValue(value: unknown, secret = false): string {
  if (value === null || value === undefined) return 'nothing';
  if (secret) return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
  if (typeof value === 'string') {
    const s = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(s);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

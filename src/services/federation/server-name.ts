/**
 * Server names as the spec's appendix defines them: `hostname[:port]`,
 * where hostname is an IPv4 literal, an IPv6 literal in brackets, or a DNS
 * name. Also the parsing of `m.server` in /.well-known/matrix/server and
 * the caching decision for its response.
 */
import { isIP } from 'node:net';

export interface ParsedServerName {
  /** The host as written (IPv6 keeps its brackets). */
  host: string;
  /** The host without brackets, for connecting and DNS. */
  bareHost: string;
  port?: number;
  /** Whether the host is an IP literal. */
  ip: boolean;
}

const DNS_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})$/;

/** Parses `hostname[:port]`; undefined when it is not a valid server name. */
export function parseServerName(name: string): ParsedServerName | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) return undefined;
  let host: string;
  let portStr: string | undefined;
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) return undefined;
    host = name.slice(0, close + 1);
    const rest = name.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portStr = rest.slice(1);
    }
    if (isIP(host.slice(1, -1)) !== 6) return undefined;
  } else {
    const colon = name.lastIndexOf(':');
    if (colon >= 0) {
      host = name.slice(0, colon);
      portStr = name.slice(colon + 1);
    } else {
      host = name;
    }
    if (host.includes(':')) return undefined;
    if (isIP(host) !== 4 && !DNS_NAME.test(host)) return undefined;
  }
  const out: ParsedServerName = { host, bareHost: host.replace(/^\[|\]$/g, ''), ip: isIP(host.replace(/^\[|\]$/g, '')) !== 0 };
  if (portStr !== undefined) {
    if (!/^\d{1,5}$/.test(portStr)) return undefined;
    const port = Number(portStr);
    if (port < 1 || port > 65535) return undefined;
    out.port = port;
  }
  return out;
}

/** The `m.server` value of a well-known response body, if valid. */
export function parseWellKnownServer(body: unknown): ParsedServerName | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const v = (body as Record<string, unknown>)['m.server'];
  if (typeof v !== 'string') return undefined;
  return parseServerName(v);
}

export const WELL_KNOWN_DEFAULT_CACHE_MS = 24 * 3600_000;
export const WELL_KNOWN_MAX_CACHE_MS = 48 * 3600_000;
/** As Synapse: a response is kept at least this long, whatever it says. */
export const WELL_KNOWN_MIN_CACHE_MS = 5 * 60_000;
export const WELL_KNOWN_ERROR_CACHE_MS = 3600_000;

/**
 * How long a successful well-known response is cached: Cache-Control
 * max-age (s-maxage is for shared caches, ignored), else Expires (against
 * Date, or now), else 24 h; `no-store`/`no-cache` count as 0; then clamped
 * to [5 min, 48 h].
 */
export function wellKnownCacheMs(headers: { cacheControl?: string | undefined; expires?: string | undefined; date?: string | undefined }, now: number): number {
  let ms: number | undefined;
  const cc = headers.cacheControl;
  if (cc !== undefined) {
    for (const raw of cc.split(',')) {
      const d = raw.trim().toLowerCase();
      if (d === 'no-store' || d === 'no-cache') {
        ms = 0;
        break;
      }
      const m = /^max-age\s*=\s*"?(\d+)"?$/.exec(d);
      if (m) ms = Number(m[1]) * 1000;
    }
  }
  if (ms === undefined && headers.expires !== undefined) {
    const exp = Date.parse(headers.expires);
    const base = headers.date !== undefined && !Number.isNaN(Date.parse(headers.date)) ? Date.parse(headers.date) : now;
    // An unparsable Expires (e.g. "0") means already expired.
    ms = Number.isNaN(exp) ? 0 : Math.max(0, exp - base);
  }
  if (ms === undefined) ms = WELL_KNOWN_DEFAULT_CACHE_MS;
  return Math.min(WELL_KNOWN_MAX_CACHE_MS, Math.max(WELL_KNOWN_MIN_CACHE_MS, ms));
}

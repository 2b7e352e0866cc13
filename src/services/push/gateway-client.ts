/**
 * POSTs notifications to push gateways (`/_matrix/push/v1/notify`).
 *
 * - Addresses: as Synapse, requests to push gateways obey
 *   `ip_range_blacklist` (by default the private, loopback and link-local
 *   ranges) unless `ip_range_whitelist` lets them through. The check runs
 *   inside the socket's own DNS lookup and again on the connected peer, so
 *   a host name cannot resolve to one address when checked and another
 *   when connected.
 * - Bounds: connect, headers and body each time out; answers are read up to
 *   64 KiB; redirects are not followed. A non-2xx status, a timeout or an
 *   answer that is not a JSON object is a failure (the caller retries).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { Socket } from 'node:net';
import { Agent, buildConnector, request } from 'undici';
import { IpRangeSet, parseIp } from '../media/ip-ranges.js';

/** Synapse's default `ip_range_blacklist`: addresses no outbound request may reach unless whitelisted. */
export const DEFAULT_IP_RANGE_BLACKLIST = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '192.0.0.0/24',
  '169.254.0.0/16',
  '192.88.99.0/24',
  '198.18.0.0/15',
  '192.0.2.0/24',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '::1/128',
  'fe80::/10',
  'fc00::/7',
  '2001:db8::/32',
  'ff00::/8',
  'fec0::/10',
];

const MAX_ANSWER_BYTES = 64 * 1024;

export interface GatewayClientOptions {
  blacklist: readonly string[];
  whitelist: readonly string[];
  /** Connect, response headers and response body, each. */
  timeoutMs: number;
  userAgent: string;
}

export type GatewayResult = { ok: true; rejected: string[] } | { ok: false; error: string };

class BlockedAddressError extends Error {
  constructor(host: string) {
    super(`the address of ${host} is refused by ip_range_blacklist`);
    this.name = 'BlockedAddressError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

export class GatewayClient {
  private readonly black: IpRangeSet;
  private readonly white: IpRangeSet;
  private readonly unspecified = new IpRangeSet(['0.0.0.0', '::']);
  private readonly agent: Agent;

  constructor(private readonly o: GatewayClientOptions) {
    this.black = new IpRangeSet(o.blacklist, 'ip_range_blacklist');
    this.white = new IpRangeSet(o.whitelist, 'ip_range_whitelist');
    const lookup = (hostname: string, options: { family?: number; all?: boolean; hints?: number }, callback: LookupCallback) => {
      dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints ?? 0 }, (err, addresses) => {
        if (err) return callback(err, []);
        if (addresses.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
        if (addresses.some((a) => !this.allows(a.address))) return callback(new BlockedAddressError(hostname), []);
        if (options.all) return callback(null, addresses);
        return callback(null, addresses[0]!.address, addresses[0]!.family);
      });
    };
    const base = buildConnector({ lookup, timeout: o.timeoutMs } as buildConnector.BuildOptions);
    const connect: buildConnector.connector = (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        const peer = (socket as Socket).remoteAddress;
        if (peer === undefined || !this.allows(peer)) {
          socket.destroy();
          return callback(new BlockedAddressError(opts.hostname), null);
        }
        return callback(null, socket);
      });
    this.agent = new Agent({ connect, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs, connections: 8 });
  }

  /** Whether an IP address may be connected to. */
  allows(address: string): boolean {
    const a = parseIp(address);
    if (!a || this.unspecified.contains(a)) return false;
    return !this.black.contains(a) || this.white.contains(a);
  }

  /** POSTs `body` as JSON; never throws. */
  async notify(url: string, body: unknown, signal: AbortSignal): Promise<GatewayResult> {
    try {
      const u = new URL(url);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, error: `unsupported scheme ${u.protocol}` };
      const literal = parseIp(u.hostname);
      if (literal && !this.allows(u.hostname.replace(/^\[|\]$/g, ''))) return { ok: false, error: new BlockedAddressError(u.hostname).message };
      const res = await request(u, {
        dispatcher: this.agent,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': this.o.userAgent },
        body: JSON.stringify(body),
        signal,
      });
      const chunks: Buffer[] = [];
      let length = 0;
      for await (const chunk of res.body) {
        const b = chunk as Buffer;
        length += b.length;
        if (length > MAX_ANSWER_BYTES) {
          res.body.destroy();
          return { ok: false, error: 'answer too large' };
        }
        chunks.push(b);
      }
      if (res.statusCode < 200 || res.statusCode >= 300) return { ok: false, error: `HTTP ${res.statusCode}` };
      let answer: unknown;
      try {
        answer = JSON.parse(Buffer.concat(chunks, length).toString('utf8'));
      } catch {
        return { ok: false, error: 'answer is not JSON' };
      }
      if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return { ok: false, error: 'answer is not a JSON object' };
      const rejected = (answer as Record<string, unknown>)['rejected'];
      return { ok: true, rejected: Array.isArray(rejected) ? rejected.filter((k): k is string => typeof k === 'string') : [] };
    } catch (err) {
      return { ok: false, error: describe(err) };
    }
  }

  async close(): Promise<void> {
    await this.agent.destroy().catch(() => undefined);
  }
}

/** A short reason for the log: the innermost message of the error chain. */
function describe(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof BlockedAddressError) return e.message;
    const cause = (e as Error & { cause?: unknown }).cause;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  const code = (err as { code?: string }).code;
  return e instanceof Error ? `${code ? `${code}: ` : ''}${e.message}` : String(err);
}

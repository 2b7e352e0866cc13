/**
 * Server name resolution (server-server API, "Resolving server names"):
 * where to connect for a server name, which Host header to send and which
 * name the TLS certificate must hold.
 *
 * 1. An IP literal: that address, its port or 8448; Host = the server name,
 *    certificate for the IP.
 * 2. A host name with an explicit port: that host and port; Host = the
 *    server name, certificate for the host name.
 * 3. Otherwise GET https://<hostname>/.well-known/matrix/server (redirects
 *    followed, 5 at most; body capped at 50 KiB; JSON `m.server`), cached
 *    as its Cache-Control / Expires say (24 h by default, 5 min to 48 h),
 *    failures for 1 h. A delegated name goes through 1 and 2 again (Host
 *    and certificate then name the delegated host), else SRV
 *    `_matrix-fed._tcp.<delegated>`, else the deprecated
 *    `_matrix._tcp.<delegated>`, else <delegated>:8448; for SRV the
 *    connection goes to the target while Host and the certificate stay the
 *    delegated host name.
 * 4. Without a well-known answer: the same SRV steps on the host name,
 *    then <hostname>:8448.
 *
 * SRV lookups go through a node:dns/promises Resolver (injectable, so tests
 * can point it at a local responder); the well-known fetch through the
 * GuardedAgent it is given (ip_range_blacklist applies). The host names an
 * answer names are resolved to addresses when connecting, by that agent.
 */
import { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import { request } from 'undici';
import { blockedCause, type GuardedAgent } from '../outbound/guarded-agent.js';
import { parseServerName, parseWellKnownServer, WELL_KNOWN_ERROR_CACHE_MS, wellKnownCacheMs, type ParsedServerName } from './server-name.js';

export const DEFAULT_FEDERATION_PORT = 8448;
export const WELL_KNOWN_MAX_BYTES = 50 * 1024;
export const WELL_KNOWN_MAX_REDIRECTS = 5;

export interface ResolvedServer {
  serverName: string;
  /** Where to connect: an IP address (IPv6 without brackets) or a host name resolved when connecting. */
  connectHost: string;
  port: number;
  /** The Host header to send. */
  hostHeader: string;
  /** The name the server's certificate must be valid for (an IP literal for IP destinations; without brackets). */
  tlsServerName: string;
  /** How it was found, for logs and tests. */
  via: 'ip' | 'explicit-port' | 'well-known' | 'srv' | 'srv-legacy' | 'default-port';
}

export class ServerResolveError extends Error {
  constructor(
    readonly serverName: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServerResolveError';
  }
}

/** The part of node:dns/promises Resolver used here. */
export type SrvResolver = Pick<Resolver, 'resolveSrv'>;

export interface ServerResolverOptions {
  /** The agent the well-known fetch goes through (its policy and TLS settings apply). */
  agent: GuardedAgent;
  logger: Logger;
  /** For SRV lookups; a new node:dns/promises Resolver (system servers) when absent. */
  dns?: SrvResolver;
  now?: () => number;
  /** Whole well-known fetch (all hops), default 10 s. */
  wellKnownTimeoutMs?: number;
  /**
   * Test only: the port of the well-known URL (https://<hostname>:<port>/…)
   * instead of 443, so tests can serve it without privileges.
   */
  wellKnownPort?: number;
  /** Well-known cache entries kept at most (oldest dropped first), default 10,000. */
  maxCacheEntries?: number;
}

interface CacheEntry {
  /** undefined: no (valid) delegation. */
  value: ParsedServerName | undefined;
  expiresAt: number;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function withPort(host: string, port: number | undefined): string {
  return port === undefined ? host : `${host}:${port}`;
}

/** An SRV answer chosen as RFC 2782 says: lowest priority, weighted random among equals. */
export function pickSrv(
  records: readonly { name: string; port: number; priority: number; weight: number }[],
  random: () => number = Math.random,
): { name: string; port: number } | undefined {
  const usable = records.filter((r) => r.name !== '' && r.name !== '.');
  if (usable.length === 0) return undefined;
  const best = Math.min(...usable.map((r) => r.priority));
  const group = usable.filter((r) => r.priority === best);
  const total = group.reduce((n, r) => n + r.weight, 0);
  if (total === 0) return group[Math.floor(random() * group.length)] ?? group[0];
  let x = random() * total;
  for (const r of group) {
    x -= r.weight;
    if (x < 0) return r;
  }
  return group[group.length - 1];
}

type SrvRecords = readonly { name: string; port: number; priority: number; weight: number }[];

/** How long an SRV answer is kept (Node's resolver gives no TTL). */
export const SRV_CACHE_MS = 60 * 60 * 1000;
/** How long "no such SRV record" is kept. */
export const SRV_MISS_CACHE_MS = 10 * 60 * 1000;

export class ServerResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly srvCache = new Map<string, { records: SrvRecords; expiresAt: number }>();
  private readonly srvInflight = new Map<string, Promise<SrvRecords>>();
  private readonly inflight = new Map<string, Promise<ParsedServerName | undefined>>();
  private readonly dns: SrvResolver;
  private readonly now: () => number;

  constructor(private readonly o: ServerResolverOptions) {
    this.dns = o.dns ?? new Resolver({ timeout: 5000, tries: 2 });
    this.now = o.now ?? Date.now;
  }

  /** Where to send requests for `serverName`. Throws ServerResolveError for an invalid server name. */
  async resolve(serverName: string): Promise<ResolvedServer> {
    const parsed = parseServerName(serverName);
    if (!parsed) throw new ServerResolveError(serverName, `${JSON.stringify(serverName)} is not a valid server name`);
    const direct = this.direct(serverName, parsed, 'ip', 'explicit-port');
    if (direct) return direct;

    const delegated = await this.wellKnown(parsed.bareHost);
    if (delegated) {
      const d = this.direct(serverName, delegated, 'well-known', 'well-known');
      if (d) return d;
      return this.srvOrDefault(serverName, delegated.bareHost);
    }
    return this.srvOrDefault(serverName, parsed.bareHost);
  }

  /** Steps 1 and 2 (and 3.1, 3.2 for a delegated name): an IP literal or an explicit port. */
  private direct(serverName: string, n: ParsedServerName, ipVia: ResolvedServer['via'], portVia: ResolvedServer['via']): ResolvedServer | undefined {
    if (n.ip) {
      return { serverName, connectHost: n.bareHost, port: n.port ?? DEFAULT_FEDERATION_PORT, hostHeader: withPort(n.host, n.port), tlsServerName: n.bareHost, via: ipVia };
    }
    if (n.port !== undefined) {
      return { serverName, connectHost: n.bareHost, port: n.port, hostHeader: withPort(n.host, n.port), tlsServerName: n.bareHost, via: portVia };
    }
    return undefined;
  }

  private async srvOrDefault(serverName: string, host: string): Promise<ResolvedServer> {
    for (const [prefix, via] of [
      ['_matrix-fed._tcp.', 'srv'],
      ['_matrix._tcp.', 'srv-legacy'],
    ] as const) {
      const target = await this.srv(`${prefix}${host}`);
      if (target) {
        return { serverName, connectHost: target.name.replace(/\.$/, ''), port: target.port, hostHeader: host, tlsServerName: host, via };
      }
    }
    return { serverName, connectHost: host, port: DEFAULT_FEDERATION_PORT, hostHeader: host, tlsServerName: host, via: 'default-port' };
  }

  /**
   * One SRV name's answer, cached: Node's resolver gives no TTL, so an
   * answer is kept an hour and "no such record" ten minutes; a failed lookup
   * (a timeout, SERVFAIL) is not cached, and uses a stale answer when there
   * is one, as Synapse's SRV resolver does. A target is picked per request
   * (RFC 2782 weights), so the records are what is kept.
   */
  private async srv(name: string): Promise<{ name: string; port: number } | undefined> {
    const now = this.now();
    const cached = this.srvCache.get(name);
    if (cached && cached.expiresAt > now) return pickSrv(cached.records);
    let pending = this.srvInflight.get(name);
    if (!pending) {
      pending = this.lookUpSrv(name, cached?.records).finally(() => this.srvInflight.delete(name));
      this.srvInflight.set(name, pending);
    }
    return pickSrv(await pending);
  }

  private async lookUpSrv(name: string, stale: SrvRecords | undefined): Promise<SrvRecords> {
    let records: SrvRecords;
    let ttl: number;
    try {
      records = await this.dns.resolveSrv(name);
      ttl = records.length > 0 ? SRV_CACHE_MS : SRV_MISS_CACHE_MS;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTFOUND' && code !== 'ENODATA') {
        this.o.logger.debug({ name, code }, 'SRV lookup failed');
        return stale ?? [];
      }
      records = [];
      ttl = SRV_MISS_CACHE_MS;
    }
    this.srvCache.delete(name);
    this.srvCache.set(name, { records, expiresAt: this.now() + ttl });
    const max = this.o.maxCacheEntries ?? 10_000;
    while (this.srvCache.size > max) this.srvCache.delete(this.srvCache.keys().next().value as string);
    return records;
  }

  /**
   * The delegated server name from https://<hostname>/.well-known/matrix/server,
   * or undefined when there is none (any failure); cached.
   */
  async wellKnown(hostname: string): Promise<ParsedServerName | undefined> {
    const now = this.now();
    const hit = this.cache.get(hostname);
    if (hit && hit.expiresAt > now) return hit.value;
    const running = this.inflight.get(hostname);
    if (running) return running;
    const p = this.fetchWellKnown(hostname)
      .then(({ value, cacheMs }) => {
        this.remember(hostname, value, cacheMs);
        return value;
      })
      .finally(() => this.inflight.delete(hostname));
    this.inflight.set(hostname, p);
    return p;
  }

  /** Forgets cached well-known answers (all, or one host's). */
  clearCache(hostname?: string): void {
    if (hostname === undefined) {
      this.cache.clear();
      this.srvCache.clear();
    } else {
      this.cache.delete(hostname);
      for (const prefix of ['_matrix-fed._tcp.', '_matrix._tcp.']) this.srvCache.delete(`${prefix}${hostname}`);
    }
  }

  private remember(hostname: string, value: ParsedServerName | undefined, cacheMs: number): void {
    this.cache.delete(hostname);
    const max = this.o.maxCacheEntries ?? 10_000;
    while (this.cache.size >= max) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
    this.cache.set(hostname, { value, expiresAt: this.now() + cacheMs });
  }

  private async fetchWellKnown(hostname: string): Promise<{ value: ParsedServerName | undefined; cacheMs: number }> {
    const fail = (why: string) => {
      this.o.logger.debug({ hostname, why }, 'no usable .well-known/matrix/server');
      return { value: undefined, cacheMs: WELL_KNOWN_ERROR_CACHE_MS };
    };
    const portPart = this.o.wellKnownPort === undefined ? '' : `:${this.o.wellKnownPort}`;
    let url = new URL(`https://${urlHost(hostname)}${portPart}/.well-known/matrix/server`);
    const signal = AbortSignal.timeout(this.o.wellKnownTimeoutMs ?? 10_000);
    try {
      for (let hop = 0; ; hop++) {
        this.o.agent.checkUrl(url);
        const res = await request(url, { method: 'GET', dispatcher: this.o.agent.dispatcher, signal, headers: { accept: 'application/json' } });
        if (res.statusCode >= 300 && res.statusCode < 400 && res.headers['location'] !== undefined) {
          await res.body.dump().catch(() => undefined);
          if (hop >= WELL_KNOWN_MAX_REDIRECTS) return fail('too many redirects');
          const loc = res.headers['location'];
          url = new URL(Array.isArray(loc) ? loc[0]! : loc, url);
          if (url.protocol !== 'https:') return fail('redirected away from https');
          continue;
        }
        if (res.statusCode !== 200) {
          await res.body.dump().catch(() => undefined);
          return fail(`status ${res.statusCode}`);
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > WELL_KNOWN_MAX_BYTES) {
            res.body.destroy();
            return fail('response larger than 50 KiB');
          }
          chunks.push(chunk);
        }
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail('not JSON');
        }
        const value = parseWellKnownServer(body);
        if (!value) return fail('no valid m.server');
        const h = (k: string) => {
          const v = res.headers[k];
          return Array.isArray(v) ? v.join(', ') : v;
        };
        return { value, cacheMs: wellKnownCacheMs({ cacheControl: h('cache-control'), expires: h('expires'), date: h('date') }, this.now()) };
      }
    } catch (err) {
      const blocked = blockedCause(err);
      return fail(blocked ? blocked.message : ((err as Error).message ?? String(err)));
    }
  }
}

export { parseServerName };

/**
 * Outbound federation requests: resolves the destination (ServerResolver),
 * connects through a GuardedAgent per destination (ip_range_blacklist /
 * ip_range_whitelist; TLS as `federation_verify_certificates`,
 * `federation_certificate_verification_whitelist`,
 * `federation_custom_ca_list` and `federation_client_minimum_tls_version`
 * say), sends the Host header and SNI the resolution names, signs the
 * request with our current key (X-Matrix), caps the response body and
 * parses it as JSON (`requestRaw`: hands it back as received, for media).
 * Every failure is a FederationRequestError.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { request } from 'undici';
import type { HomeserverConfig } from '../../config/types.js';
import { xMatrixAuthorization } from '../../core/x-matrix.js';
import { blockedCause, createGuardedAgent, type GuardedAgent } from '../outbound/guarded-agent.js';
import type { AddressPolicy } from '../outbound/ip-ranges.js';
import { outboundPolicy, outboundRanges } from '../outbound/outbound-config.js';
import type { ServerKeys } from '../server-keys.js';
import { ServerResolveError, ServerResolver, type ResolvedServer, type ServerResolverOptions } from './server-resolver.js';

export const DEFAULT_FEDERATION_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_FEDERATION_TIMEOUT_MS = 60_000;

export type QueryValue = string | number | boolean | readonly (string | number | boolean)[] | undefined;

export interface FederationRequestOptions {
  destination: string;
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path starting `/_matrix/`, segments already percent-encoded. */
  path: string;
  query?: Readonly<Record<string, QueryValue>>;
  /** A JSON value sent as the body (and signed as `content`). */
  body?: unknown;
  /** Whether to send an X-Matrix Authorization header (default true). */
  signed?: boolean;
  /** From sending the request to the end of the body (default 60 s); resolution has its own bounds (DNS 5 s × 2, well-known 10 s). */
  timeoutMs?: number;
  /** Response body cap in bytes (default 10 MiB). */
  maxBytes?: number;
  /** Aborts the request (a shutdown); the failure is a FederationRequestError like any other. */
  signal?: AbortSignal;
}

export interface FederationResponse<T> {
  status: number;
  json: T;
}

export class FederationRequestError extends Error {
  readonly destination: string;
  /** The HTTP status, when the remote server answered. */
  readonly status: number | undefined;
  /** The Matrix errcode of an error answer, when it had one. */
  readonly errcode: string | undefined;
  readonly reason: string;
  constructor(o: { destination: string; status?: number; errcode?: string; reason: string }) {
    super(`federation request to ${o.destination} failed: ${o.status !== undefined ? `${o.status} ` : ''}${o.errcode ? `${o.errcode} ` : ''}${o.reason}`);
    this.name = 'FederationRequestError';
    this.destination = o.destination;
    this.status = o.status;
    this.errcode = o.errcode;
    this.reason = o.reason;
  }
}

/** The body passed `maxBytes`. */
export class FederationResponseTooLarge extends FederationRequestError {
  constructor(o: { destination: string; status?: number; reason: string }) {
    super(o);
    this.name = 'FederationResponseTooLarge';
  }
}

/** What `requestRaw` answers: the response as received. */
export interface RawFederationResponse {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
}

const MIN_TLS: Record<HomeserverConfig['federation_client_minimum_tls_version'], 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'> = {
  '1': 'TLSv1',
  '1.1': 'TLSv1.1',
  '1.2': 'TLSv1.2',
  '1.3': 'TLSv1.3',
};

/** Whether `name` matches a `federation_certificate_verification_whitelist` entry (`*` matches any run of characters). */
export function matchesGlob(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
    'i',
  );
  return re.test(name);
}

/** The query string (without `?`) as sent and signed. */
export function encodeQuery(query: Readonly<Record<string, QueryValue>> | undefined): string {
  if (!query) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    const values: readonly (string | number | boolean)[] = Array.isArray(v) ? v : [v as string | number | boolean];
    for (const x of values) q.append(k, String(x));
  }
  return q.toString();
}

export interface FederationClientOptions {
  config: HomeserverConfig;
  keys: ServerKeys;
  logger: Logger;
  /** A resolver to use instead of one built here (tests: a local DNS responder, a well-known port). */
  resolver?: ServerResolver;
  /** For the resolver built here (when `resolver` is absent): SRV lookups, a clock, the test-only well-known port. */
  resolverOptions?: Omit<ServerResolverOptions, 'agent' | 'logger'>;
}

interface TlsSettings {
  ca: string[] | undefined;
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  verify: boolean;
  verifyWhitelist: readonly string[];
}

function readCas(paths: readonly string[] | undefined): string[] | undefined {
  return paths?.map((p) => readFileSync(p, 'utf8'));
}

export class FederationClient {
  readonly resolver: ServerResolver;
  private readonly policy: AddressPolicy;
  private readonly tls: TlsSettings;
  private readonly agents = new Map<string, GuardedAgent>();
  private readonly ownAgents: GuardedAgent[] = [];
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly o: FederationClientOptions) {
    this.log = o.logger;
    this.policy = outboundPolicy(outboundRanges(o.config));
    this.tls = {
      ca: readCas(o.config.federation_custom_ca_list),
      minVersion: MIN_TLS[o.config.federation_client_minimum_tls_version],
      verify: o.config.federation_verify_certificates,
      verifyWhitelist: o.config.federation_certificate_verification_whitelist,
    };
    if (o.resolver) {
      this.resolver = o.resolver;
    } else {
      const wk = this.makeAgent(this.tls.verify);
      this.ownAgents.push(wk);
      this.resolver = new ServerResolver({ ...o.resolverOptions, agent: wk, logger: o.logger });
    }
  }

  /** A GuardedAgent with the federation TLS settings (also for a resolver's well-known fetches). */
  makeAgent(verify: boolean): GuardedAgent {
    const tls: NonNullable<Parameters<typeof createGuardedAgent>[0]['tls']> = { minVersion: this.tls.minVersion, rejectUnauthorized: verify };
    if (this.tls.ca) tls.ca = this.tls.ca;
    return createGuardedAgent({ policy: this.policy, connectTimeoutMs: 10_000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000, connections: 8, tls });
  }

  private agentFor(destination: string, resolved: ResolvedServer): GuardedAgent {
    const verify = this.tls.verify && !this.tls.verifyWhitelist.some((p) => matchesGlob(p, resolved.tlsServerName));
    const key = `${verify ? 'v' : 'n'}|${destination}`;
    let a = this.agents.get(key);
    if (!a) {
      a = this.makeAgent(verify);
      this.agents.set(key, a);
    }
    return a;
  }

  /** Whether federation_domain_whitelist (when set) lets us talk to `destination`. */
  allowsDestination(destination: string): boolean {
    const wl = this.o.config.federation_domain_whitelist;
    return wl === undefined || wl.includes(destination);
  }

  async request<T = unknown>(r: FederationRequestOptions): Promise<FederationResponse<T>> {
    const { destination } = r;
    const fail = (reason: string, extra: { status?: number; errcode?: string } = {}) => new FederationRequestError({ destination, reason, ...extra });
    const { status, body: raw } = await this.send(r, 'application/json');
    const text = raw.toString('utf8');
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
      if (status >= 200 && status < 300) throw fail('the response is not JSON', { status });
    }
    if (status < 200 || status >= 300) {
      const o = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
      const extra: { status: number; errcode?: string } = { status };
      if (typeof o['errcode'] === 'string') extra.errcode = o['errcode'];
      throw fail(typeof o['error'] === 'string' ? o['error'] : `HTTP ${status}`, extra);
    }
    if (json === undefined) throw fail('the response is empty', { status });
    this.log.debug({ destination, method: r.method, path: r.path, status }, 'federation request');
    return { status, json: json as T };
  }

  /**
   * A request whose answer is not JSON (media): the status, headers and
   * body as received, whatever the status. The body is capped as for
   * `request` (FederationResponseTooLarge past `maxBytes`); a failure to
   * reach the server or read its answer is a FederationRequestError.
   */
  async requestRaw(r: FederationRequestOptions & { accept?: string }): Promise<RawFederationResponse> {
    const res = await this.send(r, r.accept ?? '*/*');
    this.log.debug({ destination: r.destination, method: r.method, path: r.path, status: res.status }, 'federation request');
    return res;
  }

  /** Resolves, signs and sends a request; answers the status, headers and the body (capped). */
  private async send(r: FederationRequestOptions, accept: string): Promise<RawFederationResponse> {
    const { destination } = r;
    const fail = (reason: string, extra: { status?: number; errcode?: string } = {}) => new FederationRequestError({ destination, reason, ...extra });
    if (this.closed) throw fail('the federation client is closed');
    if (!this.allowsDestination(destination)) throw fail('the destination is not in federation_domain_whitelist');
    if (!r.path.startsWith('/')) throw fail('the path must start with /');

    const timeout = AbortSignal.timeout(r.timeoutMs ?? DEFAULT_FEDERATION_TIMEOUT_MS);
    const signal = r.signal ? AbortSignal.any([timeout, r.signal]) : timeout;
    let resolved: ResolvedServer;
    try {
      resolved = await this.resolver.resolve(destination);
    } catch (err) {
      throw fail(err instanceof ServerResolveError ? err.message : `cannot resolve: ${(err as Error).message}`);
    }
    const qs = encodeQuery(r.query);
    const host = resolved.connectHost.includes(':') ? `[${resolved.connectHost}]` : resolved.connectHost;
    const url = new URL(`https://${host}:${resolved.port}${qs === '' ? r.path : `${r.path}?${qs}`}`);
    // What is signed is exactly what is sent (URL may percent-encode characters the caller left raw).
    const uri = url.pathname + url.search;
    const headers: Record<string, string> = { host: resolved.hostHeader, accept };
    let body: string | undefined;
    if (r.body !== undefined) {
      body = JSON.stringify(r.body);
      headers['content-type'] = 'application/json';
    }
    if (r.signed !== false) {
      try {
        headers['authorization'] = xMatrixAuthorization({ method: r.method, uri, origin: this.o.keys.serverName, destination, content: r.body }, this.o.keys.current);
      } catch (err) {
        throw fail(`cannot sign the request: ${(err as Error).message}`);
      }
    }
    const agent = this.agentFor(destination, resolved);
    const maxBytes = r.maxBytes ?? DEFAULT_FEDERATION_MAX_BYTES;
    const tooLarge = (status: number) => new FederationResponseTooLarge({ destination, status, reason: `response larger than ${maxBytes} bytes` });
    try {
      agent.checkUrl(url);
      const res = await request(url, {
        method: r.method,
        headers,
        body,
        dispatcher: agent.dispatcher,
        signal,
        // SNI and the certificate check: the name resolution chose (undici would take it from Host too).
        // (None for an IP: the certificate is then checked against the address connected to.)
        servername: isIP(resolved.tlsServerName) ? undefined : resolved.tlsServerName,
      } as Parameters<typeof request>[1]);
      const status = res.statusCode;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw tooLarge(status);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) {
          res.body.destroy();
          throw tooLarge(status);
        }
        chunks.push(chunk);
      }
      return { status, headers: res.headers, body: Buffer.concat(chunks, size) };
    } catch (err) {
      if (err instanceof FederationRequestError) throw err;
      const blocked = blockedCause(err);
      if (blocked) throw fail(blocked.message);
      throw fail(describeNetworkError(err));
    }
  }

  getJson<T = unknown>(destination: string, path: string, query?: FederationRequestOptions['query'], o: Partial<FederationRequestOptions> = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...o, destination, method: 'GET', path, ...(query ? { query } : {}) });
  }

  putJson<T = unknown>(destination: string, path: string, body: unknown, o: Partial<FederationRequestOptions> = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...o, destination, method: 'PUT', path, body });
  }

  postJson<T = unknown>(destination: string, path: string, body: unknown, o: Partial<FederationRequestOptions> = {}): Promise<FederationResponse<T>> {
    return this.request<T>({ ...o, destination, method: 'POST', path, body });
  }

  /** Closes every connection (per-destination agents and the well-known agent built here). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.agents.values(), ...this.ownAgents];
    this.agents.clear();
    await Promise.all(all.map((a) => a.destroy()));
  }
}

function describeNetworkError(err: unknown): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const msg = e.cause?.message ?? e.message ?? String(err);
  return code ? `${code}: ${msg}` : msg;
}

export function createFederationClient(o: FederationClientOptions): FederationClient {
  return new FederationClient(o);
}

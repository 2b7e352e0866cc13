/**
 * Fetching a URL on a user's behalf without letting them reach what the
 * server can reach (SSRF): http and https only; every address a host name
 * resolves to must pass the AddressPolicy, and the connection goes to that
 * checked address (the check happens inside the socket's own lookup, so a
 * second DNS answer cannot differ from the checked one); IP literals are
 * checked before connecting, and the connected socket's peer address once
 * more; each redirect is a new hop, checked the same way, up to a few; the
 * body is bounded in size and the whole fetch in time.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { Socket } from 'node:net';
import { Agent, buildConnector, request } from 'undici';
import { type AddressPolicy, parseIp } from './ip-ranges.js';

export class BlockedAddressError extends Error {
  constructor(readonly host: string) {
    super(`address of ${host} is blocked by the IP blacklist`);
    this.name = 'BlockedAddressError';
  }
}

export class FetchTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`response larger than ${limit} bytes`);
    this.name = 'FetchTooLargeError';
  }
}

/** The remote end answered, but not with something we can use (status, redirects, scheme). */
export class FetchFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FetchFailedError';
  }
}

export class FetchTimeoutError extends Error {
  constructor() {
    super('timed out fetching the URL');
    this.name = 'FetchTimeoutError';
  }
}

export interface SafeFetchOptions {
  policy: AddressPolicy;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** The whole fetch, redirects included. */
  timeoutMs: number;
  maxRedirects: number;
  userAgent: string;
  acceptLanguage?: string;
}

export interface Fetched {
  /** Where the content finally came from (after redirects). */
  url: URL;
  status: number;
  /** The Content-Type header as sent, or null. */
  contentType: string | null;
  body: Buffer;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** Drops a response body we will not read; its destruction is not an error anyone waits for. */
function discard(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Finds the error we raised somewhere in a chain of causes (undici may wrap socket errors). */
function rootCause<T extends Error>(err: unknown, type: new (...args: never[]) => T): T | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof type) return e;
    e = (e as Error & { cause?: unknown }).cause;
  }
  return undefined;
}

/** Fetches in flight at once, each holding up to maxBytes in memory; more wait their turn. */
const MAX_CONCURRENT = 16;

export class SafeFetcher {
  private readonly agent: Agent;
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly o: SafeFetchOptions) {
    const policy = o.policy;
    // Resolve every address, refuse the host if any is blocked, connect to a checked one.
    const lookup = (hostname: string, options: { family?: number; all?: boolean; hints?: number }, callback: LookupCallback) => {
      dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints ?? 0 }, (err, addresses) => {
        if (err) return callback(err, []);
        if (addresses.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
        if (addresses.some((a) => !policy.allows(a.address))) return callback(new BlockedAddressError(hostname), []);
        if (options.all) return callback(null, addresses);
        return callback(null, addresses[0]!.address, addresses[0]!.family);
      });
    };
    const base = buildConnector({ lookup, timeout: Math.min(o.timeoutMs, 10_000) } as buildConnector.BuildOptions);
    // And the peer of the connected socket, whatever path led to it.
    const connect: buildConnector.connector = (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        const peer = (socket as Socket).remoteAddress;
        if (peer === undefined || !policy.allows(peer)) {
          socket.destroy();
          return callback(new BlockedAddressError(opts.hostname), null);
        }
        return callback(null, socket);
      });
    this.agent = new Agent({ connect, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs, connections: 16 });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Checks a URL before it is requested: scheme, and an IP literal host against the policy. */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchFailedError(`cannot fetch ${url.protocol} URLs`);
    const literal = parseIp(url.hostname);
    if (literal && !this.o.policy.allows(url.hostname.replace(/^\[|\]$/g, ''))) throw new BlockedAddressError(url.hostname);
  }

  /**
   * GETs the URL, following redirects; rejects with BlockedAddressError,
   * FetchTooLargeError, FetchTimeoutError or FetchFailedError (or a
   * network error) when it cannot be fetched within the bounds.
   */
  async get(start: URL, accept = '*/*'): Promise<Fetched> {
    // A slot is taken here, or handed over by a finishing fetch.
    if (this.active < MAX_CONCURRENT) this.active++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    const signal = AbortSignal.timeout(this.o.timeoutMs);
    try {
      return await this.follow(start, accept, signal);
    } catch (err) {
      const blocked = rootCause(err, BlockedAddressError);
      if (blocked) throw blocked;
      const tooLarge = rootCause(err, FetchTooLargeError);
      if (tooLarge) throw tooLarge;
      if (signal.aborted || (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' || (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') {
        throw new FetchTimeoutError();
      }
      throw err;
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }

  private async follow(start: URL, accept: string, signal: AbortSignal): Promise<Fetched> {
    let url = new URL(start);
    url.hash = ''; // never sent
    for (let hop = 0; ; hop++) {
      this.checkUrl(url);
      const headers: Record<string, string> = { 'user-agent': this.o.userAgent, accept };
      if (this.o.acceptLanguage) headers['accept-language'] = this.o.acceptLanguage;
      const res = await request(url, { dispatcher: this.agent, method: 'GET', headers, signal });
      if (REDIRECTS.has(res.statusCode)) {
        discard(res.body);
        const location = res.headers['location'];
        const target = Array.isArray(location) ? location[0] : location;
        if (!target) throw new FetchFailedError(`redirect (${res.statusCode}) without a Location`);
        if (hop >= this.o.maxRedirects) throw new FetchFailedError('too many redirects');
        try {
          url = new URL(target, url);
          url.hash = '';
        } catch {
          throw new FetchFailedError('redirect to an invalid URL');
        }
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        discard(res.body);
        throw new FetchFailedError(`Got error ${res.statusCode}`);
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.o.maxBytes) {
        discard(res.body);
        throw new FetchTooLargeError(this.o.maxBytes);
      }
      const chunks: Buffer[] = [];
      let length = 0;
      for await (const chunk of res.body) {
        const b = chunk as Buffer;
        length += b.length;
        if (length > this.o.maxBytes) {
          discard(res.body);
          throw new FetchTooLargeError(this.o.maxBytes);
        }
        chunks.push(b);
      }
      const ct = res.headers['content-type'];
      return { url, status: res.statusCode, contentType: (Array.isArray(ct) ? ct[0] : ct) ?? null, body: Buffer.concat(chunks, length) };
    }
  }
}

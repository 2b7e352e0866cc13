/**
 * Fetching a URL on a user's behalf without letting them reach what the
 * server can reach (SSRF): http and https only; the connections go through
 * the shared outbound GuardedAgent (services/outbound/guarded-agent.ts:
 * every resolved address and the connected peer checked against the
 * AddressPolicy, IP literals before connecting); each redirect is a new
 * hop, checked the same way, up to a few; the body is bounded in size and
 * the whole fetch in time.
 */
import { request } from 'undici';
import { BlockedAddressError, blockedCause, createGuardedAgent, type GuardedAgent } from '../outbound/guarded-agent.js';
import type { AddressPolicy } from '../outbound/ip-ranges.js';

export { BlockedAddressError };

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
  /** The Content-Disposition header as sent, or null. */
  contentDisposition: string | null;
  body: Buffer;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

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
  private readonly guard: GuardedAgent;
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly o: SafeFetchOptions) {
    this.guard = createGuardedAgent({
      policy: o.policy,
      connectTimeoutMs: Math.min(o.timeoutMs, 10_000),
      headersTimeoutMs: o.timeoutMs,
      bodyTimeoutMs: o.timeoutMs,
      connections: 16,
    });
  }

  async close(): Promise<void> {
    await this.guard.close();
  }

  /** Checks a URL before it is requested: scheme, and an IP literal host against the policy. */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchFailedError(`cannot fetch ${url.protocol} URLs`);
    this.guard.checkUrl(url);
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
      const blocked = blockedCause(err);
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
      const res = await request(url, { dispatcher: this.guard.dispatcher, method: 'GET', headers, signal });
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
      const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? null;
      return {
        url,
        status: res.statusCode,
        contentType: first(res.headers['content-type']),
        contentDisposition: first(res.headers['content-disposition']),
        body: Buffer.concat(chunks, length),
      };
    }
  }
}

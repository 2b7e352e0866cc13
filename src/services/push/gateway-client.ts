/**
 * POSTs notifications to push gateways (`/_matrix/push/v1/notify`).
 *
 * - Addresses: as Synapse, requests to push gateways obey
 *   `ip_range_blacklist` (by default the private, loopback and link-local
 *   ranges) unless `ip_range_whitelist` lets them through, enforced by the
 *   shared outbound GuardedAgent (services/outbound/guarded-agent.ts).
 * - Bounds: connect, headers and body each time out; answers are read up to
 *   64 KiB; redirects are not followed. A non-2xx status, a timeout or an
 *   answer that is not a JSON object is a failure (the caller retries).
 */
import { request } from 'undici';
import { blockedCause, createGuardedAgent, type GuardedAgent } from '../outbound/guarded-agent.js';
import { AddressPolicy, OUTBOUND_KEYS } from '../outbound/ip-ranges.js';

const MAX_ANSWER_BYTES = 64 * 1024;

export interface GatewayClientOptions {
  blacklist: readonly string[];
  whitelist: readonly string[];
  /** Connect, response headers and response body, each. */
  timeoutMs: number;
  userAgent: string;
}

export type GatewayResult = { ok: true; rejected: string[] } | { ok: false; error: string };

export class GatewayClient {
  private readonly guard: GuardedAgent;

  constructor(private readonly o: GatewayClientOptions) {
    this.guard = createGuardedAgent({
      policy: new AddressPolicy(o.blacklist, o.whitelist, OUTBOUND_KEYS),
      connectTimeoutMs: o.timeoutMs,
      headersTimeoutMs: o.timeoutMs,
      bodyTimeoutMs: o.timeoutMs,
      connections: 8,
    });
  }

  /** POSTs `body` as JSON; never throws. */
  async notify(url: string, body: unknown, signal: AbortSignal): Promise<GatewayResult> {
    try {
      const u = new URL(url);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') return { ok: false, error: `unsupported scheme ${u.protocol}` };
      this.guard.checkUrl(u);
      const res = await request(u, {
        dispatcher: this.guard.dispatcher,
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
    await this.guard.destroy();
  }
}

/** A short reason for the log: the innermost message of the error chain. */
function describe(err: unknown): string {
  const blocked = blockedCause(err);
  if (blocked) return blocked.message;
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  const code = (err as { code?: string }).code;
  return e instanceof Error ? `${code ? `${code}: ` : ''}${e.message}` : String(err);
}

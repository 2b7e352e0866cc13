/**
 * The outbound GuardedAgent against real local HTTP servers: a connection
 * to 127.0.0.1 is refused while the loopback is blacklisted and allowed
 * once 127.0.0.1 is whitelisted; a host name resolving to the loopback is
 * refused; an IP literal sent straight to the dispatcher (no checkUrl) is
 * still refused on the connected peer; and a redirect into the blacklist,
 * followed by undici's redirect interceptor, is refused at its hop.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interceptors, request } from 'undici';
import { BlockedAddressError, blockedCause, createGuardedAgent, type GuardedAgent } from '../../src/services/outbound/guarded-agent.js';
import { AddressPolicy, DEFAULT_IP_RANGE_BLACKLIST } from '../../src/services/outbound/ip-ranges.js';

interface Site {
  server: Server;
  port: number;
  paths: string[];
}

async function site(host: string, answer: (path: string) => { status: number; headers?: Record<string, string> }): Promise<Site> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const a = answer(req.url ?? '');
    res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers });
    res.end('hello');
  });
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  return { server, port: (server.address() as AddressInfo).port, paths };
}

let home: Site;
let other: Site;
const agents: GuardedAgent[] = [];

function agent(blacklist: readonly string[], whitelist: readonly string[]): GuardedAgent {
  const a = createGuardedAgent({ policy: new AddressPolicy(blacklist, whitelist), connectTimeoutMs: 5000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, connections: 2 });
  agents.push(a);
  return a;
}

async function get(a: GuardedAgent, url: string): Promise<{ status: number; body: string } | Error> {
  try {
    const u = new URL(url);
    a.checkUrl(u);
    const res = await request(u, { dispatcher: a.dispatcher });
    return { status: res.statusCode, body: await res.body.text() };
  } catch (err) {
    return blockedCause(err) ?? (err as Error);
  }
}

beforeAll(async () => {
  // 127.0.0.2 is another loopback address (Linux answers the whole 127.0.0.0/8).
  other = await site('127.0.0.2', () => ({ status: 200 }));
  home = await site('127.0.0.1', (path) => (path === '/away' ? { status: 302, headers: { location: `http://127.0.0.2:${other.port}/inside` } } : { status: 200 }));
});

afterAll(async () => {
  for (const a of agents) await a.destroy();
  for (const s of [home, other]) await new Promise<void>((resolve) => s.server.close(() => resolve()));
});

describe('the guarded agent', () => {
  it('refuses 127.0.0.1 while the loopback is blacklisted, and nothing reaches the server', async () => {
    const blocked = agent(DEFAULT_IP_RANGE_BLACKLIST, []);
    const r = await get(blocked, `http://127.0.0.1:${home.port}/one`);
    expect(r).toBeInstanceOf(BlockedAddressError);
    expect((r as Error).message).toBe('the address of 127.0.0.1 is refused by ip_range_blacklist');
    // By name: refused in the socket's own lookup.
    expect(await get(blocked, `http://localhost:${home.port}/two`)).toBeInstanceOf(BlockedAddressError);
    // Straight to the dispatcher, skipping checkUrl: refused on the connected peer.
    const direct = await request(`http://127.0.0.1:${home.port}/three`, { dispatcher: blocked.dispatcher }).then(
      () => undefined,
      (err: unknown) => blockedCause(err),
    );
    expect(direct).toBeInstanceOf(BlockedAddressError);
    expect(home.paths).toEqual([]);
  });

  it('allows 127.0.0.1 once it is whitelisted', async () => {
    const allowed = agent(DEFAULT_IP_RANGE_BLACKLIST, ['127.0.0.1']);
    expect(await get(allowed, `http://127.0.0.1:${home.port}/four`)).toEqual({ status: 200, body: 'hello' });
    expect(home.paths).toEqual(['/four']);
    // The rest of the loopback stays refused.
    expect(await get(allowed, `http://127.0.0.2:${other.port}/five`)).toBeInstanceOf(BlockedAddressError);
    expect(other.paths).toEqual([]);
  });

  it('a redirect into the blacklist is refused at its hop', async () => {
    const allowed = agent(DEFAULT_IP_RANGE_BLACKLIST, ['127.0.0.1']);
    const following = allowed.dispatcher.compose(interceptors.redirect({ maxRedirections: 3 }));
    const r = await request(`http://127.0.0.1:${home.port}/away`, { dispatcher: following }).then(
      () => undefined,
      (err: unknown) => blockedCause(err),
    );
    expect(r).toBeInstanceOf(BlockedAddressError);
    expect(home.paths).toContain('/away');
    expect(other.paths).toEqual([]);
  });
});

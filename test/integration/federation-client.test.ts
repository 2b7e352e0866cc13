/**
 * The federation client against real local HTTPS servers (node:https,
 * certificates from test-ca.ts) and a local DNS responder for SRV.
 *
 * How discovery is tested without port 443 or real DNS: the well-known
 * fetch of a bare host name goes to https://<hostname>/ on port 443; the
 * resolver's test-only `wellKnownPort` moves it to a local port, and the
 * host name is `localhost` (the only name the system resolver maps to the
 * loopback here). SRV lookups go through a node:dns/promises Resolver
 * pointed at test/helpers/dns-responder.ts, whose targets are `localhost`
 * and local ports. Delegated names (`srv.test`) need no address: the
 * connection goes to the SRV target while Host and the certificate name
 * the delegated host, so those servers hold a certificate for `srv.test`
 * only. Time for the well-known cache is an injected clock.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { formatSigningKeyFile, generateSigningKey } from '../../src/core/signing.js';
import { parseXMatrix, verifyRequest } from '../../src/core/x-matrix.js';
import { createFederationClient, FederationRequestError, type FederationClient } from '../../src/services/federation/federation-client.js';
import { loadServerKeys, type ServerKeys } from '../../src/services/server-keys.js';
import { startDnsResponder, type DnsResponder } from '../helpers/dns-responder.js';
import { createTestCa, issueLeaf, testCa, type TestLeaf } from '../helpers/test-ca.js';

const logger = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'axon-fedclient-'));
const ORIGIN = 'origin.test';

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  authorization: string | undefined;
  body: string;
}

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
}

interface Site {
  server: Server;
  port: number;
  seen: Seen[];
  answer: (s: Seen) => Answer;
}

const sites: Site[] = [];

async function site(leaf: TestLeaf, answer: (s: Seen) => Answer = () => ({ body: '{"ok":true}' })): Promise<Site> {
  const s: Site = { server: undefined as unknown as Server, port: 0, seen: [], answer };
  s.server = createServer({ cert: readFileSync(leaf.chainPath), key: readFileSync(leaf.keyPath) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host,
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      s.seen.push(seen);
      const a = s.answer(seen);
      res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body ?? '{}');
    });
  });
  await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', () => resolve()));
  s.port = (s.server.address() as AddressInfo).port;
  sites.push(s);
  return s;
}

let keys: ServerKeys;
let dns: DnsResponder;
let localLeaf: TestLeaf;
let srvLeaf: TestLeaf;
const clients: FederationClient[] = [];

function config(extra: Record<string, unknown> = {}) {
  const path = join(dir, `homeserver-${Math.random().toString(36).slice(2)}.yaml`);
  const yaml = {
    server_name: ORIGIN,
    report_stats: false,
    trusted_key_servers: [],
    ip_range_whitelist: ['127.0.0.1', '::1'],
    federation_custom_ca_list: [testCa().certPath],
    ...extra,
  };
  for (const [k, v] of Object.entries(yaml)) if (v === null) delete (yaml as Record<string, unknown>)[k];
  writeFileSync(path, stringify(yaml));
  return loadConfig([path], { env: {} });
}

let clock = Date.parse('2026-01-01T00:00:00Z');

function client(extra: Record<string, unknown> = {}, wellKnownPort?: number): FederationClient {
  const resolver = new Resolver();
  resolver.setServers([`127.0.0.1:${dns.port}`]);
  const c = createFederationClient({
    config: config(extra),
    keys,
    logger,
    resolverOptions: { dns: resolver, now: () => clock, ...(wellKnownPort !== undefined ? { wellKnownPort } : {}) },
  });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<FederationRequestError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FederationRequestError) return err;
    throw new Error(`expected a FederationRequestError, got ${String(err)}`);
  }
  throw new Error('expected a FederationRequestError, but the request worked');
}

function verifies(seen: Seen, destination: string, content?: unknown): boolean {
  const auth = parseXMatrix(seen.authorization ?? '');
  expect(auth.origin).toBe(ORIGIN);
  expect(auth.key).toBe(keys.current.keyId);
  return verifyRequest({ auth, method: seen.method, uri: seen.url, content, ourName: destination, publicKey: keys.current.publicKey }).ok;
}

beforeAll(async () => {
  const keyPath = join(dir, 'signing.key');
  writeFileSync(keyPath, formatSigningKeyFile([generateSigningKey()]));
  keys = loadServerKeys(ORIGIN, keyPath, {}, 86_400_000);
  dns = await startDnsResponder({});
  localLeaf = issueLeaf(['localhost', '127.0.0.1', '::1']);
  srvLeaf = issueLeaf(['srv.test']);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  dns.table = {};
});

afterAll(async () => {
  await Promise.all(sites.map((s) => new Promise<void>((resolve) => s.server.close(() => resolve()))));
  await dns.close();
});

describe('requests and X-Matrix', () => {
  it('an explicit port: connects there, Host is the server name, the signature verifies for that destination', async () => {
    const s = await site(localLeaf, () => ({ body: '{"server":{"name":"test"}}' }));
    const dest = `localhost:${s.port}`;
    const r = await client().getJson<{ server: { name: string } }>(dest, '/_matrix/federation/v1/version', { a: 'b c' });
    expect(r).toEqual({ status: 200, json: { server: { name: 'test' } } });
    const seen = s.seen.at(-1)!;
    expect(seen.host).toBe(dest);
    expect(seen.url).toBe('/_matrix/federation/v1/version?a=b+c');
    expect(verifies(seen, dest)).toBe(true);
    expect(verifies(seen, 'someone.else')).toBe(false);
  });

  it('a PUT signs its body as content', async () => {
    const s = await site(localLeaf);
    const dest = `localhost:${s.port}`;
    const body = { pdus: [], edus: [{ edu_type: 'm.typing', content: { typing: true } }] };
    await client().putJson(dest, '/_matrix/federation/v1/send/t1', body);
    const seen = s.seen.at(-1)!;
    expect(JSON.parse(seen.body)).toEqual(body);
    expect(verifies(seen, dest, body)).toBe(true);
    expect(verifies(seen, dest, { ...body, pdus: [{}] })).toBe(false);
    expect(verifies({ ...seen, url: '/_matrix/federation/v1/send/t2' }, dest, body)).toBe(false);
  });

  it('signs the request target as sent, even when the path needed percent-encoding', async () => {
    const s = await site(localLeaf);
    const dest = `localhost:${s.port}`;
    await client().getJson(dest, '/_matrix/federation/v1/query/a b', { q: '@u:x' });
    const seen = s.seen.at(-1)!;
    expect(seen.url).toBe('/_matrix/federation/v1/query/a%20b?q=%40u%3Ax');
    expect(verifies(seen, dest)).toBe(true);
  });

  it('an IP literal with a port: Host is the literal, the certificate is checked for the IP', async () => {
    const s = await site(localLeaf);
    const dest = `127.0.0.1:${s.port}`;
    await client().getJson(dest, '/_matrix/key/v2/server');
    expect(s.seen.at(-1)!.host).toBe(dest);
  });

  it('signed: false sends no Authorization header', async () => {
    const s = await site(localLeaf);
    await client().request({ destination: `localhost:${s.port}`, method: 'GET', path: '/_matrix/key/v2/server', signed: false });
    expect(s.seen.at(-1)!.authorization).toBeUndefined();
  });

  it('an error answer is a FederationRequestError with status and errcode; a non-JSON or too large body too', async () => {
    const s = await site(localLeaf, (seen) =>
      seen.url.startsWith('/forbidden')
        ? { status: 403, body: '{"errcode":"M_FORBIDDEN","error":"go away"}' }
        : seen.url.startsWith('/html')
          ? { body: '<html>' }
          : { body: JSON.stringify({ pad: 'x'.repeat(5000) }) },
    );
    const c = client();
    const dest = `localhost:${s.port}`;
    expect(await failure(c.getJson(dest, '/forbidden'))).toMatchObject({ destination: dest, status: 403, errcode: 'M_FORBIDDEN', reason: 'go away' });
    expect(await failure(c.getJson(dest, '/html'))).toMatchObject({ status: 200, reason: 'the response is not JSON' });
    expect(await failure(c.getJson(dest, '/big', undefined, { maxBytes: 1000 }))).toMatchObject({ reason: expect.stringContaining('larger than 1000') });
    expect((await c.getJson(dest, '/big', undefined, { maxBytes: 10_000 })).status).toBe(200);
  });

  it('a closed port is a FederationRequestError, not a raw undici error', async () => {
    const s = await site(localLeaf);
    const port = s.port;
    await new Promise<void>((resolve) => s.server.close(() => resolve()));
    sites.splice(sites.indexOf(s), 1);
    const e = await failure(client().getJson(`localhost:${port}`, '/x'));
    expect(e.status).toBeUndefined();
    expect(e.reason).toMatch(/ECONNREFUSED/);
  });
});

describe('TLS', () => {
  it('refuses a certificate from a CA not in federation_custom_ca_list', async () => {
    const s = await site(issueLeaf(['localhost'], createTestCa('Other CA')));
    const e = await failure(client().getJson(`localhost:${s.port}`, '/x'));
    expect(e.status).toBeUndefined();
    expect(e.reason).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY/);
    expect(s.seen).toHaveLength(0);
  });

  it('without federation_custom_ca_list the test CA is not trusted (the list replaces the system CAs, and is what made the rest work)', async () => {
    const s = await site(localLeaf);
    expect((await failure(client({ federation_custom_ca_list: null }).getJson(`localhost:${s.port}`, '/x'))).reason).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY/);
    expect(s.seen).toHaveLength(0);
  });

  it('refuses a certificate for another name', async () => {
    const s = await site(srvLeaf);
    expect((await failure(client().getJson(`localhost:${s.port}`, '/x'))).reason).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(s.seen).toHaveLength(0);
  });

  it('federation_verify_certificates: false, or the verification whitelist, accepts an untrusted certificate', async () => {
    const s = await site(issueLeaf(['localhost'], createTestCa('Other CA')));
    expect((await client({ federation_verify_certificates: false }).getJson(`localhost:${s.port}`, '/x')).status).toBe(200);
    expect((await client({ federation_certificate_verification_whitelist: ['local*'] }).getJson(`localhost:${s.port}`, '/x')).status).toBe(200);
    await failure(client({ federation_certificate_verification_whitelist: ['other.*'] }).getJson(`localhost:${s.port}`, '/x'));
  });

  it('federation_client_minimum_tls_version 1.3 still talks to a TLS 1.3 server', async () => {
    const s = await site(localLeaf);
    expect((await client({ federation_client_minimum_tls_version: '1.3' }).getJson(`localhost:${s.port}`, '/x')).status).toBe(200);
  });
});

describe('address and domain policy', () => {
  it('refuses a loopback destination under the default ip_range_blacklist unless whitelisted', async () => {
    const s = await site(localLeaf);
    const c = client({ ip_range_whitelist: null });
    expect((await failure(c.getJson(`127.0.0.1:${s.port}`, '/x'))).reason).toContain('ip_range_blacklist');
    expect((await failure(c.getJson(`localhost:${s.port}`, '/x'))).reason).toContain('ip_range_blacklist');
    expect(s.seen).toHaveLength(0);
  });

  it('federation_domain_whitelist refuses destinations it does not list', async () => {
    const s = await site(localLeaf);
    const dest = `localhost:${s.port}`;
    expect((await failure(client({ federation_domain_whitelist: ['other.test'] }).getJson(dest, '/x'))).reason).toContain('federation_domain_whitelist');
    expect(s.seen).toHaveLength(0);
    expect((await client({ federation_domain_whitelist: [dest] }).getJson(dest, '/x')).status).toBe(200);
  });

  it('an invalid server name is refused', async () => {
    expect((await failure(client().getJson('not a name', '/x'))).reason).toContain('not a valid server name');
  });
});

describe('discovery', () => {
  it('well-known delegation to host:port: Host and certificate name the delegated server', async () => {
    const target = await site(localLeaf);
    const wk = await site(localLeaf, () => ({ body: JSON.stringify({ 'm.server': `localhost:${target.port}` }) }));
    const c = client({}, wk.port);
    await c.getJson('localhost', '/_matrix/federation/v1/version');
    expect(wk.seen.map((x) => x.url)).toEqual(['/.well-known/matrix/server']);
    const seen = target.seen.at(-1)!;
    expect(seen.host).toBe(`localhost:${target.port}`);
    // The signature names the server name, not the delegated one.
    expect(verifies(seen, 'localhost')).toBe(true);
  });

  it('well-known to a name without port, then SRV _matrix-fed._tcp: connect to the target, Host and certificate = the delegated name', async () => {
    const target = await site(srvLeaf);
    const wk = await site(localLeaf, () => ({ body: '{"m.server":"srv.test"}' }));
    dns.table = { srv: { '_matrix-fed._tcp.srv.test': [{ priority: 0, weight: 0, port: target.port, target: 'localhost' }] } };
    const c = client({}, wk.port);
    expect(await c.resolver.resolve('localhost')).toEqual({
      serverName: 'localhost',
      connectHost: 'localhost',
      port: target.port,
      hostHeader: 'srv.test',
      tlsServerName: 'srv.test',
      via: 'srv',
    });
    await c.getJson('localhost', '/x');
    expect(target.seen.at(-1)!.host).toBe('srv.test');
  });

  it('keeps SRV answers an hour and "no record" ten minutes, asking DNS once meanwhile', async () => {
    const target = await site(srvLeaf);
    const wk = await site(localLeaf, () => ({ body: '{"m.server":"srv.test"}' }));
    dns.table = { srv: { '_matrix-fed._tcp.srv.test': [{ priority: 0, weight: 0, port: target.port, target: 'localhost' }] } };
    const c = client({}, wk.port);
    const asked = () => dns.asked.filter((q) => q.endsWith('._tcp.srv.test')).length;
    const before = asked();
    const first = await c.resolver.resolve('localhost');
    expect(first).toMatchObject({ connectHost: 'localhost', port: target.port, via: 'srv' });
    expect(await c.resolver.resolve('localhost')).toEqual(first);
    expect(asked() - before).toBe(1);
    // An hour on (the well-known answer is still fresh), DNS is asked again; the record is gone, so both names are looked up and the misses kept.
    dns.table = {};
    clock += 60 * 60 * 1000 + 1;
    expect(await c.resolver.resolve('localhost')).toMatchObject({ via: 'default-port' });
    expect(asked() - before).toBe(3);
    expect(await c.resolver.resolve('localhost')).toMatchObject({ via: 'default-port' });
    expect(asked() - before).toBe(3);
    clock += 10 * 60 * 1000 + 1;
    await c.resolver.resolve('localhost');
    expect(asked() - before).toBe(5);
  });

  it('falls back to the deprecated _matrix._tcp record, then to port 8448', async () => {
    const target = await site(srvLeaf);
    const wk = await site(localLeaf, () => ({ body: '{"m.server":"srv.test"}' }));
    dns.table = { srv: { '_matrix._tcp.srv.test': [{ priority: 0, weight: 0, port: target.port, target: 'localhost' }] } };
    const c = client({}, wk.port);
    expect(await c.resolver.resolve('localhost')).toMatchObject({ connectHost: 'localhost', port: target.port, hostHeader: 'srv.test', via: 'srv-legacy' });
    await c.getJson('localhost', '/x');
    expect(target.seen).toHaveLength(1);
    expect(dns.asked).toEqual(expect.arrayContaining(['SRV _matrix-fed._tcp.srv.test', 'SRV _matrix._tcp.srv.test']));
    dns.table = {};
    c.resolver.clearCache();
    expect(await c.resolver.resolve('localhost')).toMatchObject({ connectHost: 'srv.test', port: 8448, hostHeader: 'srv.test', tlsServerName: 'srv.test', via: 'default-port' });
  });

  it('a delegated IP literal: that address, Host = the literal', async () => {
    const target = await site(localLeaf);
    const wk = await site(localLeaf, () => ({ body: JSON.stringify({ 'm.server': `127.0.0.1:${target.port}` }) }));
    const c = client({}, wk.port);
    await c.getJson('localhost', '/x');
    expect(target.seen.at(-1)!.host).toBe(`127.0.0.1:${target.port}`);
  });

  it('without a well-known answer: SRV on the server name itself, then hostname:8448', async () => {
    const target = await site(localLeaf);
    const wk = await site(localLeaf, () => ({ status: 404, body: '{"errcode":"M_NOT_FOUND"}' }));
    dns.table = { srv: { '_matrix-fed._tcp.localhost': [{ priority: 0, weight: 0, port: target.port, target: 'localhost.' }] } };
    const c = client({}, wk.port);
    await c.getJson('localhost', '/x');
    expect(target.seen.at(-1)!.host).toBe('localhost');
    dns.table = {};
    // SRV answers are kept an hour (above): forget them to see the next step.
    c.resolver.clearCache('localhost');
    expect(await c.resolver.resolve('localhost')).toMatchObject({ connectHost: 'localhost', port: 8448, hostHeader: 'localhost', via: 'default-port' });
  });

  it('follows redirects of the well-known fetch', async () => {
    const target = await site(localLeaf);
    const wk = await site(localLeaf, (s) =>
      s.url === '/.well-known/matrix/server' ? { status: 302, headers: { location: '/moved' } } : { body: JSON.stringify({ 'm.server': `localhost:${target.port}` }) },
    );
    const c = client({}, wk.port);
    expect(await c.resolver.resolve('localhost')).toMatchObject({ port: target.port, via: 'well-known' });
    expect(wk.seen.map((x) => x.url)).toEqual(['/.well-known/matrix/server', '/moved']);
  });

  it('ignores a well-known body over 50 KiB and accepts one under it', async () => {
    let size = 60 * 1024;
    const wk = await site(localLeaf, () => ({ body: JSON.stringify({ 'm.server': 'localhost:1234', pad: 'x'.repeat(size) }) }));
    const c = client({}, wk.port);
    expect(await c.resolver.resolve('localhost')).toMatchObject({ via: 'default-port' });
    size = 40 * 1024;
    c.resolver.clearCache();
    expect(await c.resolver.resolve('localhost')).toMatchObject({ port: 1234, via: 'well-known' });
  });

  it('refuses a well-known on a blacklisted address (then falls back)', async () => {
    const wk = await site(localLeaf, () => ({ body: '{"m.server":"localhost:1234"}' }));
    const c = client({ ip_range_whitelist: null }, wk.port);
    expect(await c.resolver.resolve('localhost')).toMatchObject({ via: 'default-port' });
    expect(wk.seen).toHaveLength(0);
  });
});

describe('well-known caching', () => {
  it('honours max-age', async () => {
    let answer = 'localhost:1111';
    const wk = await site(localLeaf, () => ({ headers: { 'cache-control': 'max-age=600' }, body: JSON.stringify({ 'm.server': answer }) }));
    const c = client({}, wk.port);
    const start = clock;
    try {
      expect((await c.resolver.resolve('localhost')).port).toBe(1111);
      answer = 'localhost:2222';
      clock = start + 599_000;
      expect((await c.resolver.resolve('localhost')).port).toBe(1111);
      clock = start + 601_000;
      expect((await c.resolver.resolve('localhost')).port).toBe(2222);
      expect(wk.seen).toHaveLength(2);
    } finally {
      clock = start;
    }
  });

  it('keeps an answer without cache headers 24 h, and caches a failure for 1 h', async () => {
    let mode: 'ok' | 'fail' = 'ok';
    const wk = await site(localLeaf, () => (mode === 'ok' ? { body: '{"m.server":"localhost:1111"}' } : { status: 500, body: '{}' }));
    const c = client({}, wk.port);
    const start = clock;
    try {
      expect((await c.resolver.resolve('localhost')).port).toBe(1111);
      mode = 'fail';
      clock = start + 23 * 3600_000;
      expect((await c.resolver.resolve('localhost')).port).toBe(1111);
      clock = start + 24 * 3600_000 + 1000;
      expect((await c.resolver.resolve('localhost')).via).toBe('default-port');
      mode = 'ok';
      clock = start + 24 * 3600_000 + 59 * 60_000;
      expect((await c.resolver.resolve('localhost')).via).toBe('default-port');
      clock = start + 25 * 3600_000 + 2000;
      expect((await c.resolver.resolve('localhost')).port).toBe(1111);
      expect(wk.seen).toHaveLength(3);
    } finally {
      clock = start;
    }
  });
});

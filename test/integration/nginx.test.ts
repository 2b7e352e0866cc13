/**
 * The shipped nginx site (config/nginx/axon.conf) in front of the real
 * server: Debian's nginx on loopback with a throwaway certificate, the
 * site's own text with only ports, certificate paths and upstream swapped.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSize } from '../../src/config/durations.js';
import type { PluginOptions } from '../../src/http/context.js';
import { ensureDebianProgram } from '../helpers/debian-package.js';
import { freePort } from '../helpers/ports.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { createUser, type TestUser } from '../helpers/users.js';

const SITE = new URL('../../config/nginx/axon.conf', import.meta.url);
const SAMPLE_CONFIG = new URL('../../config/homeserver.yaml', import.meta.url);
const TEST_LIMIT = '1M';
const TEST_LIMIT_BYTES = 1024 * 1024;
const ACME_TOKEN = 'acme-token-1.thumbprint';
const nginx = ensureDebianProgram('nginx', 'nginx-light');
if (!nginx.ok) process.stderr.write(`skipping the nginx test: ${nginx.why}\n`);

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface ReqOpts {
  headers?: Record<string, string>;
  method?: string;
  body?: Buffer;
  /** The client's side of the connection (any 127/8 address reaches loopback on Linux). */
  localAddress?: string;
  /** Plain HTTP instead of HTTPS. */
  plain?: boolean;
}

function get(port: number, host: string, path: string, opts: ReqOpts = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host, ...opts.headers }, localAddress: opts.localAddress };
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    };
    const req = opts.plain ? httpRequest(common, onResponse) : request({ ...common, servername: host, rejectUnauthorized: false }, onResponse);
    req.on('error', reject);
    req.end(opts.body);
  });
}

const ipProbe: FastifyPluginAsync<PluginOptions> = async (app) => {
  app.get('/_matrix/client/v3/test/ip', async (req) => ({ ip: req.ip, proto: req.headers['x-forwarded-proto'] }));
};

describe.skipIf(!nginx.ok)('nginx in front of Axon', () => {
  let t: TestServer;
  let proc: ChildProcess;
  let dir: string;
  const ports = { https: 0, federation: 0, http: 0 };

  let alice: TestUser;

  beforeAll(async () => {
    t = await startTestServer({
      extraPlugins: [ipProbe],
      serverName: 'example.com',
      // The body limit shrunk from the sample's 50M to keep the upload tests quick; nginx's matches it below.
      yaml: { serve_server_wellknown: true, public_baseurl: 'https://matrix.example.com/', max_upload_size: TEST_LIMIT },
    });
    alice = await createUser(t, 'alice');
    const upstream = new URL(t.url).port;
    dir = mkdtempSync(join(tmpdir(), 'axon-nginx-'));
    // nginx's workers (nobody, when the test runs as root) read the ACME root and write request bodies under it.
    chmodSync(dir, 0o755);
    ports.https = await freePort();
    ports.federation = await freePort();
    ports.http = await freePort();
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=matrix.example.com', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    mkdirSync(join(dir, 'acme', '.well-known', 'acme-challenge'), { recursive: true });
    writeFileSync(join(dir, 'acme', '.well-known', 'acme-challenge', 'token-1'), ACME_TOKEN);
    const shipped = readFileSync(SITE, 'utf8');
    const site = shipped
      .replace(/^\s*listen \[::\]:.*$/gm, '')
      .replace(/listen 443 /g, `listen 127.0.0.1:${ports.https} `)
      .replace(/listen 8448 /g, `listen 127.0.0.1:${ports.federation} `)
      .replace(/listen 80;/g, `listen 127.0.0.1:${ports.http};`)
      .replace(/ssl_certificate\s+\S+;/g, `ssl_certificate ${join(dir, 'cert.pem')};`)
      .replace(/ssl_certificate_key\s+\S+;/g, `ssl_certificate_key ${join(dir, 'key.pem')};`)
      .replace(/client_max_body_size 50M;/g, `client_max_body_size ${TEST_LIMIT};`)
      .replace(/root \/var\/www\/html;/g, `root ${join(dir, 'acme')};`)
      .replace(/127\.0\.0\.1:8008/g, `127.0.0.1:${upstream}`);
    // The base domain's variant B (static documents), uncommented, on a host of its own.
    const variantB = shipped
      .slice(shipped.indexOf('# Variant B'), shipped.indexOf('# ... the rest'))
      .split('\n')
      .filter((l) => /^\s*#(\S|    )/.test(l))
      .map((l) => l.replace('#', ''))
      .join('\n');
    const staticSite =
      `server {\n  listen 127.0.0.1:${ports.https} ssl http2;\n  server_name static.example.com;\n` +
      `  ssl_certificate ${join(dir, 'cert.pem')};\n  ssl_certificate_key ${join(dir, 'key.pem')};\n${variantB}\n}\n`;
    writeFileSync(join(dir, 'site.conf'), site + staticSite);
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n` +
        `  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fcgi;\n` +
        `  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n  include ${dir}/site.conf;\n}\n`,
    );
    proc = spawn(nginx.ok ? nginx.path : 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
    // Ready when the client port answers.
    for (let i = 0; i < 100; i++) {
      try {
        await get(ports.https, 'matrix.example.com', '/_matrix/client/versions');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  afterAll(async () => {
    proc?.kill('SIGTERM');
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('proxies the client API on the HTTPS port', async () => {
    const res = await get(ports.https, 'matrix.example.com', '/_matrix/client/versions');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as { versions: string[] }).versions).toContain('v1.1');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('proxies federation on the 8448 port, signature intact', async () => {
    const res = await get(ports.federation, 'matrix.example.com', '/_matrix/key/v2/server');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body) as { server_name: string; signatures: Record<string, unknown> };
    expect(doc.server_name).toBe('example.com');
    expect(Object.keys(doc.signatures)).toEqual(['example.com']);
  });

  it("passes the client's address, not a spoofed one, and the scheme", async () => {
    const res = await get(ports.https, 'matrix.example.com', '/_matrix/client/v3/test/ip', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(JSON.parse(res.body)).toEqual({ ip: '127.0.0.1', proto: 'https' });
  });

  it('serves well-known delegation on the base domain through Axon', async () => {
    const server = await get(ports.https, 'example.com', '/.well-known/matrix/server');
    expect(JSON.parse(server.body)).toEqual({ 'm.server': 'matrix.example.com:443' });
    const client = await get(ports.https, 'example.com', '/.well-known/matrix/client');
    expect(JSON.parse(client.body)).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.com/' } });
  });

  it("serves Axon's landing page at / on the matrix host", async () => {
    const res = await get(ports.https, 'matrix.example.com', '/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Axon is running');
    expect(res.body).toContain('<strong>example.com</strong>');
  });

  it('serves well-known on the matrix host too', async () => {
    const server = await get(ports.https, 'matrix.example.com', '/.well-known/matrix/server');
    expect(server.status).toBe(200);
    expect(JSON.parse(server.body)).toEqual({ 'm.server': 'matrix.example.com:443' });
    const client = await get(ports.https, 'matrix.example.com', '/.well-known/matrix/client');
    expect(client.status).toBe(200);
    expect(JSON.parse(client.body)).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.com/' } });
  });

  it("serves the base domain's static variant (B), once uncommented, with the same documents", async () => {
    const server = await get(ports.https, 'static.example.com', '/.well-known/matrix/server');
    expect(server.status).toBe(200);
    expect(server.headers['content-type']).toBe('application/json');
    expect(JSON.parse(server.body)).toEqual({ 'm.server': 'matrix.example.com:443' });
    const client = await get(ports.https, 'static.example.com', '/.well-known/matrix/client');
    expect(client.status).toBe(200);
    expect(client.headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(client.body)).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.com/' } });
  });

  it('proxies the admin API to the allowed addresses (this machine) and denies the rest', async () => {
    const path = '/_synapse/admin/v1/server_version';
    const local = await get(ports.https, 'matrix.example.com', path, { localAddress: '127.0.0.1' });
    expect(local.status).toBe(200);
    expect(JSON.parse(local.body)).toHaveProperty('server_version');
    // Another address (127.0.0.2 is not on the allow-list): nginx's own 403, never proxied.
    const other = await get(ports.https, 'matrix.example.com', path, { localAddress: '127.0.0.2' });
    expect(other.status).toBe(403);
    expect(other.body).toMatch(/nginx/);
    expect(other.body).not.toMatch(/server_version|errcode/);
    // The rest of the site still answers that address.
    expect((await get(ports.https, 'matrix.example.com', '/_matrix/client/versions', { localAddress: '127.0.0.2' })).status).toBe(200);
  });

  it('serves federation on the 8448 block, and only /_matrix there', async () => {
    const version = await get(ports.federation, 'matrix.example.com', '/_matrix/federation/v1/version');
    expect(version.status).toBe(200);
    expect((JSON.parse(version.body) as { server: { name: string } }).server.name).toBe('Axon');
    for (const path of ['/', '/_synapse/admin/v1/server_version', '/_synapse/client/nothing']) {
      const res = await get(ports.federation, 'matrix.example.com', path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).toMatch(/nginx/);
    }
  });

  it('passes an upload at client_max_body_size to Axon and refuses a larger one itself (413)', async () => {
    const auth = { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'application/octet-stream' };
    const fits = await get(ports.https, 'matrix.example.com', '/_matrix/media/v3/upload', {
      method: 'POST',
      headers: auth,
      body: Buffer.alloc(TEST_LIMIT_BYTES, 7),
    });
    expect(fits.status, fits.body).toBe(200);
    expect((JSON.parse(fits.body) as { content_uri: string }).content_uri).toMatch(/^mxc:\/\/example\.com\//);
    const over = await get(ports.https, 'matrix.example.com', '/_matrix/media/v3/upload', {
      method: 'POST',
      headers: auth,
      body: Buffer.alloc(TEST_LIMIT_BYTES + 1, 7),
    });
    expect(over.status).toBe(413);
    // nginx's page, not Axon's M_TOO_LARGE: the body never reached Axon.
    expect(over.body).toMatch(/nginx/);
    expect(over.body).not.toMatch(/errcode/);
  });

  it('redirects plain HTTP to HTTPS with the path, but answers ACME challenges from the web root', async () => {
    const redirect = await get(ports.http, 'matrix.example.com', '/_matrix/client/versions?x=1', { plain: true });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://matrix.example.com/_matrix/client/versions?x=1');
    const base = await get(ports.http, 'example.com', '/.well-known/matrix/server', { plain: true });
    expect(base.status).toBe(301);
    expect(base.headers.location).toBe('https://example.com/.well-known/matrix/server');
    const acme = await get(ports.http, 'matrix.example.com', '/.well-known/acme-challenge/token-1', { plain: true });
    expect(acme.status).toBe(200);
    expect(acme.body).toBe(ACME_TOKEN);
    expect((await get(ports.http, 'example.com', '/.well-known/acme-challenge/missing', { plain: true })).status).toBe(404);
  });

  it("limits bodies to the sample config's max_upload_size", () => {
    const site = readFileSync(SITE, 'utf8');
    const limits = [...site.matchAll(/^\s*client_max_body_size\s+(\S+);/gm)].map((m) => parseSize(m[1]));
    const sample = parse(readFileSync(SAMPLE_CONFIG, 'utf8')) as { max_upload_size?: string | number };
    expect(limits.length).toBeGreaterThan(0);
    for (const l of limits) expect(l).toBe(parseSize(sample.max_upload_size ?? '50M'));
  });
});

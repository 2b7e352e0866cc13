/**
 * The shipped nginx site (config/nginx/axon.conf) in front of the real
 * server: Debian's nginx on loopback with a throwaway certificate, the
 * site's own text with only ports, certificate paths and upstream swapped.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

const SITE = new URL('../../config/nginx/axon.conf', import.meta.url);
const SAMPLE_CONFIG = new URL('../../config/homeserver.yaml', import.meta.url);
const nginx = ensureDebianProgram('nginx', 'nginx-light');
if (!nginx.ok) process.stderr.write(`skipping the nginx test: ${nginx.why}\n`);

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, host: string, path: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, servername: host, headers: { host, ...headers }, rejectUnauthorized: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
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

  beforeAll(async () => {
    t = await startTestServer({ extraPlugins: [ipProbe], serverName: 'example.com', yaml: { serve_server_wellknown: true, public_baseurl: 'https://matrix.example.com/' } });
    const upstream = new URL(t.url).port;
    dir = mkdtempSync(join(tmpdir(), 'axon-nginx-'));
    ports.https = await freePort();
    ports.federation = await freePort();
    ports.http = await freePort();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=matrix.example.com',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const site = readFileSync(SITE, 'utf8')
      .replace(/^\s*listen \[::\]:.*$/gm, '')
      .replace(/listen 443 /g, `listen 127.0.0.1:${ports.https} `)
      .replace(/listen 8448 /g, `listen 127.0.0.1:${ports.federation} `)
      .replace(/listen 80;/g, `listen 127.0.0.1:${ports.http};`)
      .replace(/ssl_certificate\s+\S+;/g, `ssl_certificate ${join(dir, 'cert.pem')};`)
      .replace(/ssl_certificate_key\s+\S+;/g, `ssl_certificate_key ${join(dir, 'key.pem')};`)
      .replace(/127\.0\.0\.1:8008/g, `127.0.0.1:${upstream}`);
    writeFileSync(join(dir, 'site.conf'), site);
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
    const res = await get(ports.https, 'matrix.example.com', '/_matrix/client/v3/test/ip', { 'x-forwarded-for': '203.0.113.9' });
    expect(JSON.parse(res.body)).toEqual({ ip: '127.0.0.1', proto: 'https' });
  });

  it('serves well-known delegation on the base domain through Axon', async () => {
    const server = await get(ports.https, 'example.com', '/.well-known/matrix/server');
    expect(JSON.parse(server.body)).toEqual({ 'm.server': 'matrix.example.com:443' });
    const client = await get(ports.https, 'example.com', '/.well-known/matrix/client');
    expect(JSON.parse(client.body)).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.com/' } });
  });

  it('keeps the admin API off the public site, as the guides do', async () => {
    const res = await get(ports.https, 'matrix.example.com', '/_synapse/admin/v1/server_version');
    // nginx answers itself (403 or 404 by its own html), never proxying to Axon.
    expect([403, 404]).toContain(res.status);
    expect(res.body).toMatch(/nginx/);
    expect(res.body).not.toMatch(/errcode/);
  });

  it("limits bodies to the sample config's max_upload_size", () => {
    const site = readFileSync(SITE, 'utf8');
    const limits = [...site.matchAll(/^\s*client_max_body_size\s+(\S+);/gm)].map((m) => parseSize(m[1]));
    const sample = parse(readFileSync(SAMPLE_CONFIG, 'utf8')) as { max_upload_size?: string | number };
    expect(limits.length).toBeGreaterThan(0);
    for (const l of limits) expect(l).toBe(parseSize(sample.max_upload_size ?? '50M'));
  });
});

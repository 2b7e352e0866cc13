/**
 * The foundation's endpoints and error shapes, over HTTP against the real
 * server on the test database (PostgreSQL, or embedded when none answers).
 */
import type { FastifyPluginAsync } from 'fastify';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../src/core/base64.js';
import { verifyJson } from '../../src/core/signing.js';
import type { PluginOptions } from '../../src/http/context.js';
import { jsonObjectBody } from '../../src/http/json-body.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { useTestServer } from '../helpers/rooms.js';

/** Routes that exist only in this test, to drive the shared body and error handling. */
const probes: FastifyPluginAsync<PluginOptions> = async (app) => {
  app.post('/_matrix/client/v3/test/echo', async (req) => ({ body: req.body ?? null }));
  app.post('/_matrix/client/v3/test/object', async (req) => ({ body: jsonObjectBody(req) }));
  app.post('/_matrix/client/v3/test/bodiless', async () => ({}));
  app.get('/_matrix/client/v3/test/ip', async (req) => ({ ip: req.ip }));
  app.get('/_matrix/client/v3/test/boom', async () => {
    throw new Error('secret internal detail');
  });
};

const logLines: string[] = [];

const t = useTestServer({ extraPlugins: [probes], logLines, yaml: { serve_server_wellknown: true } });

describe('discovery and versions', () => {
  it('GET /_matrix/client/versions lists spec versions', async () => {
    const res = await fetch(`${t.url}/_matrix/client/versions`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { versions: string[]; unstable_features: object };
    expect(body.versions).toContain('v1.1');
    expect(body.versions).toContain('r0.6.1');
    expect(typeof body.unstable_features).toBe('object');
  });

  it('serves /.well-known/matrix/client from public_baseurl, with CORS', async () => {
    const res = await fetch(`${t.url}/.well-known/matrix/client`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({ 'm.homeserver': { base_url: 'https://test.local/' } });
  });

  it('serves /.well-known/matrix/server when serve_server_wellknown is set', async () => {
    const res = await fetch(`${t.url}/.well-known/matrix/server`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ 'm.server': 'test.local:443' });
  });

  it('GET /_matrix/federation/v1/version names the server', async () => {
    const res = await fetch(`${t.url}/_matrix/federation/v1/version`);
    const body = (await res.json()) as { server: { name: string; version: string } };
    expect(body.server.name).toBe('Axon');
    expect(body.server.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('GET /health answers OK and / shows the landing page', async () => {
    const health = await fetch(`${t.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('OK');
    const landing = await fetch(`${t.url}/`);
    expect(landing.headers.get('content-type')).toMatch(/text\/html/);
    expect(await landing.text()).toMatch(/Axon is running/);
  });

  it('GET /login lists the password flow on r0 and v3', async () => {
    for (const v of ['r0', 'v3']) {
      const res = await fetch(`${t.url}/_matrix/client/${v}/login`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ flows: [{ type: 'm.login.password' }] });
    }
  });
});

describe('key server', () => {
  it('publishes our key, signed with it, verifiable by node:crypto and by tweetnacl', async () => {
    const res = await fetch(`${t.url}/_matrix/key/v2/server`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      server_name: string;
      verify_keys: Record<string, { key: string }>;
      valid_until_ts: number;
      signatures: Record<string, Record<string, string>>;
    };
    expect(doc.server_name).toBe('test.local');
    const keyId = t.server.ctx.keys.current.keyId;
    expect(keyId).toMatch(/^ed25519:a_[A-Za-z0-9]{4}$/);
    const pub = decodeBase64(doc.verify_keys[keyId]!.key);
    expect(doc.valid_until_ts).toBeGreaterThan(Date.now());
    expect(verifyJson(doc, 'test.local', keyId, pub)).toBe(true);
    // An independent implementation agrees.
    const { signatures, ...unsigned } = doc;
    const sig = decodeBase64(signatures['test.local']![keyId]!);
    expect(nacl.sign.detached.verify(new TextEncoder().encode(canonicalJson(unsigned)), sig, pub)).toBe(true);
    // And tampering breaks it.
    expect(verifyJson({ ...doc, server_name: 'evil.example' }, 'test.local', keyId, pub)).toBe(false);
  });
});

describe('CORS', () => {
  it('answers a preflight on any /_matrix path, route or not', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/rooms/!x:y/send/m.room.message/1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.element.io', 'access-control-request-method': 'PUT' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(res.headers.get('access-control-allow-headers')).toContain('Authorization');
  });

  it('puts CORS headers on errors too', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('error shapes', () => {
  it('404 M_UNRECOGNIZED for an unknown path', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/does/not/exist`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
  });

  it('405 M_UNRECOGNIZED for a known path with the wrong method', async () => {
    const res = await fetch(`${t.url}/_matrix/client/versions`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
  });

  it('M_NOT_JSON for a body that is not JSON where the route reads one; ignored where it does not (as Synapse)', async () => {
    const post = (path: string, body: string) => fetch(`${t.url}/_matrix/client/v3/test/${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    for (const body of ['{"a":', ' ']) {
      const res = await post('object', body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
      expect((await post('bodiless', body)).status).toBe(200);
    }
  });

  it("parses JSON whatever the Content-Type, as the guides' curl -d sends it", async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/test/echo`, {
      method: 'POST',
      body: '{"type":"m.login.password"}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ body: { type: 'm.login.password' } });
  });

  it('413 M_TOO_LARGE for a body over max_request_body_size', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/test/echo`, {
      method: 'POST',
      body: JSON.stringify({ pad: 'x'.repeat(t.config.max_request_body_size) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
  });

  it('500 M_UNKNOWN without internals, logged with the request id', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/test/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ errcode: 'M_UNKNOWN', error: 'Internal server error' });
    expect(text).not.toMatch(/secret internal detail|at .*\.ts/);
    const logged = logLines.map((l) => JSON.parse(l) as { msg?: string; request?: string; err?: { message?: string } });
    const entry = logged.find((l) => l.msg === 'request failed');
    expect(entry?.err?.message).toBe('secret internal detail');
    expect(entry?.request).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('proxying and logs', () => {
  it('honours X-Forwarded-For when the listener has x_forwarded: true', async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/test/ip`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(await res.json()).toEqual({ ip: '203.0.113.7' });
  });

  it('never logs an access token from the query string', async () => {
    await fetch(`${t.url}/_matrix/client/v3/test/ip?access_token=syt_c2VjcmV0_abcdef_123456`);
    const all = logLines.join('\n');
    expect(all).toContain('/_matrix/client/v3/test/ip?access_token=<redacted>');
    expect(all).not.toContain('syt_c2VjcmV0_abcdef_123456');
  });
});

describe('unroutable URLs', () => {
  it("a bad percent-encoding is a Matrix error, not fastify's", async () => {
    const res = await fetch(`${t.url}/_matrix/client/v3/profile/%ZZ`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errcode?: string }).errcode).toMatch(/^M_/);
  });
});

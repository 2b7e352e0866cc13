/**
 * Listener settings as Synapse reads them: several bind addresses,
 * x_forwarded off, and resources choosing which APIs a port serves.
 */
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PluginOptions } from '../../src/http/context.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const ipProbe: FastifyPluginAsync<PluginOptions> = async (app) => {
  app.get('/_matrix/client/v3/test/ip', async (req) => ({ ip: req.ip }));
};

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({
    extraPlugins: [ipProbe],
    yaml: {
      listeners: [
        { port: 8008, type: 'http', bind_addresses: ['127.0.0.1', '::1'], x_forwarded: false, resources: [{ names: ['client'] }] },
        { port: 8448, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['federation'] }] },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
});

it('binds every address of a listener', async () => {
  const [v4, v6] = t.server.urls;
  expect(v4).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(v6).toMatch(/^http:\/\/\[::1\]:\d+$/);
  for (const u of [v4, v6]) expect(await (await fetch(`${u}/health`)).text()).toBe('OK');
});

it('ignores X-Forwarded-For when x_forwarded is off', async () => {
  const res = await fetch(`${t.server.urls[0]}/_matrix/client/v3/test/ip`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
  expect(await res.json()).toEqual({ ip: '127.0.0.1' });
});

it('serves each API only on the listeners whose resources name it', async () => {
  const client = t.server.urls[0];
  const federation = t.server.urls[2];
  expect((await fetch(`${client}/_matrix/client/versions`)).status).toBe(200);
  expect((await fetch(`${client}/_matrix/federation/v1/version`)).status).toBe(404);
  expect((await fetch(`${federation}/_matrix/federation/v1/version`)).status).toBe(200);
  expect((await fetch(`${federation}/_matrix/key/v2/server`)).status).toBe(200);
  expect((await fetch(`${federation}/_matrix/client/versions`)).status).toBe(404);
});

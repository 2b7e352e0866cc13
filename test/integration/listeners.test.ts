/**
 * Listener settings as Synapse reads them: several bind addresses,
 * x_forwarded off, and resources choosing which APIs a port serves. All
 * listeners share the one set of services of the process.
 */
import type { FastifyPluginAsync } from 'fastify';
import { expect, it } from 'vitest';
import type { PluginOptions } from '../../src/http/context.js';
import { useTestServer } from '../helpers/rooms.js';
import { createUser, type TestUser } from '../helpers/users.js';

const ipProbe: FastifyPluginAsync<PluginOptions> = async (app) => {
  app.get('/_matrix/client/v3/test/ip', async (req) => ({ ip: req.ip }));
};

const t = useTestServer({
  extraPlugins: [ipProbe],
  yaml: {
    listeners: [
      { port: 8008, type: 'http', bind_addresses: ['127.0.0.1', '::1'], x_forwarded: false, resources: [{ names: ['client'] }] },
      { port: 8448, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['federation'] }] },
      { port: 8009, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] },
    ],
  },
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

/** A client-API call on one listener's base URL. */
async function call(base: string, user: TestUser, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = { authorization: `Bearer ${user.accessToken}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}/_matrix/client/v3${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  expect(res.status, `${method} ${path}`).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

it('shares one set of services between listeners: members lazy-loaded through one are not sent again through another', async () => {
  const first = t.server.urls[0]!;
  const second = t.server.urls[3]!;
  expect(second).not.toBe(first);
  const alice = await createUser(t, 'alice');
  const bob = await createUser(t, 'bob');
  const { room_id: roomId } = (await call(first, alice, 'POST', '/createRoom', { preset: 'public_chat' })) as { room_id: string };
  await call(second, bob, 'POST', `/join/${encodeURIComponent(roomId)}`, {});
  await call(second, bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'hi' });
  const filter = encodeURIComponent(JSON.stringify({ lazy_load_members: true, types: ['m.room.message'] }));
  const page = (base: string) => call(base, alice, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&filter=${filter}`);
  const members = (p: Record<string, unknown>) => ((p['state'] ?? []) as { state_key: string }[]).map((e) => e.state_key);
  expect(members(await page(first))).toEqual([bob.userId]);
  // The device's record of members sent is the process's, not the listener's.
  expect(members(await page(second))).toEqual([]);
});

/**
 * Restart catch-up across two real Axon servers over HTTPS on the loopback:
 * B is stopped (its database and port kept), A sends 50 messages, B starts
 * again; A's sender retries once its (short) backoff runs out and B ends
 * with all 50 in order (catch-up and get_missing_events filling the gap).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startServer } from '../../src/server.js';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { until } from '../helpers/until.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2, { yaml: { federation: { destination_min_retry_interval: '200ms', destination_max_retry_interval: '1s' } } });
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

async function bodies(t: FederationServer, user: TestUser, roomId: string): Promise<string[]> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=f&limit=200`, { token: user.accessToken });
  if (res.status !== 200) return [];
  return (res.body.chunk as { type: string; content: { body?: string } }[]).filter((e) => e.type === 'm.room.message').map((e) => e.content.body ?? '');
}

describe('restart catch-up', () => {
  it('B stopped while A sends 50 messages: after B starts again it holds all 50, in order', async () => {
    const created = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat', room_version: '10' } });
    const roomId = created.body.room_id as string;
    const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(join.status, JSON.stringify(join.body)).toBe(200);
    const first = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/before`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'before' },
    });
    expect(first.status).toBe(200);
    await until(async () => (await bodies(b, bob, roomId)).includes('before'));

    // Stop B, keeping its database, configuration (port, signing key) and the test's clean-up.
    const closeAll = b.test.close;
    await b.test.server.close();
    const expected: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/down-${i}`, {
        token: alice.accessToken,
        body: { msgtype: 'm.text', body: `m${i}` },
      });
      expect(res.status).toBe(200);
      expected.push(`m${i}`);
    }
    const server = await startServer(b.test.config, createLogger('silent'), {});
    b.test = {
      ...b.test,
      server,
      close: async () => {
        await server.close();
        await closeAll();
      },
    };
    b.close = () => b.test.close();

    await until(async () => (await bodies(b, bob, roomId)).filter((x) => x.startsWith('m')).length === 50, 30_000);
    const onB = (await bodies(b, bob, roomId)).filter((x) => x !== 'before');
    expect(onB).toEqual(expected);
    const onA = (await bodies(a, alice, roomId)).filter((x) => x !== 'before');
    expect(onB).toEqual(onA);
  }, 40_000);
});

/**
 * /_synapse/admin/v1/federation/destinations against the real server:
 * Synapse's shapes, paging (from, limit, next_token), order_by and dir, the
 * destination filter, the rooms of a destination, reset_connection, and the
 * errors (404 Unknown destination, 400 for bad parameters, admin only).
 * The destinations' rows are written with the sender's storage functions,
 * with known values. The server runs with `send_federation: false`, so no
 * request leaves it, and that setting is tested here too.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { getDestination, recordFailure } from '../../src/storage/federation-destinations.js';
import { ensureDestinations, queuePdus, streamPosition } from '../../src/storage/federation-queue.js';
import { roomHelpers, text, useServerWith } from '../helpers/rooms.js';
import { type AdminEndpoint, itRequiresAdmin } from '../helpers/admin.js';
import { api } from '../helpers/users.js';

const BASE = '/_synapse/admin/v1/federation/destinations';
const enc = encodeURIComponent;

const { t, admin, alice } = useServerWith({ admins: ['admin'], yaml: { send_federation: false } }, 'admin', 'alice');
const db = () => t.server.ctx.database.db;
const get = (path: string) => api(t, 'GET', path, { token: admin.accessToken });

beforeAll(async () => {
  await ensureDestinations(db(), ['alpha.example', 'Beta.example', 'gamma.example', 'delta.test']);
  await recordFailure(db(), 'gamma.example', 1_000_000, 40_000);
  await recordFailure(db(), 'delta.test', 2_000_000, 10_000);
  await db()
    .transaction()
    .execute((tx) =>
      queuePdus(tx, [
        { destination: 'alpha.example', roomId: '!b:test.local', eventId: '$1', streamOrdering: 5 },
        { destination: 'alpha.example', roomId: '!a:test.local', eventId: '$2', streamOrdering: 6 },
        { destination: 'alpha.example', roomId: '!b:test.local', eventId: '$3', streamOrdering: 7 },
        { destination: 'alpha.example', roomId: '!c:test.local', eventId: '$4', streamOrdering: 8 },
      ]),
    );
  // No outbox rows: only destination_rooms is wanted here.
  await db().deleteFrom('federation_outbox_pdus').execute();
});

describe('access', () => {
  const endpoints: AdminEndpoint[] = [
    ['GET', BASE],
    ['GET', `${BASE}/alpha.example`],
    ['GET', `${BASE}/alpha.example/rooms`],
    ['POST', `${BASE}/gamma.example/reset_connection`, {}],
  ];
  itRequiresAdmin(t, alice, endpoints, async () => {
    expect((await getDestination(db(), 'gamma.example'))?.retry_interval).toBe(40_000);
  });
});

describe('list', () => {
  it('lists every destination by name with Synapse’s fields', async () => {
    const res = await get(BASE);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      destinations: [
        { destination: 'Beta.example', retry_last_ts: 0, retry_interval: 0, failure_ts: null, last_successful_stream_ordering: null },
        { destination: 'alpha.example', retry_last_ts: 0, retry_interval: 0, failure_ts: null, last_successful_stream_ordering: null },
        { destination: 'delta.test', retry_last_ts: 2_000_000, retry_interval: 10_000, failure_ts: 2_000_000, last_successful_stream_ordering: null },
        { destination: 'gamma.example', retry_last_ts: 1_000_000, retry_interval: 40_000, failure_ts: 1_000_000, last_successful_stream_ordering: null },
      ],
      total: 4,
    });
  });

  it('pages with from and limit, next_token while more remain', async () => {
    const first = await get(`${BASE}?limit=3`);
    expect(first.body.total).toBe(4);
    expect((first.body.destinations as { destination: string }[]).map((d) => d.destination)).toEqual(['Beta.example', 'alpha.example', 'delta.test']);
    expect(first.body.next_token).toBe('3');
    const second = await get(`${BASE}?limit=3&from=3`);
    expect((second.body.destinations as { destination: string }[]).map((d) => d.destination)).toEqual(['gamma.example']);
    expect(second.body).not.toHaveProperty('next_token');
  });

  it('orders by the field order_by names, in the direction dir names', async () => {
    const names = async (q: string) => ((await get(`${BASE}?${q}`)).body.destinations as { destination: string }[]).map((d) => d.destination);
    // NULLs (never failed) sort last going up, first going down; ties by name.
    expect(await names('order_by=retry_interval&dir=b')).toEqual(['Beta.example', 'alpha.example', 'gamma.example', 'delta.test']);
    expect(await names('order_by=retry_last_ts')).toEqual(['gamma.example', 'delta.test', 'Beta.example', 'alpha.example']);
    expect(await names('dir=b')).toEqual(['gamma.example', 'delta.test', 'alpha.example', 'Beta.example']);
  });

  it('filters on a part of the name, whatever its case', async () => {
    const res = await get(`${BASE}?destination=${enc('BETA')}`);
    expect(res.body).toMatchObject({ total: 1, destinations: [{ destination: 'Beta.example' }] });
    const none = await get(`${BASE}?destination=${enc('%')}`);
    expect(none.body).toEqual({ destinations: [], total: 0 });
  });

  it.each([
    ['from=-1', 'from'],
    ['limit=-5', 'limit'],
    ['limit=ten', 'limit'],
    ['order_by=nonsense', 'order_by'],
    ['dir=up', 'dir'],
  ])('%s is 400 M_INVALID_PARAM', async (q, name) => {
    const res = await get(`${BASE}?${q}`);
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
    expect(res.body.error).toContain(name);
  });
});

describe('one destination', () => {
  it('answers its retry state', async () => {
    const res = await get(`${BASE}/gamma.example`);
    expect(res.body).toEqual({ destination: 'gamma.example', retry_last_ts: 1_000_000, retry_interval: 40_000, failure_ts: 1_000_000, last_successful_stream_ordering: null });
  });

  it('an unknown destination is 404 M_NOT_FOUND', async () => {
    for (const path of [`${BASE}/nowhere.example`, `${BASE}/nowhere.example/rooms`]) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'Unknown destination' });
    }
    const res = await api(t, 'POST', `${BASE}/nowhere.example/reset_connection`, { token: admin.accessToken, body: {} });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ errcode: 'M_NOT_FOUND', error: 'Unknown destination' });
  });

  it('lists its rooms by room id with the newest stream ordering queued, paged', async () => {
    const res = await get(`${BASE}/alpha.example/rooms`);
    expect(res.body).toEqual({
      rooms: [
        { room_id: '!a:test.local', stream_ordering: 6 },
        { room_id: '!b:test.local', stream_ordering: 7 },
        { room_id: '!c:test.local', stream_ordering: 8 },
      ],
      total: 3,
    });
    const page = await get(`${BASE}/alpha.example/rooms?limit=1&from=1&dir=b`);
    expect(page.body).toEqual({ rooms: [{ room_id: '!b:test.local', stream_ordering: 7 }], total: 3, next_token: '2' });
    expect((await get(`${BASE}/Beta.example/rooms`)).body).toEqual({ rooms: [], total: 0 });
    expect((await get(`${BASE}/alpha.example/rooms?from=-1`)).status).toBe(400);
  });

  it('reset_connection clears a backoff; without one it is 400', async () => {
    const res = await api(t, 'POST', `${BASE}/delta.test/reset_connection`, { token: admin.accessToken, body: {} });
    expect(res).toMatchObject({ status: 200, body: {} });
    expect((await get(`${BASE}/delta.test`)).body).toEqual({
      destination: 'delta.test',
      retry_last_ts: 0,
      retry_interval: 0,
      failure_ts: null,
      last_successful_stream_ordering: null,
    });
    const again = await api(t, 'POST', `${BASE}/delta.test/reset_connection`, { token: admin.accessToken, body: {} });
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ errcode: 'M_UNKNOWN', error: 'The retry timing does not need to be reset for this destination.' });
  });
});

describe('send_federation: false', () => {
  it('queues nothing: no events, no EDUs', async () => {
    const position = await streamPosition(db());
    const h = roomHelpers(() => t);
    const roomId = await h.createRoom(alice, { preset: 'public_chat' });
    await h.send(alice, roomId, text('hello'));
    await t.server.ctx.services.federationSender.queueEdu('epsilon.example', 'm.direct_to_device', { a: 1 });
    expect(await streamPosition(db())).toBe(position);
    expect(await getDestination(db(), 'epsilon.example')).toBeUndefined();
    expect(await db().selectFrom('federation_outbox_edus').selectAll().execute()).toEqual([]);
  });
});

/**
 * Filters: uploading and downloading (ids per user from 0, the same filter
 * twice gives the same id, the timeline limit capped), validation errors,
 * other users' filters, and what stored and inline filters do to /sync.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;
const enc = encodeURIComponent;

const { t, alice, bob } = useServerWithUsers('alice', 'bob');

const upload = (u: TestUser, body: unknown, owner = u.userId) => api(t, 'POST', `/_matrix/client/v3/user/${enc(owner)}/filter`, { token: u.accessToken, body });
const download = (u: TestUser, id: unknown, owner = u.userId) => api(t, 'GET', `/_matrix/client/r0/user/${enc(owner)}/filter/${enc(String(id))}`, { token: u.accessToken });

async function sync(u: TestUser, params: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const q = new URLSearchParams(params);
  return api(t, 'GET', `/_matrix/client/v3/sync?${q}`, { token: u.accessToken });
}

let txn = 0;
async function send(u: TestUser, roomId: string, content: object, type = 'm.room.message'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/f${++txn}`, { token: u.accessToken, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

describe('uploading and downloading', () => {
  it('gives per-user ids from 0, reuses the id of an identical filter, and gives the filter back', async () => {
    const f1 = { room: { timeline: { limit: 5, types: ['m.room.message'] } }, event_fields: ['type', 'content.body'] };
    const r1 = await upload(alice, f1);
    expect(r1.status).toBe(200);
    expect(r1.body).toEqual({ filter_id: '0' });
    const r2 = await upload(alice, { presence: { not_types: ['*'] } });
    expect(r2.body.filter_id).toBe('1');
    // The same filter (keys in another order) keeps its id.
    const again = await upload(alice, { event_fields: ['type', 'content.body'], room: { timeline: { types: ['m.room.message'], limit: 5 } } });
    expect(again.body.filter_id).toBe('0');
    // Bob's ids are his own.
    expect((await upload(bob, f1)).body.filter_id).toBe('0');
    const got = await download(alice, '0');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(f1);
    const rows = await t.server.ctx.database.db.selectFrom('user_filters').select(['user_id', 'filter_id']).orderBy('user_id').orderBy('filter_id').execute();
    expect(rows.map((r) => [r.user_id, Number(r.filter_id)])).toEqual([
      [alice.userId, 0],
      [alice.userId, 1],
      [bob.userId, 0],
    ]);
  });

  it('caps the timeline limit at filter_timeline_limit', async () => {
    const r = await upload(alice, { room: { timeline: { limit: 5000 } } });
    expect((await download(alice, r.body.filter_id)).body).toEqual({ room: { timeline: { limit: 100 } } });
  });

  it('keeps unknown keys, for forward compatibility', async () => {
    const r = await upload(alice, { 'org.example.future': { x: 1 }, room: { timeline: { 'org.example.flag': true } } });
    expect(r.status).toBe(200);
    expect((await download(alice, r.body.filter_id)).body).toEqual({ 'org.example.future': { x: 1 }, room: { timeline: { 'org.example.flag': true } } });
  });

  it("refuses other users' filters and unknown ids", async () => {
    const up = await upload(bob, {}, alice.userId);
    expect(up.status).toBe(403);
    expect(up.body.errcode).toBe('M_FORBIDDEN');
    const down = await download(bob, '0', alice.userId);
    expect(down.status).toBe(403);
    expect(down.body.errcode).toBe('M_FORBIDDEN');
    const missing = await download(alice, '999');
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    const bad = await download(alice, 'abc');
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const anon = await api(t, 'POST', `/_matrix/client/v3/user/${enc(alice.userId)}/filter`, { body: {} });
    expect(anon.status).toBe(401);
  });

  it('validates the filter', async () => {
    const invalid: unknown[] = [
      { event_format: 'xml' },
      { event_fields: 'type' },
      { event_fields: [1] },
      { presence: { limit: -1 } },
      { presence: { limit: 'ten' } },
      { presence: { types: 'm.presence' } },
      { account_data: { senders: ['not-a-user'] } },
      { room: [] },
      { room: { rooms: ['#alias:test.local'] } },
      { room: { not_rooms: [5] } },
      { room: { include_leave: 'yes' } },
      { room: { timeline: { limit: 2.5 } } },
      { room: { timeline: { not_senders: ['@nocolon'] } } },
      { room: { state: { lazy_load_members: 'true' } } },
      { room: { ephemeral: { contains_url: 1 } } },
      { room: { account_data: [] } },
    ];
    for (const body of invalid) {
      const r = await upload(alice, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errcode, JSON.stringify(body)).toBe('M_INVALID_PARAM');
    }
    const notObject = await upload(alice, [1, 2]);
    expect(notObject.status).toBe(400);
    expect(notObject.body.errcode).toBe('M_BAD_JSON');
    const count = await t.server.ctx.database.db
      .selectFrom('user_filters')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', '=', alice.userId)
      .executeTakeFirst();
    expect(Number(count?.n)).toBe(4);
  });
});

describe('filters in /sync', () => {
  let roomId: string;
  let other: string;
  beforeAll(async () => {
    const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat', name: 'Filtered' } });
    roomId = res.body.room_id as string;
    other = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: {} })).body.room_id as string;
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} });
    await send(alice, roomId, { msgtype: 'm.text', body: 'one' });
    await send(bob, roomId, { msgtype: 'm.image', body: 'pic', url: 'mxc://test.local/abc' });
    await send(alice, roomId, { custom: true }, 'org.example.custom');
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/org.example.a`, { token: alice.accessToken, body: { a: 1 } });
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/org.example.b`, { token: alice.accessToken, body: { b: 1 } });
  });

  it('a stored filter applies by id, an inline one as JSON', async () => {
    const id = (await upload(alice, { room: { timeline: { limit: 1 } } })).body.filter_id as string;
    const stored = await sync(alice, { filter: id });
    expect(stored.status).toBe(200);
    const tl = stored.body.rooms.join[roomId].timeline;
    expect(tl.events).toHaveLength(1);
    expect(tl.limited).toBe(true);
    const inline = await sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 2 } } }) });
    expect(inline.body.rooms.join[roomId].timeline.events).toHaveLength(2);
  });

  it('refuses unknown, malformed and invalid filters with 400', async () => {
    const unknown = await sync(alice, { filter: '12345' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errcode).toBe('M_INVALID_PARAM');
    // Bob's filter ids are not Alice's.
    const bobs = (await upload(bob, { room: { timeline: { limit: 1 } } })).body.filter_id as string;
    expect((await sync(alice, { filter: String(Number(bobs) + 50) })).body.errcode).toBe('M_INVALID_PARAM');
    const notJson = await sync(alice, { filter: '{"room":' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.errcode).toBe('M_NOT_JSON');
    const invalid = await sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: -3 } } }) });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('types, not_types, senders, not_senders and contains_url pick timeline events', async () => {
    const pick = async (timeline: object) => {
      const r = await sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 50, ...timeline } } }) });
      expect(r.status).toBe(200);
      return (r.body.rooms.join[roomId].timeline.events as Json[]).map((e) => e.type as string);
    };
    expect(await pick({ types: ['m.room.message'] })).toEqual(['m.room.message', 'm.room.message']);
    expect(await pick({ types: ['org.example.*'] })).toEqual(['org.example.custom']);
    expect(await pick({ types: ['m.*'], not_types: ['m.room.member', 'm.room.message'] })).not.toContain('m.room.message');
    expect(await pick({ types: ['m.room.message'], senders: [bob.userId] })).toEqual(['m.room.message']);
    expect(await pick({ types: ['m.room.message'], not_senders: [bob.userId] })).toEqual(['m.room.message']);
    expect(await pick({ contains_url: true })).toEqual(['m.room.message']);
    expect((await pick({ contains_url: false })).filter((ty) => ty === 'm.room.message')).toHaveLength(1);
  });

  it('room filters choose rooms; state filters choose state; account data filters choose entries', async () => {
    const only = await sync(alice, { filter: JSON.stringify({ room: { rooms: [other] } }) });
    expect(Object.keys(only.body.rooms.join)).toEqual([other]);
    const not = await sync(alice, { filter: JSON.stringify({ room: { not_rooms: [other] } }) });
    expect(not.body.rooms.join[other]).toBeUndefined();
    expect(not.body.rooms.join[roomId]).toBeDefined();

    const state = await sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 1 }, state: { types: ['m.room.name'] } } }) });
    expect((state.body.rooms.join[roomId].state.events as Json[]).map((e) => e.type)).toEqual(['m.room.name']);

    const ad = await sync(alice, { filter: JSON.stringify({ account_data: { types: ['org.example.b'] } }) });
    expect(ad.body.account_data.events).toEqual([{ type: 'org.example.b', content: { b: 1 } }]);
    const noAd = await sync(alice, { filter: JSON.stringify({ account_data: { not_types: ['*'] } }) });
    expect(noAd.body.account_data.events).toEqual([]);
  });

  it('event_fields trims events; event_format federation gives the PDUs', async () => {
    const trimmed = await sync(alice, { filter: JSON.stringify({ event_fields: ['type', 'content.body'], room: { timeline: { limit: 50, types: ['m.room.message'] } } }) });
    for (const e of trimmed.body.rooms.join[roomId].timeline.events as Json[]) {
      expect(Object.keys(e).sort()).toEqual(['content', 'type']);
      expect(Object.keys(e.content)).toEqual(['body']);
    }
    const fed = await sync(alice, { filter: JSON.stringify({ event_format: 'federation', room: { timeline: { limit: 1, types: ['m.room.message'] } } }) });
    const [pdu] = fed.body.rooms.join[roomId].timeline.events as Json[];
    expect(pdu.room_id).toBe(roomId);
    expect(pdu.hashes).toBeDefined();
    expect(pdu.signatures).toBeDefined();
    expect(typeof pdu.depth).toBe('number');
    expect(pdu.prev_events).toBeDefined();
  });

  it('a timeline limit of 0 sends no events, marked limited', async () => {
    const r = await sync(alice, { filter: JSON.stringify({ room: { timeline: { limit: 0 } } }) });
    const tl = r.body.rooms.join[roomId].timeline;
    expect(tl.events).toEqual([]);
    expect(tl.limited).toBe(true);
  });
});

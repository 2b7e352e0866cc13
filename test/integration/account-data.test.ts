/**
 * Account data, global and per room: storage with a new stream position on
 * every write, and the spec's refusals.
 */
import { describe, expect, it } from 'vitest';
import { accountDataMaxStreamId, accountDataSince } from '../../src/storage/account-data.js';
import { useTestServer } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const t = useTestServer();

const db = () => t.server.ctx.database.db;
const globalPath = (u: string, type: string, v = 'v3') => `/_matrix/client/${v}/user/${encodeURIComponent(u)}/account_data/${encodeURIComponent(type)}`;
const roomPath = (u: string, room: string, type: string, v = 'v3') =>
  `/_matrix/client/${v}/user/${encodeURIComponent(u)}/rooms/${encodeURIComponent(room)}/account_data/${encodeURIComponent(type)}`;

async function streamIds(u: TestUser): Promise<Map<string, number>> {
  const rows = await db().selectFrom('account_data').select(['room_id', 'type', 'stream_id']).where('user_id', '=', u.userId).execute();
  return new Map(rows.map((r) => [`${r.room_id}|${r.type}`, Number(r.stream_id)]));
}

describe('global account data', () => {
  it('stores, returns and replaces content, each write at a new stream position', async () => {
    const u = await createUser(t, 'alice');
    const content = { ignored_users: { '@spam:example.org': {} } };
    const put = await api(t, 'PUT', globalPath(u.userId, 'm.ignored_user_list'), { token: u.accessToken, body: content });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({});
    const get = await api(t, 'GET', globalPath(u.userId, 'm.ignored_user_list', 'r0'), { token: u.accessToken });
    expect(get.status).toBe(200);
    expect(get.body).toEqual(content);

    const before = (await streamIds(u)).get('|m.ignored_user_list') ?? 0;
    await api(t, 'PUT', globalPath(u.userId, 'org.example.other'), { token: u.accessToken, body: { n: 1 } });
    await api(t, 'PUT', globalPath(u.userId, 'm.ignored_user_list'), { token: u.accessToken, body: { ignored_users: {} } });
    const after = await streamIds(u);
    expect(after.get('|org.example.other')).toBeGreaterThan(before);
    expect(after.get('|m.ignored_user_list')).toBeGreaterThan(after.get('|org.example.other') ?? Infinity);
    expect((await api(t, 'GET', globalPath(u.userId, 'm.ignored_user_list'), { token: u.accessToken })).body).toEqual({ ignored_users: {} });
    // What /sync will ask: the changes after a position, and the stream's head.
    const changed = await accountDataSince(db(), u.userId, before);
    expect(changed.map((c) => c.type)).toEqual(['org.example.other', 'm.ignored_user_list']);
    expect(await accountDataMaxStreamId(db())).toBeGreaterThanOrEqual(after.get('|m.ignored_user_list') ?? Infinity);
    const rows = await db().selectFrom('account_data').select('type').where('user_id', '=', u.userId).where('type', '=', 'm.ignored_user_list').execute();
    expect(rows).toHaveLength(1);
  });

  it('keeps unusual JSON intact', async () => {
    const u = await createUser(t, 'bob');
    const content = { nested: { list: [1, 'two', null, true, { 'k\\u0000ey': 'é😀\u2028' }] }, empty: {}, big: 9007199254740991 };
    expect((await api(t, 'PUT', globalPath(u.userId, 'org.example.json'), { token: u.accessToken, body: content })).status).toBe(200);
    expect((await api(t, 'GET', globalPath(u.userId, 'org.example.json'), { token: u.accessToken })).body).toEqual(content);
  });

  it('refuses U+0000, which the database cannot hold, with a 400', async () => {
    const u = await createUser(t, 'bobby');
    const inValue = await api(t, 'PUT', globalPath(u.userId, 'org.example.nul'), { token: u.accessToken, body: { a: 'x\u0000y' } });
    expect(inValue.status).toBe(400);
    expect(inValue.body.errcode).toBe('M_BAD_JSON');
    const inKey = await api(t, 'PUT', roomPath(u.userId, '!r:test.local', 'org.example.nul'), { token: u.accessToken, body: { ['k\u0000']: 1 } });
    expect(inKey.status).toBe(400);
    const inType = await api(t, 'GET', globalPath(u.userId, 'org.example\u0000nul'), { token: u.accessToken });
    expect(inType.status).toBe(400);
    expect(inType.body.errcode).toBe('M_INVALID_PARAM');
    const inRoom = await api(t, 'GET', roomPath(u.userId, '!r\u0000', 'org.example.nul'), { token: u.accessToken });
    expect(inRoom.status).toBe(400);
  });

  it('answers 404 M_NOT_FOUND for data never set', async () => {
    const u = await createUser(t, 'carol');
    const res = await api(t, 'GET', globalPath(u.userId, 'org.example.absent'), { token: u.accessToken });
    expect(res.status).toBe(404);
    expect(res.body.errcode).toBe('M_NOT_FOUND');
  });

  it('is only for oneself (403 M_FORBIDDEN)', async () => {
    const u = await createUser(t, 'dave');
    const v = await createUser(t, 'erin');
    await api(t, 'PUT', globalPath(v.userId, 'org.example.x'), { token: v.accessToken, body: { secret: true } });
    const read = await api(t, 'GET', globalPath(v.userId, 'org.example.x'), { token: u.accessToken });
    expect(read.status).toBe(403);
    expect(read.body.errcode).toBe('M_FORBIDDEN');
    const write = await api(t, 'PUT', globalPath(v.userId, 'org.example.x'), { token: u.accessToken, body: { secret: false } });
    expect(write.status).toBe(403);
    expect(write.body.errcode).toBe('M_FORBIDDEN');
    expect((await api(t, 'GET', globalPath(v.userId, 'org.example.x'), { token: v.accessToken })).body).toEqual({ secret: true });
  });

  it('refuses bodies that are not JSON objects, and server-managed types (405 M_BAD_JSON)', async () => {
    const u = await createUser(t, 'frank');
    for (const body of [[1], 'text', 5, null]) {
      const res = await api(t, 'PUT', globalPath(u.userId, 'org.example.y'), { token: u.accessToken, body });
      expect({ body, status: res.status, errcode: res.body.errcode }).toEqual({ body, status: 400, errcode: 'M_BAD_JSON' });
    }
    const raw = await fetch(`${t.url}${globalPath(u.userId, 'org.example.y')}`, { method: 'PUT', headers: { authorization: `Bearer ${u.accessToken}` }, body: 'nope' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { errcode: string }).errcode).toBe('M_NOT_JSON');
    for (const type of ['m.fully_read', 'm.push_rules']) {
      const res = await api(t, 'PUT', globalPath(u.userId, type), { token: u.accessToken, body: {} });
      expect(res.status).toBe(405);
      expect(res.body.errcode).toBe('M_BAD_JSON');
    }
    expect(await db().selectFrom('account_data').select('type').where('user_id', '=', u.userId).execute()).toHaveLength(0);
  });

  it('needs a token and is not for guests', async () => {
    const u = await createUser(t, 'grace');
    expect((await api(t, 'GET', globalPath(u.userId, 'x'))).body.errcode).toBe('M_MISSING_TOKEN');
    const g = await createGuest(t);
    const res = await api(t, 'PUT', globalPath(g.userId, 'org.example.z'), { token: g.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('room account data', () => {
  it('stores per room, apart from global data and other rooms', async () => {
    const u = await createUser(t, 'heidi');
    const room = '!abcdef:test.local';
    const put = await api(t, 'PUT', roomPath(u.userId, room, 'm.tag'), { token: u.accessToken, body: { tags: { 'm.favourite': { order: 0.5 } } } });
    expect(put.status).toBe(200);
    expect((await api(t, 'GET', roomPath(u.userId, room, 'm.tag', 'r0'), { token: u.accessToken })).body).toEqual({ tags: { 'm.favourite': { order: 0.5 } } });
    expect((await api(t, 'GET', globalPath(u.userId, 'm.tag'), { token: u.accessToken })).status).toBe(404);
    const other = await api(t, 'GET', roomPath(u.userId, '!other:test.local', 'm.tag'), { token: u.accessToken });
    expect(other.status).toBe(404);
    expect(other.body.errcode).toBe('M_NOT_FOUND');
    // Room version 12 ids have no server part.
    const v12 = '!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM';
    expect((await api(t, 'PUT', roomPath(u.userId, v12, 'm.tag'), { token: u.accessToken, body: { tags: {} } })).status).toBe(200);
    const ids = await streamIds(u);
    expect(ids.get(`${v12}|m.tag`)).toBeGreaterThan(ids.get(`${room}|m.tag`) ?? Infinity);
  });

  it('refuses invalid room ids, other users, bad bodies and server-managed types', async () => {
    const u = await createUser(t, 'ivan');
    const v = await createUser(t, 'judy');
    for (const room of ['abcdef:test.local', '#alias:test.local', '!abc:bad host', '!']) {
      for (const method of ['GET', 'PUT']) {
        const res = await api(t, method, roomPath(u.userId, room, 'm.tag'), { token: u.accessToken, body: method === 'PUT' ? { tags: {} } : undefined });
        expect({ room, method, status: res.status, errcode: res.body.errcode }).toEqual({ room, method, status: 400, errcode: 'M_INVALID_PARAM' });
      }
    }
    const room = '!room:test.local';
    expect((await api(t, 'PUT', roomPath(v.userId, room, 'm.tag'), { token: u.accessToken, body: {} })).status).toBe(403);
    expect((await api(t, 'GET', roomPath(v.userId, room, 'm.tag'), { token: u.accessToken })).status).toBe(403);
    expect((await api(t, 'PUT', roomPath(u.userId, room, 'm.tag'), { token: u.accessToken, body: ['x'] })).body.errcode).toBe('M_BAD_JSON');
    for (const type of ['m.fully_read', 'm.push_rules']) {
      const res = await api(t, 'PUT', roomPath(u.userId, room, type), { token: u.accessToken, body: { event_id: '$x' } });
      expect(res.status).toBe(405);
      expect(res.body.errcode).toBe('M_BAD_JSON');
    }
    expect(await db().selectFrom('account_data').select('type').where('user_id', '=', u.userId).execute()).toHaveLength(0);
  });
});

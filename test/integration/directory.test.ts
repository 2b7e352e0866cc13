/**
 * The published room directory over HTTP: GET/PUT
 * /directory/list/room/{roomId} with Synapse's permission checks and
 * publication rules, and GET/POST /publicRooms (order, entries, filters,
 * pagination both ways, counts, auth, settings).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const enc = encodeURIComponent;
const ALLOW_ALL = { room_list_publication_rules: [{ action: 'allow' }] };

async function createRoom(s: TestServer, token: string, body: object): Promise<string> {
  const res = await api(s, 'POST', '/_matrix/client/v3/createRoom', { token, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}
const listPath = (roomId: string, v = 'v3') => `/_matrix/client/${v}/directory/list/room/${enc(roomId)}`;
const visibility = async (s: TestServer, roomId: string) => (await api(s, 'GET', listPath(roomId))).body.visibility;

describe('GET/PUT /directory/list/room/{roomId}', () => {
  const { t, alice, bob, root: admin } = useServerWith({ yaml: ALLOW_ALL, admins: ['root'] }, 'alice', 'bob', 'root');

  it('reads visibility without a token; unknown rooms are 404 M_NOT_FOUND', async () => {
    const priv = await createRoom(t, alice.accessToken, { preset: 'public_chat' });
    const pub = await createRoom(t, alice.accessToken, { visibility: 'public' });
    expect((await api(t, 'GET', listPath(priv, 'r0'))).body).toEqual({ visibility: 'private' });
    expect((await api(t, 'GET', listPath(pub))).body).toEqual({ visibility: 'public' });
    const unknown = await api(t, 'GET', listPath('!nope:test.local'));
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
  });

  it('lets members with the canonical-alias level and server admins change it; refuses others', async () => {
    const roomId = await createRoom(t, alice.accessToken, { preset: 'public_chat' });
    const outsider = await api(t, 'PUT', listPath(roomId), { token: bob.accessToken, body: { visibility: 'public' } });
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
    const weak = await api(t, 'PUT', listPath(roomId), { token: bob.accessToken, body: { visibility: 'public' } });
    expect(weak.status).toBe(403);
    expect(weak.body.error).toBe('This server requires you to be a moderator in the room to edit its room list entry');
    expect(await visibility(t, roomId)).toBe('private');

    expect((await api(t, 'PUT', listPath(roomId), { token: alice.accessToken, body: { visibility: 'public' } })).status).toBe(200);
    expect(await visibility(t, roomId)).toBe('public');
    expect((await api(t, 'PUT', listPath(roomId), { token: admin.accessToken, body: { visibility: 'private' } })).status).toBe(200);
    expect(await visibility(t, roomId)).toBe('private');
    // The body's visibility defaults to public.
    expect((await api(t, 'PUT', listPath(roomId, 'r0'), { token: alice.accessToken, body: {} })).status).toBe(200);
    expect(await visibility(t, roomId)).toBe('public');

    // A lowered canonical-alias level lets bob in.
    await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.power_levels`, {
      token: alice.accessToken,
      body: { users: { [alice.userId]: 100 }, events: { 'm.room.canonical_alias': 0 } },
    });
    expect((await api(t, 'PUT', listPath(roomId), { token: bob.accessToken, body: { visibility: 'private' } })).status).toBe(200);
  });

  it('refuses bad input, unknown rooms, guests and missing tokens', async () => {
    const roomId = await createRoom(t, alice.accessToken, {});
    const bad = await api(t, 'PUT', listPath(roomId), { token: alice.accessToken, body: { visibility: 'everyone' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const unknown = await api(t, 'PUT', listPath('!nope:test.local'), { token: alice.accessToken, body: { visibility: 'public' } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    const guest = await createGuest(t);
    expect((await api(t, 'PUT', listPath(roomId), { token: guest.accessToken, body: { visibility: 'public' } })).body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    expect((await api(t, 'PUT', listPath(roomId), { body: { visibility: 'public' } })).status).toBe(401);
  });
});

describe('/publicRooms', () => {
  let t: TestServer;
  let owner: TestUser;
  const users: TestUser[] = [];
  const rooms: Record<string, string> = {};
  beforeAll(async () => {
    t = await startTestServer({ yaml: ALLOW_ALL });
    owner = await createUser(t, 'owner');
    for (let i = 0; i < 4; i++) users.push(await createUser(t, `u${i}`));
    const join = async (roomId: string, n: number) => {
      for (const u of users.slice(0, n)) expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: u.accessToken, body: {} })).status).toBe(200);
    };
    // Sizes (joined members): big 5, mid 3, small 2, tiny 1, space 1; plus rooms that must not show.
    rooms.big = await createRoom(t, owner.accessToken, {
      visibility: 'public',
      name: 'Big Hall',
      topic: 'Everything about Gardening',
      room_alias_name: 'bighall',
      initial_state: [
        { type: 'm.room.avatar', content: { url: 'mxc://test.local/hall' } },
        { type: 'm.room.guest_access', content: { guest_access: 'can_join' } },
      ],
    });
    await join(rooms.big, 4);
    rooms.mid = await createRoom(t, owner.accessToken, { visibility: 'public', name: 'Middle' });
    await join(rooms.mid, 2);
    rooms.small = await createRoom(t, owner.accessToken, { visibility: 'public', name: 'Small talk', topic: 'chatter' });
    await join(rooms.small, 1);
    rooms.tiny = await createRoom(t, owner.accessToken, { visibility: 'public', preset: 'public_chat', name: 'Tiny', room_alias_name: 'tinyroom' });
    rooms.space = await createRoom(t, owner.accessToken, { visibility: 'public', name: 'A space', creation_content: { type: 'm.space' } });
    rooms.readable = await createRoom(t, owner.accessToken, {
      visibility: 'public',
      preset: 'private_chat',
      name: 'Readable',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
    });
    // Not listed: invite-only, not published, nobody joined.
    await createRoom(t, owner.accessToken, { visibility: 'public', preset: 'private_chat', name: 'Invite only' });
    await createRoom(t, owner.accessToken, { preset: 'public_chat', name: 'Unpublished' });
    const empty = await createRoom(t, users[3]!.accessToken, { visibility: 'public', name: 'Empty' });
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(empty)}/leave`, { token: users[3]!.accessToken, body: {} })).status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  // null: no access token.
  const get = (query = '', token: string | null = owner.accessToken) => api(t, 'GET', `/_matrix/client/v3/publicRooms${query}`, { token: token ?? undefined });
  const post = (body: object, query = '', token: string | null = owner.accessToken) =>
    api(t, 'POST', `/_matrix/client/v3/publicRooms${query}`, { token: token ?? undefined, body });
  const ids = (body: Record<string, unknown>) => (body.chunk as { room_id: string }[]).map((e) => e.room_id);

  it('lists published rooms a stranger can enter, largest first, with Synapse-shaped entries', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    const sameSize = [rooms.tiny!, rooms.space!, rooms.readable!].sort().reverse();
    expect(ids(res.body)).toEqual([rooms.big, rooms.mid, rooms.small, ...sameSize]);
    expect(res.body.total_room_count_estimate).toBe(6);
    expect(res.body.next_batch).toBeUndefined();
    expect(res.body.prev_batch).toBeUndefined();
    const chunk = res.body.chunk as Record<string, unknown>[];
    expect(chunk[0]).toEqual({
      room_id: rooms.big,
      name: 'Big Hall',
      topic: 'Everything about Gardening',
      canonical_alias: '#bighall:test.local',
      num_joined_members: 5,
      avatar_url: 'mxc://test.local/hall',
      world_readable: false,
      guest_can_join: true,
      join_rule: 'public',
    });
    expect(chunk.find((e) => e.room_id === rooms.space)).toMatchObject({ room_type: 'm.space', num_joined_members: 1 });
    expect(chunk.find((e) => e.room_id === rooms.readable)).toMatchObject({ world_readable: true, join_rule: 'invite' });
    // r0 and POST give the same list.
    expect(ids((await api(t, 'GET', '/_matrix/client/r0/publicRooms', { token: owner.accessToken })).body)).toEqual(ids(res.body));
    expect(ids((await post({})).body)).toEqual(ids(res.body));
  });

  it('pages forwards with next_batch and back with prev_batch', async () => {
    const all = ids((await get()).body);
    const p1 = await get('?limit=2');
    expect(ids(p1.body)).toEqual(all.slice(0, 2));
    expect(p1.body.prev_batch).toBeUndefined();
    const p2 = await get(`?limit=2&since=${enc(p1.body.next_batch as string)}`);
    expect(ids(p2.body)).toEqual(all.slice(2, 4));
    expect(p2.body.prev_batch).toBeDefined();
    const p3 = await post({ limit: 2, since: p2.body.next_batch });
    expect(ids(p3.body)).toEqual(all.slice(4, 6));
    expect(p3.body.next_batch).toBeUndefined();
    const back = await get(`?limit=2&since=${enc(p3.body.prev_batch as string)}`);
    expect(ids(back.body)).toEqual(all.slice(2, 4));
    const first = await get(`?limit=2&since=${enc(back.body.prev_batch as string)}`);
    expect(ids(first.body)).toEqual(all.slice(0, 2));
    expect(first.body.prev_batch).toBeUndefined();
    expect(ids((await get(`?limit=2&since=${enc(first.body.next_batch as string)}`)).body)).toEqual(all.slice(2, 4));
    expect(p1.body.total_room_count_estimate).toBe(6);
  });

  it('filters by a search term over name, topic and alias, and by room type', async () => {
    expect(ids((await post({ filter: { generic_search_term: 'gardening' } })).body)).toEqual([rooms.big]);
    expect(ids((await post({ filter: { generic_search_term: 'SMALL' } })).body)).toEqual([rooms.small]);
    expect(ids((await post({ filter: { generic_search_term: 'tinyroom' } })).body)).toEqual([rooms.tiny]);
    expect(ids((await post({ filter: { generic_search_term: '%' } })).body)).toEqual([]);
    const spaces = await post({ filter: { room_types: ['m.space'] } });
    expect(ids(spaces.body)).toEqual([rooms.space]);
    expect(spaces.body.total_room_count_estimate).toBe(1);
    expect(ids((await post({ filter: { room_types: [null] } })).body)).not.toContain(rooms.space);
    expect(ids((await post({ include_all_networks: true, limit: 1 })).body)).toEqual([rooms.big]);
    expect((await post({ third_party_instance_id: 'irc|freenode' })).body).toEqual({ chunk: [], total_room_count_estimate: 0 });
  });

  it('refuses bad parameters and missing tokens, and answers 502 for a server it cannot reach', async () => {
    const cases: [Promise<{ status: number; body: Record<string, unknown> }>, number, string][] = [
      [get('?limit=abc'), 400, 'M_INVALID_PARAM'],
      [get('?limit=-1'), 400, 'M_INVALID_PARAM'],
      [get('?since=garbage'), 400, 'M_INVALID_PARAM'],
      [post({ limit: 'ten' }), 400, 'M_BAD_JSON'],
      [post({ filter: 'x' }), 400, 'M_BAD_JSON'],
      [post({ filter: { room_types: [1] } }), 400, 'M_BAD_JSON'],
      [post({ include_all_networks: true, third_party_instance_id: 'irc' }), 400, 'M_INVALID_PARAM'],
      // Port 1 on the loopback (outside this test server's ip_range_whitelist): unreachable, so 502, and nothing leaves the machine.
      [get('?server=localhost:1'), 502, 'M_UNKNOWN'],
      [post({}, '?server=localhost:1'), 502, 'M_UNKNOWN'],
      [get('?server=bad%20name'), 400, 'M_INVALID_PARAM'],
      [get('', null), 401, 'M_MISSING_TOKEN'],
      [post({}, '', null), 401, 'M_MISSING_TOKEN'],
    ];
    for (const [p, status, errcode] of cases) {
      const res = await p;
      expect(res.status).toBe(status);
      expect(res.body.errcode).toBe(errcode);
    }
    expect((await get('?server=test.local')).status).toBe(200);
  });
});

describe('directory settings', () => {
  it('by default only server admins publish, and allow_public_rooms_without_auth opens GET /publicRooms', async () => {
    const s = await startTestServer({ yaml: { allow_public_rooms_without_auth: true } });
    try {
      const user = await createUser(s, 'user');
      const boss = await createUser(s, 'boss', { admin: true });
      const roomId = await createRoom(s, user.accessToken, { visibility: 'public', name: 'Not listed' });
      expect(await visibility(s, roomId)).toBe('private');
      const refused = await api(s, 'PUT', listPath(roomId), { token: user.accessToken, body: { visibility: 'public' } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('Not allowed to publish room');
      const bossRoom = await createRoom(s, boss.accessToken, { visibility: 'public', name: 'Listed' });
      expect(await visibility(s, bossRoom)).toBe('public');
      expect((await api(s, 'PUT', listPath(roomId), { token: boss.accessToken, body: { visibility: 'public' } })).status).toBe(200);

      const anon = await api(s, 'GET', '/_matrix/client/v3/publicRooms');
      expect(anon.status).toBe(200);
      expect((anon.body.chunk as { room_id: string }[]).map((e) => e.room_id).sort()).toEqual([roomId, bossRoom].sort());
      expect((await api(s, 'GET', '/_matrix/client/v3/publicRooms', { token: 'not-a-token' })).status).toBe(200);
      expect((await api(s, 'GET', '/_matrix/client/v3/publicRooms?server=localhost:1')).status).toBe(401);
      expect((await api(s, 'POST', '/_matrix/client/v3/publicRooms', { body: {} })).status).toBe(401);
    } finally {
      await s.close();
    }
  });

  it('applies alias globs in room_list_publication_rules; enable_room_list_search: false empties the list', async () => {
    const s = await startTestServer({ yaml: { room_list_publication_rules: [{ alias: '#pub-*', action: 'allow' }] } });
    try {
      const user = await createUser(s, 'user');
      const plain = await createRoom(s, user.accessToken, { visibility: 'public' });
      const named = await createRoom(s, user.accessToken, { visibility: 'public', room_alias_name: 'pub-one' });
      expect(await visibility(s, plain)).toBe('private');
      expect(await visibility(s, named)).toBe('public');
      expect((await api(s, 'PUT', listPath(plain), { token: user.accessToken, body: { visibility: 'public' } })).status).toBe(403);
      expect((await api(s, 'PUT', `/_matrix/client/v3/directory/room/${enc('#pub-two:test.local')}`, { token: user.accessToken, body: { room_id: plain } })).status).toBe(200);
      expect((await api(s, 'PUT', listPath(plain), { token: user.accessToken, body: { visibility: 'public' } })).status).toBe(200);
    } finally {
      await s.close();
    }
    const off = await startTestServer({ yaml: { ...ALLOW_ALL, enable_room_list_search: false } });
    try {
      const user = await createUser(off, 'user');
      const roomId = await createRoom(off, user.accessToken, { preset: 'public_chat' });
      const refused = await api(off, 'PUT', listPath(roomId), { token: user.accessToken, body: { visibility: 'public' } });
      expect(refused.status).toBe(403);
      expect((await api(off, 'PUT', listPath(roomId), { token: user.accessToken, body: { visibility: 'private' } })).status).toBe(200);
      await off.server.ctx.database.db.updateTable('rooms').set({ is_public: true }).execute();
      expect((await api(off, 'GET', '/_matrix/client/v3/publicRooms', { token: user.accessToken })).body).toEqual({ chunk: [], total_room_count_estimate: 0 });
    } finally {
      await off.close();
    }
  });
});

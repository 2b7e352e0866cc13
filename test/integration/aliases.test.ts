/**
 * Room aliases over HTTP: PUT/GET/DELETE /directory/room/{roomAlias},
 * GET /rooms/{roomId}/aliases and createRoom's room_alias_name, with
 * Synapse's rules on who may create and delete, and the errors.
 */
import { describe, expect, it } from 'vitest';
import { useServerWith } from '../helpers/rooms.js';
import { startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const { t, alice, bob, carol, root: admin } = useServerWith({ admins: ['root'] }, 'alice', 'bob', 'carol', 'root');

const enc = encodeURIComponent;
const db = () => t.server.ctx.database.db;
const dir = (alias: string, v = 'v3') => `/_matrix/client/${v}/directory/room/${enc(alias)}`;
const create = async (body: object, token = alice.accessToken, s = t) => {
  const res = await api(s, 'POST', '/_matrix/client/v3/createRoom', { token, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
};
const join = async (roomId: string, token: string) => expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token, body: {} })).status).toBe(200);
const state = async (roomId: string, type: string, token = alice.accessToken) => api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/${type}`, { token });
const roomCount = async () => (await db().selectFrom('rooms').select('room_id').execute()).length;

describe('PUT and GET /directory/room/{roomAlias}', () => {
  it('creates an alias that resolves to the room with this server first; no token is needed to resolve', async () => {
    const roomId = await create({ preset: 'public_chat' });
    const put = await api(t, 'PUT', dir('#lobby:test.local', 'r0'), { token: alice.accessToken, body: { room_id: roomId } });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({});
    const got = await api(t, 'GET', dir('#lobby:test.local'));
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ room_id: roomId, servers: ['test.local'] });
    const row = await db().selectFrom('room_aliases').selectAll().where('room_alias', '=', '#lobby:test.local').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ room_id: roomId, creator: alice.userId });
  });

  it('refuses a taken alias with 409 M_ROOM_IN_USE', async () => {
    const a = await create({ preset: 'public_chat' });
    const b = await create({ preset: 'public_chat' });
    expect((await api(t, 'PUT', dir('#taken:test.local'), { token: alice.accessToken, body: { room_id: a } })).status).toBe(200);
    for (const roomId of [a, b]) {
      const again = await api(t, 'PUT', dir('#taken:test.local'), { token: alice.accessToken, body: { room_id: roomId } });
      expect(again.status).toBe(409);
      expect(again.body.errcode).toBe('M_ROOM_IN_USE');
    }
    expect((await api(t, 'GET', dir('#taken:test.local'))).body.room_id).toBe(a);
  });

  it('needs membership of the room, except for server admins', async () => {
    const roomId = await create({ preset: 'public_chat' });
    const outsider = await api(t, 'PUT', dir('#outside:test.local'), { token: bob.accessToken, body: { room_id: roomId } });
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
    expect(outsider.body.error).toBe('You must be in the room to create an alias for it');
    expect((await api(t, 'PUT', dir('#outside:test.local'), { token: admin.accessToken, body: { room_id: roomId } })).status).toBe(200);
    expect((await api(t, 'PUT', dir('#x:test.local'), { body: { room_id: roomId } })).status).toBe(401);
  });

  it('refuses bad and remote aliases with M_INVALID_PARAM, unknown rooms and bad bodies', async () => {
    const roomId = await create({ preset: 'public_chat' });
    const cases: [string, string][] = [
      ['no-hash:test.local', 'M_INVALID_PARAM'],
      ['#nocolon', 'M_INVALID_PARAM'],
      ['#:test.local', 'M_INVALID_PARAM'],
      ['#has space:test.local', 'M_INVALID_PARAM'],
      ['#elsewhere:remote.example', 'M_INVALID_PARAM'],
      [`#${'x'.repeat(250)}:test.local`, 'M_INVALID_PARAM'],
    ];
    for (const [alias, errcode] of cases) {
      const res = await api(t, 'PUT', dir(alias), { token: alice.accessToken, body: { room_id: roomId } });
      expect(res.status, alias).toBe(400);
      expect(res.body.errcode, alias).toBe(errcode);
    }
    const unknown = await api(t, 'PUT', dir('#ghost:test.local'), { token: alice.accessToken, body: { room_id: '!nope:test.local' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toBe('Room does not exist');
    expect((await api(t, 'PUT', dir('#nobody:test.local'), { token: alice.accessToken, body: {} })).body.errcode).toBe('M_MISSING_PARAM');
    expect((await api(t, 'PUT', dir('#nobody:test.local'), { token: alice.accessToken, body: { room_id: 5 } })).body.errcode).toBe('M_BAD_JSON');
    expect(await db().selectFrom('room_aliases').select('room_alias').where('room_id', '=', roomId).execute()).toEqual([]);
  });

  it('answers unknown aliases with 404 M_NOT_FOUND, those of a server it cannot reach with 502, and malformed ones with 400', async () => {
    const res = await api(t, 'GET', dir('#unknown:test.local'));
    expect(res.status).toBe(404);
    expect(res.body.errcode).toBe('M_NOT_FOUND');
    // Another server's alias is asked of it (federation-queries.test.ts); this one is on the loopback, which ip_range_blacklist refuses.
    const far = await api(t, 'GET', dir('#far:localhost:1'));
    expect(far.status).toBe(502);
    expect(far.body).toEqual({ errcode: 'M_UNKNOWN', error: 'Failed to fetch alias' });
    const bad = await api(t, 'GET', dir('lobby'));
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('DELETE /directory/room/{roomAlias}', () => {
  it("lets the alias's creator delete it even without power in the room", async () => {
    const roomId = await create({ preset: 'public_chat' });
    await join(roomId, bob.accessToken);
    expect((await api(t, 'PUT', dir('#bobs:test.local'), { token: bob.accessToken, body: { room_id: roomId } })).status).toBe(200);
    const del = await api(t, 'DELETE', dir('#bobs:test.local'), { token: bob.accessToken });
    expect(del.status).toBe(200);
    expect((await api(t, 'GET', dir('#bobs:test.local'))).status).toBe(404);
  });

  it('lets room moderators and server admins delete; refuses others; 404 for unknown, 400 for remote', async () => {
    const roomId = await create({ preset: 'public_chat' });
    await join(roomId, bob.accessToken);
    await join(roomId, carol.accessToken);
    for (const a of ['#one:test.local', '#two:test.local']) expect((await api(t, 'PUT', dir(a), { token: bob.accessToken, body: { room_id: roomId } })).status).toBe(200);
    const weak = await api(t, 'DELETE', dir('#one:test.local'), { token: carol.accessToken });
    expect(weak.status).toBe(403);
    expect(weak.body.errcode).toBe('M_FORBIDDEN');
    const outsider = await createUser(t, 'outsider');
    expect((await api(t, 'DELETE', dir('#one:test.local'), { token: outsider.accessToken })).status).toBe(403);
    expect((await api(t, 'DELETE', dir('#one:test.local'), { token: alice.accessToken })).status).toBe(200);
    expect((await api(t, 'DELETE', dir('#two:test.local'), { token: admin.accessToken })).status).toBe(200);
    const gone = await api(t, 'DELETE', dir('#two:test.local'), { token: admin.accessToken });
    expect(gone.status).toBe(404);
    expect(gone.body.errcode).toBe('M_NOT_FOUND');
    const remote = await api(t, 'DELETE', dir('#x:remote.example'), { token: admin.accessToken });
    expect(remote.status).toBe(400);
    expect(remote.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('takes a deleted alias out of m.room.canonical_alias', async () => {
    const roomId = await create({ preset: 'public_chat', room_alias_name: 'canon' });
    expect((await api(t, 'PUT', dir('#alt:test.local'), { token: alice.accessToken, body: { room_id: roomId } })).status).toBe(200);
    const put = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.canonical_alias`, {
      token: alice.accessToken,
      body: { alias: '#canon:test.local', alt_aliases: ['#alt:test.local'] },
    });
    expect(put.status).toBe(200);
    expect((await api(t, 'DELETE', dir('#alt:test.local'), { token: alice.accessToken })).status).toBe(200);
    expect((await state(roomId, 'm.room.canonical_alias')).body).toEqual({ alias: '#canon:test.local' });
    expect((await api(t, 'DELETE', dir('#canon:test.local'), { token: alice.accessToken })).status).toBe(200);
    expect((await state(roomId, 'm.room.canonical_alias')).body).toEqual({});
  });
});

describe('GET /rooms/{roomId}/aliases', () => {
  it('lists local aliases for members, server admins, and anyone in a world-readable room', async () => {
    const roomId = await create({ preset: 'public_chat' });
    for (const a of ['#zeta:test.local', '#alpha:test.local']) expect((await api(t, 'PUT', dir(a), { token: alice.accessToken, body: { room_id: roomId } })).status).toBe(200);
    const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/aliases`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ aliases: ['#alpha:test.local', '#zeta:test.local'] });
    const outsider = await api(t, 'GET', `/_matrix/client/r0/rooms/${enc(roomId)}/aliases`, { token: bob.accessToken });
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
    expect((await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/aliases`, { token: admin.accessToken })).body.aliases).toHaveLength(2);

    const readable = await create({ preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }] });
    const open = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(readable)}/aliases`, { token: bob.accessToken });
    expect(open.status).toBe(200);
    expect(open.body).toEqual({ aliases: [] });
  });
});

describe('createRoom with room_alias_name', () => {
  it('creates the alias with the room and sends m.room.canonical_alias', async () => {
    const roomId = await create({ preset: 'public_chat', room_alias_name: 'fresh' });
    expect((await api(t, 'GET', dir('#fresh:test.local'))).body.room_id).toBe(roomId);
    expect((await state(roomId, 'm.room.canonical_alias')).body).toEqual({ alias: '#fresh:test.local' });
  });

  it('fails as a whole with 400 M_ROOM_IN_USE when the alias is taken, writing nothing', async () => {
    await create({ room_alias_name: 'busy' });
    const before = await roomCount();
    const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: bob.accessToken, body: { room_alias_name: 'busy', name: 'second' } });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_ROOM_IN_USE');
    expect(await roomCount()).toBe(before);
  });

  it('lets only one of two racing creations have the alias; the other leaves nothing behind', async () => {
    const before = await roomCount();
    const results = await Promise.all([0, 1, 2].map(() => api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { room_alias_name: 'race' } })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400]);
    for (const r of results.filter((x) => x.status === 400)) expect(r.body.errcode).toBe('M_ROOM_IN_USE');
    expect(await roomCount()).toBe(before + 1);
    const winner = results.find((r) => r.status === 200)!.body.room_id;
    expect((await api(t, 'GET', dir('#race:test.local'))).body.room_id).toBe(winner);
  });

  it('refuses a full alias or whitespace with M_INVALID_PARAM', async () => {
    const before = await roomCount();
    for (const name of ['#wombat:test.local', 'has space', '']) {
      const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { room_alias_name: name } });
      expect(res.status, name).toBe(400);
      expect(res.body.errcode, name).toBe('M_INVALID_PARAM');
    }
    expect(await roomCount()).toBe(before);
  });
});

describe('alias settings', () => {
  it('applies alias_creation_rules and require_membership_for_aliases: false', async () => {
    const s = await startTestServer({
      yaml: { alias_creation_rules: [{ alias: '#ok-*', action: 'allow' }, { action: 'deny' }], require_membership_for_aliases: false },
    });
    try {
      const owner = await createUser(s, 'owner');
      const stranger = await createUser(s, 'stranger');
      const roomId = await create({ preset: 'public_chat' }, owner.accessToken, s);
      const denied = await api(s, 'PUT', dir('#nope:test.local'), { token: owner.accessToken, body: { room_id: roomId } });
      expect(denied.status).toBe(403);
      expect(denied.body.error).toBe('Not allowed to create alias');
      expect((await api(s, 'PUT', dir('#ok-1:test.local'), { token: stranger.accessToken, body: { room_id: roomId } })).status).toBe(200);
      const before = (await s.server.ctx.database.db.selectFrom('rooms').select('room_id').execute()).length;
      const viaCreate = await api(s, 'POST', '/_matrix/client/v3/createRoom', { token: owner.accessToken, body: { room_alias_name: 'nope2' } });
      expect(viaCreate.status).toBe(403);
      expect((await s.server.ctx.database.db.selectFrom('rooms').select('room_id').execute()).length).toBe(before);
    } finally {
      await s.close();
    }
  });
});

/**
 * POST /rooms/{roomId}/upgrade over HTTP: the tombstone, the new room's
 * predecessor and copied state, bans, aliases and the canonical alias, the
 * directory entry, tags and m.direct, the power levels of both rooms, v12
 * targets, and the refusals (which leave nothing behind).
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { roomHelpers, useServerWith } from '../helpers/rooms.js';
import { createGuest } from '../helpers/sessions.js';
import { api } from '../helpers/users.js';

const { t, alice, bob, carol } = useServerWith({ yaml: { room_list_publication_rules: [{ action: 'allow' }] } }, 'alice', 'bob', 'carol');

const enc = encodeURIComponent;
const db = () => t.server.ctx.database.db;
const create = (body: object, token: string = alice.accessToken) => roomHelpers(() => t).createRoom(token, body);
const upgrade = (roomId: string, body: object, token = alice.accessToken, v = 'v3') => api(t, 'POST', `/_matrix/client/${v}/rooms/${enc(roomId)}/upgrade`, { token, body });
const stateOf = async (roomId: string, token = alice.accessToken) => {
  const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state`, { token });
  expect(res.status).toBe(200);
  const map = new Map<string, { event_id: string; sender: string; content: Record<string, unknown> }>();
  for (const e of res.body as unknown as { type: string; state_key: string; event_id: string; sender: string; content: Record<string, unknown> }[])
    map.set(`${e.type}|${e.state_key}`, e);
  return map;
};
const content = async (roomId: string, key: string) => (await stateOf(roomId)).get(key)?.content;
const counts = async () => ({
  rooms: (await db().selectFrom('rooms').select('room_id').execute()).length,
  events: (await db().selectFrom('events').select('event_id').execute()).length,
});

describe('POST /rooms/{roomId}/upgrade', () => {
  it('replaces the room: tombstone, predecessor, copied state, bans, aliases, directory, tags, power levels', async () => {
    const old = await create({
      room_version: '10',
      visibility: 'public',
      preset: 'public_chat',
      name: 'Old hall',
      topic: 'the topic',
      room_alias_name: 'hall',
      power_level_content_override: { users: { [alice.userId]: 100, [bob.userId]: 50 }, invite: 0 },
      initial_state: [
        { type: 'm.room.avatar', content: { url: 'mxc://test.local/av' } },
        { type: 'm.room.encryption', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
        { type: 'm.room.server_acl', content: { allow: ['*'], deny: ['bad.example'], allow_ip_literals: false } },
        { type: 'm.room.guest_access', content: { guest_access: 'forbidden' } },
        { type: 'm.room.history_visibility', content: { history_visibility: 'joined' } },
      ],
    });
    for (const u of [bob, carol]) expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(old)}/join`, { token: u.accessToken, body: {} })).status).toBe(200);
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(old)}/ban`, { token: alice.accessToken, body: { user_id: carol.userId, reason: 'spam' } })).status).toBe(200);
    expect((await api(t, 'PUT', `/_matrix/client/v3/directory/room/${enc('#hall-alt:test.local')}`, { token: alice.accessToken, body: { room_id: old } })).status).toBe(200);
    await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(old)}/state/m.room.canonical_alias`, {
      token: alice.accessToken,
      body: { alias: '#hall:test.local', alt_aliases: ['#hall-alt:test.local', '#far:remote.example'] },
    });
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/rooms/${enc(old)}/account_data/m.tag`, {
      token: alice.accessToken,
      body: { tags: { 'm.favourite': { order: 0.5 } } },
    });
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.direct`, { token: alice.accessToken, body: { [bob.userId]: [old] } });
    const oldState = await stateOf(old);

    const res = await upgrade(old, { new_version: '11' });
    expect(res.status).toBe(200);
    const neu = res.body.replacement_room as string;
    expect(neu).toMatch(/^!.+:test\.local$/);

    // The old room: tombstone, then the canonical alias without local aliases, then restricted power levels.
    const after = await stateOf(old);
    const tomb = after.get('m.room.tombstone|')!;
    expect(tomb.content).toEqual({ body: 'This room has been replaced', replacement_room: neu });
    expect(tomb.sender).toBe(alice.userId);
    expect(after.get('m.room.canonical_alias|')!.content).toEqual({ alt_aliases: ['#far:remote.example'] });
    const oldPl = after.get('m.room.power_levels|')!.content;
    expect(oldPl).toMatchObject({ events_default: 50, invite: 50, users: { [alice.userId]: 100, [bob.userId]: 50 } });
    const silenced = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(old)}/send/m.room.message/after-upgrade`, {
      token: carol.accessToken,
      body: { msgtype: 'm.text', body: 'x' },
    });
    expect(silenced.status).toBe(403);

    // The new room.
    const ns = await stateOf(neu);
    expect(ns.get('m.room.create|')!.content).toEqual({ room_version: '11', predecessor: { room_id: old, event_id: tomb.event_id } });
    for (const key of [
      'm.room.name|',
      'm.room.topic|',
      'm.room.avatar|',
      'm.room.join_rules|',
      'm.room.history_visibility|',
      'm.room.guest_access|',
      'm.room.encryption|',
      'm.room.server_acl|',
    ]) {
      expect(ns.get(key)?.content, key).toEqual(oldState.get(key)!.content);
    }
    expect(ns.get('m.room.power_levels|')!.content).toEqual(oldState.get('m.room.power_levels|')!.content);
    expect(ns.get(`m.room.member|${carol.userId}`)!.content).toEqual({ membership: 'ban', reason: 'spam' });
    expect(ns.get(`m.room.member|${alice.userId}`)!.content.membership).toBe('join');
    expect(ns.get(`m.room.member|${bob.userId}`)).toBeUndefined();
    expect(ns.get('m.room.canonical_alias|')!.content).toEqual({ alias: '#hall:test.local', alt_aliases: ['#hall-alt:test.local'] });

    // Aliases, directory, tags and m.direct moved.
    expect((await api(t, 'GET', `/_matrix/client/v3/directory/room/${enc('#hall:test.local')}`)).body.room_id).toBe(neu);
    expect((await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(neu)}/aliases`, { token: alice.accessToken })).body.aliases).toEqual(['#hall-alt:test.local', '#hall:test.local']);
    expect((await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(old)}/aliases`, { token: alice.accessToken })).body.aliases).toEqual([]);
    expect((await api(t, 'GET', `/_matrix/client/v3/directory/list/room/${enc(old)}`)).body.visibility).toBe('private');
    expect((await api(t, 'GET', `/_matrix/client/v3/directory/list/room/${enc(neu)}`)).body.visibility).toBe('public');
    expect((await api(t, 'GET', `/_matrix/client/v3/user/${enc(alice.userId)}/rooms/${enc(neu)}/account_data/m.tag`, { token: alice.accessToken })).body).toEqual({
      tags: { 'm.favourite': { order: 0.5 } },
    });
    expect((await api(t, 'GET', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.direct`, { token: alice.accessToken })).body).toEqual({ [bob.userId]: [old, neu] });

    // Bob can follow the tombstone and join.
    expect((await api(t, 'POST', `/_matrix/client/v3/join/${enc('#hall:test.local')}`, { token: bob.accessToken, body: {} })).body.room_id).toBe(neu);
  });

  it('upgrades to v12: the new id is the create hash, creators leave the users map, additional_creators count', async () => {
    const old = await create({ room_version: '11', preset: 'public_chat', name: 'to twelve' });
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(old)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
    const res = await upgrade(old, { new_version: '12', additional_creators: [bob.userId] }, alice.accessToken, 'r0');
    expect(res.status).toBe(200);
    const neu = res.body.replacement_room as string;
    expect(neu).toMatch(/^![A-Za-z0-9_-]{43}$/);
    const ns = await stateOf(neu);
    expect(ns.get('m.room.create|')!.content).toEqual({ room_version: '12', predecessor: { room_id: old }, additional_creators: [bob.userId] });
    const users = ns.get('m.room.power_levels|')!.content.users as Record<string, number>;
    expect(users[alice.userId]).toBeUndefined();
    expect(users[bob.userId]).toBeUndefined();
    expect((await content(old, 'm.room.tombstone|'))!.replacement_room).toBe(neu);
    expect(ns.get('m.room.name|')!.content).toEqual({ name: 'to twelve' });
  });

  it('turns string power levels of old versions into integers', async () => {
    // Axon, as Synapse, refuses to create power levels with strings, so the old
    // room's event is given them in storage, as one received over federation
    // would carry them.
    const old = await create({ room_version: '1', preset: 'public_chat', power_level_content_override: { ban: 60, events: { 'm.room.name': 40 } } });
    const plRow = await db().selectFrom('current_state').select('event_id').where('room_id', '=', old).where('type', '=', 'm.room.power_levels').executeTakeFirstOrThrow();
    await sql`UPDATE events SET json = jsonb_set(jsonb_set(json, '{content,ban}', '"60"'), '{content,events,m.room.name}', '"40"') WHERE event_id = ${plRow.event_id}`.execute(
      db(),
    );
    expect((await content(old, 'm.room.power_levels|'))!.ban).toBe('60');
    const res = await upgrade(old, { new_version: '10' });
    expect(res.status).toBe(200);
    const pl = (await content(res.body.replacement_room as string, 'm.room.power_levels|'))!;
    expect(pl.ban).toBe(60);
    expect((pl.events as Record<string, unknown>)['m.room.name']).toBe(40);
  });

  it('refuses users without the tombstone level, naming the rule, and writes nothing', async () => {
    const old = await create({ preset: 'public_chat' });
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(old)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
    const before = await counts();
    const res = await upgrade(old, { new_version: '11' }, bob.accessToken);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(res.body.error).toMatch(/power level|m\.room\.tombstone/);
    const outsider = await upgrade(old, { new_version: '11' }, carol.accessToken);
    expect(outsider.status).toBe(403);
    expect(await counts()).toEqual(before);
    expect(await content(old, 'm.room.tombstone|')).toBeUndefined();
  });

  it('refuses unsupported versions, missing parameters, unknown rooms, guests and missing tokens', async () => {
    const old = await create({ preset: 'public_chat' });
    const before = await counts();
    const unsupported = await upgrade(old, { new_version: '99' });
    expect(unsupported.status).toBe(400);
    expect(unsupported.body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    expect((await upgrade(old, { new_version: 11 })).body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    const missing = await upgrade(old, {});
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    expect((await upgrade(old, { new_version: '12', additional_creators: ['nope'] })).body.errcode).toBe('M_INVALID_PARAM');
    const unknown = await upgrade('!missing:test.local', { new_version: '11' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    const guest = await createGuest(t);
    expect((await upgrade(old, { new_version: '11' }, guest.accessToken)).body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(old)}/upgrade`, { body: { new_version: '11' } })).status).toBe(401);
    expect(await counts()).toEqual(before);
  });
});

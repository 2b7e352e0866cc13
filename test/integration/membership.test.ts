/**
 * Membership over HTTP: joining by id or alias, knocking, forgetting,
 * invite/kick/ban/unban with their refusals and reasons, `is_direct`,
 * leaving every room on deactivation (client and admin), the admin
 * joined_rooms list, and profile changes reaching member events.
 */
import { describe, expect, it } from 'vitest';
import { forgottenRoomIds } from '../../src/storage/memberships.js';
import { roomHelpers, useServerWith } from '../helpers/rooms.js';
import { createGuest, passwordAuth } from '../helpers/sessions.js';
import { startTestServer } from '../helpers/server.js';
import { api, createUser } from '../helpers/users.js';

const { t, alice, bob, carol, root: admin } = useServerWith({ admins: ['root'] }, 'alice', 'bob', 'carol', 'root');

const enc = encodeURIComponent;
const db = () => t.server.ctx.database.db;
const create = (body: object, token: string = alice.accessToken) => roomHelpers(() => t).createRoom(token, body);
const roomPost = (roomId: string, action: string, token: string, body: object = {}) => api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, { token, body });
/** A member event's content, read by a joined user. */
const member = async (roomId: string, userId: string, token = alice.accessToken) => {
  const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(userId)}`, { token });
  expect(res.status).toBe(200);
  return res.body;
};
const memberEventId = async (roomId: string, userId: string) =>
  (await db().selectFrom('current_state').select('event_id').where('room_id', '=', roomId).where('type', '=', 'm.room.member').where('state_key', '=', userId).executeTakeFirst())
    ?.event_id;
const memberEventSender = async (roomId: string, userId: string) => {
  const id = await memberEventId(roomId, userId);
  return (await db().selectFrom('events').select('sender').where('event_id', '=', id!).executeTakeFirstOrThrow()).sender;
};

describe('POST /join/{roomIdOrAlias}', () => {
  it('joins through a local alias, with the reason and the profile in the member event', async () => {
    const roomId = await create({ preset: 'public_chat', room_alias_name: 'joinme' });
    const res = await api(t, 'POST', `/_matrix/client/v3/join/${enc('#joinme:test.local')}`, { token: bob.accessToken, body: { reason: 'hello' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ room_id: roomId });
    expect(await member(roomId, bob.userId)).toEqual({ membership: 'join', displayname: 'bob', reason: 'hello' });
    const joined = await api(t, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken });
    expect(joined.body.joined_rooms).toContain(roomId);
  });

  it('joins by room id on r0, ignoring server_name and via for a local room; a repeat adds no event', async () => {
    const roomId = await create({ preset: 'public_chat' });
    const path = `/_matrix/client/r0/join/${enc(roomId)}?server_name=elsewhere.example&via=other.example`;
    const res = await api(t, 'POST', path, { token: bob.accessToken });
    expect(res.status).toBe(200);
    expect(res.body.room_id).toBe(roomId);
    const first = await memberEventId(roomId, bob.userId);
    expect((await api(t, 'POST', path, { token: bob.accessToken, body: {} })).status).toBe(200);
    expect(await memberEventId(roomId, bob.userId)).toBe(first);
  });

  it('answers 404 M_NOT_FOUND for unknown local aliases and rooms, 502 when the remote server cannot be reached, and 400 for garbage', async () => {
    for (const target of ['#nothing:test.local', '!unknown:test.local']) {
      const res = await api(t, 'POST', `/_matrix/client/v3/join/${enc(target)}`, { token: bob.accessToken, body: {} });
      expect(res.status, target).toBe(404);
      expect(res.body.errcode, target).toBe('M_NOT_FOUND');
    }
    // Port 1 on the loopback: refused (and the loopback is outside ip_range_whitelist here), so nothing leaves the machine.
    for (const target of ['#room:localhost:1', '!abc:localhost:1']) {
      const res = await api(t, 'POST', `/_matrix/client/v3/join/${enc(target)}`, { token: bob.accessToken, body: {} });
      expect(res.status, target).toBe(502);
      expect(res.body.errcode, target).toBe('M_UNKNOWN');
    }
    const bad = await api(t, 'POST', `/_matrix/client/v3/join/${enc('not-a-room')}`, { token: bob.accessToken, body: {} });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const badAlias = await api(t, 'POST', `/_matrix/client/v3/join/${enc('#nocolon')}`, { token: bob.accessToken, body: {} });
    expect(badAlias.status).toBe(400);
    expect(badAlias.body.errcode).toBe('M_INVALID_PARAM');
    expect((await api(t, 'POST', `/_matrix/client/v3/join/${enc('#joinme:test.local')}`, { body: {} })).status).toBe(401);
  });

  it('refuses an invite-only room with the rule named, and a bad reason with M_BAD_JSON', async () => {
    const roomId = await create({ preset: 'private_chat' });
    const res = await api(t, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(res.body.error).toMatch(/join rule is invite/);
    const bad = await api(t, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: { reason: 5 } });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_BAD_JSON');
  });

  it('lets guests join only rooms with guest access can_join', async () => {
    const guest = await createGuest(t);
    const open = await create({ preset: 'public_chat', initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'can_join' } }] });
    const closed = await create({ preset: 'public_chat' });
    expect((await api(t, 'POST', `/_matrix/client/v3/join/${enc(open)}`, { token: guest.accessToken, body: {} })).status).toBe(200);
    const refused = await api(t, 'POST', `/_matrix/client/v3/join/${enc(closed)}`, { token: guest.accessToken, body: {} });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('Guest access not allowed');
    const knock = await api(t, 'POST', `/_matrix/client/v3/knock/${enc(open)}`, { token: guest.accessToken, body: {} });
    expect(knock.status).toBe(403);
    expect(knock.body.errcode).toBe('M_GUEST_ACCESS_FORBIDDEN');
  });
});

describe('POST /knock/{roomIdOrAlias}', () => {
  const knockRoom = (version = '11', alias?: string) =>
    create({
      room_version: version,
      preset: 'private_chat',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }],
      ...(alias ? { room_alias_name: alias } : {}),
    });

  it('knocks with a reason (by id or alias); the room can then invite the knocker in', async () => {
    const roomId = await knockRoom('11', 'knocker');
    const res = await api(t, 'POST', `/_matrix/client/v3/knock/${enc('#knocker:test.local')}`, { token: carol.accessToken, body: { reason: 'let me in' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ room_id: roomId });
    expect(await member(roomId, carol.userId)).toEqual({ membership: 'knock', displayname: 'carol', reason: 'let me in' });
    expect((await roomPost(roomId, 'invite', alice.accessToken, { user_id: carol.userId })).status).toBe(200);
    expect((await roomPost(roomId, 'join', carol.accessToken)).status).toBe(200);
    expect((await member(roomId, carol.userId)).membership).toBe('join');
  });

  it('refuses knocking where the join rule is not knock, and in room versions before 7', async () => {
    const pub = await create({ preset: 'public_chat' });
    const res = await api(t, 'POST', `/_matrix/client/v3/knock/${enc(pub)}`, { token: carol.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(res.body.error).toMatch(/knock/i);
    const old = await knockRoom('6');
    const v6 = await api(t, 'POST', `/_matrix/client/v3/knock/${enc(old)}`, { token: carol.accessToken, body: {} });
    expect(v6.status).toBe(403);
    expect(v6.body.errcode).toBe('M_FORBIDDEN');
    expect(await memberEventId(old, carol.userId)).toBeUndefined();
    const missing = await api(t, 'POST', `/_matrix/client/v3/knock/${enc('#missing:test.local')}`, { token: carol.accessToken, body: {} });
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
  });
});

describe('POST /rooms/{roomId}/forget', () => {
  it('is refused while joined; after leaving the room is forgotten until the user comes back', async () => {
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', bob.accessToken)).status).toBe(200);
    const inRoom = await roomPost(roomId, 'forget', bob.accessToken);
    expect(inRoom.status).toBe(400);
    expect(inRoom.body.errcode).toBe('M_UNKNOWN');
    expect(inRoom.body.error).toBe(`User ${bob.userId} in room ${roomId}`);

    expect((await roomPost(roomId, 'leave', bob.accessToken, { reason: 'bye' })).status).toBe(200);
    expect((await member(roomId, bob.userId)).reason).toBe('bye');
    expect((await api(t, 'POST', `/_matrix/client/r0/rooms/${enc(roomId)}/forget`, { token: bob.accessToken, body: {} })).status).toBe(200);
    expect((await forgottenRoomIds(db(), bob.userId)).has(roomId)).toBe(true);

    expect((await roomPost(roomId, 'join', bob.accessToken)).status).toBe(200);
    expect((await forgottenRoomIds(db(), bob.userId)).has(roomId)).toBe(false);
  });

  it('a forgotten room disappears from the leave section of /sync', async () => {
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', carol.accessToken)).status).toBe(200);
    const since = (await api(t, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: carol.accessToken })).body.next_batch as string;
    expect((await roomPost(roomId, 'leave', carol.accessToken)).status).toBe(200);
    const sync = async () => (await api(t, 'GET', `/_matrix/client/v3/sync?timeout=0&since=${enc(since)}`, { token: carol.accessToken })).body;
    const leaves = (body: Record<string, unknown>) => Object.keys(((body.rooms as Record<string, unknown> | undefined)?.leave as Record<string, unknown> | undefined) ?? {});
    expect(leaves(await sync())).toContain(roomId);
    expect((await roomPost(roomId, 'forget', carol.accessToken)).status).toBe(200);
    expect(leaves(await sync())).not.toContain(roomId);
  });

  it('forgets a room the user was banned from, and is a no-op for a room never joined', async () => {
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', carol.accessToken)).status).toBe(200);
    expect((await roomPost(roomId, 'ban', alice.accessToken, { user_id: carol.userId })).status).toBe(200);
    expect((await roomPost(roomId, 'forget', carol.accessToken)).status).toBe(200);
    expect((await forgottenRoomIds(db(), carol.userId)).has(roomId)).toBe(true);
    const other = await create({});
    expect((await roomPost(other, 'forget', carol.accessToken)).status).toBe(200);
    expect((await forgottenRoomIds(db(), carol.userId)).has(other)).toBe(false);
  });
});

describe('invite, kick, ban, unban', () => {
  it('invites with the reason, is_direct from createRoom, and the invitee profile; refuses without the invite level', async () => {
    const dm = await create({ preset: 'trusted_private_chat', is_direct: true, invite: [bob.userId] });
    expect(await member(dm, bob.userId)).toEqual({ membership: 'invite', is_direct: true, displayname: 'bob' });

    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', bob.accessToken)).status).toBe(200);
    const refused = await roomPost(roomId, 'invite', bob.accessToken, { user_id: carol.userId });
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    expect(refused.body.error).toMatch(/invite/i);
    const ok = await roomPost(roomId, 'invite', alice.accessToken, { user_id: carol.userId, reason: 'join us' });
    expect(ok.status).toBe(200);
    expect(await member(roomId, carol.userId)).toEqual({ membership: 'invite', displayname: 'carol', reason: 'join us' });
    expect(await memberEventSender(roomId, carol.userId)).toBe(alice.userId);
    const already = await roomPost(roomId, 'invite', alice.accessToken, { user_id: bob.userId });
    expect(already.status).toBe(403);
    const bad = await roomPost(roomId, 'invite', alice.accessToken, { user_id: 'nobody' });
    // As Synapse: a user_id that is not one is M_INVALID_PARAM, none at all M_MISSING_PARAM.
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const none = await roomPost(roomId, 'invite', alice.accessToken, {});
    expect({ status: none.status, errcode: none.body.errcode }).toEqual({ status: 400, errcode: 'M_MISSING_PARAM' });
  });

  it('kicks with a reason; refuses kicks without power and of users not in the room', async () => {
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', bob.accessToken)).status).toBe(200);
    expect((await roomPost(roomId, 'join', carol.accessToken)).status).toBe(200);
    const weak = await roomPost(roomId, 'kick', bob.accessToken, { user_id: carol.userId });
    expect(weak.status).toBe(403);
    expect(weak.body.errcode).toBe('M_FORBIDDEN');
    expect(weak.body.error).toMatch(/kick|power/i);
    const up = await roomPost(roomId, 'kick', bob.accessToken, { user_id: alice.userId });
    expect(up.status).toBe(403);

    const kicked = await roomPost(roomId, 'kick', alice.accessToken, { user_id: carol.userId, reason: 'spam' });
    expect(kicked.status).toBe(200);
    expect(await member(roomId, carol.userId)).toEqual({ membership: 'leave', reason: 'spam' });
    expect(await memberEventSender(roomId, carol.userId)).toBe(alice.userId);
    const again = await roomPost(roomId, 'kick', alice.accessToken, { user_id: carol.userId });
    expect(again.status).toBe(403);
    expect(again.body.error).toBe('The target user is not in the room');
    const never = await roomPost(roomId, 'kick', alice.accessToken, { user_id: admin.userId });
    expect(never.status).toBe(403);
    expect(never.body.error).toBe('The target user is not in the room');
  });

  it('bans and unbans with reasons; banned users cannot join or be invited; unban needs a ban', async () => {
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', bob.accessToken)).status).toBe(200);
    const weak = await roomPost(roomId, 'ban', bob.accessToken, { user_id: carol.userId });
    expect(weak.status).toBe(403);
    expect(weak.body.errcode).toBe('M_FORBIDDEN');
    expect(weak.body.error).toMatch(/ban/i);

    expect((await roomPost(roomId, 'ban', alice.accessToken, { user_id: carol.userId, reason: 'troll' })).status).toBe(200);
    expect(await member(roomId, carol.userId)).toEqual({ membership: 'ban', reason: 'troll' });
    const join = await roomPost(roomId, 'join', carol.accessToken);
    expect(join.status).toBe(403);
    expect(join.body.errcode).toBe('M_BAD_STATE');
    expect(join.body.error).toBe('Cannot join user who was banned');
    const invite = await roomPost(roomId, 'invite', alice.accessToken, { user_id: carol.userId });
    expect(invite.status).toBe(403);
    expect(invite.body.errcode).toBe('M_BAD_STATE');
    const weakUnban = await roomPost(roomId, 'unban', bob.accessToken, { user_id: carol.userId });
    expect(weakUnban.status).toBe(403);
    expect(weakUnban.body.errcode).toBe('M_FORBIDDEN');

    expect((await roomPost(roomId, 'unban', alice.accessToken, { user_id: carol.userId, reason: 'forgiven' })).status).toBe(200);
    expect(await member(roomId, carol.userId)).toEqual({ membership: 'leave', reason: 'forgiven' });
    const notBanned = await roomPost(roomId, 'unban', alice.accessToken, { user_id: carol.userId });
    expect(notBanned.status).toBe(403);
    expect(notBanned.body.errcode).toBe('M_BAD_STATE');
    expect((await roomPost(roomId, 'join', carol.accessToken)).status).toBe(200);
  });
});

describe('deactivation leaves every room', () => {
  it('client deactivation: joins are left and forgotten, invites and knocks rejected', async () => {
    const dana = await createUser(t, 'dana');
    const joined = await create({ preset: 'public_chat' });
    const invited = await create({ preset: 'private_chat', invite: [dana.userId] });
    const knocked = await create({ room_version: '10', preset: 'private_chat', initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }] });
    expect((await roomPost(joined, 'join', dana.accessToken)).status).toBe(200);
    expect((await api(t, 'POST', `/_matrix/client/v3/knock/${enc(knocked)}`, { token: dana.accessToken, body: {} })).status).toBe(200);

    const first = await api(t, 'POST', '/_matrix/client/v3/account/deactivate', { token: dana.accessToken, body: {} });
    expect(first.status).toBe(401);
    const done = await api(t, 'POST', '/_matrix/client/v3/account/deactivate', { token: dana.accessToken, body: { auth: passwordAuth(dana, first.body.session as string) } });
    expect(done.status).toBe(200);

    for (const roomId of [joined, invited, knocked]) {
      expect((await member(roomId, dana.userId)).membership, roomId).toBe('leave');
      expect(await memberEventSender(roomId, dana.userId)).toBe(dana.userId);
    }
    const forgotten = await forgottenRoomIds(db(), dana.userId);
    expect(forgotten.has(joined)).toBe(true);
    expect(forgotten.has(invited)).toBe(false);
    expect(await db().selectFrom('users_pending_deactivation').selectAll().execute()).toEqual([]);
  });

  it('admin deactivation (v1 deactivate and v2 PUT) leaves rooms too', async () => {
    const ed = await createUser(t, 'ed');
    const fay = await createUser(t, 'fay');
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', ed.accessToken)).status).toBe(200);
    expect((await roomPost(roomId, 'join', fay.accessToken)).status).toBe(200);
    expect((await api(t, 'POST', `/_synapse/admin/v1/deactivate/${enc(ed.userId)}`, { token: admin.accessToken, body: {} })).status).toBe(200);
    expect((await member(roomId, ed.userId)).membership).toBe('leave');
    expect((await api(t, 'PUT', `/_synapse/admin/v2/users/${enc(fay.userId)}`, { token: admin.accessToken, body: { deactivated: true } })).status).toBe(200);
    expect((await member(roomId, fay.userId)).membership).toBe('leave');
  });

  it('a deactivation interrupted before parting is finished by the next run', async () => {
    const gil = await createUser(t, 'gil');
    const roomId = await create({ preset: 'public_chat' });
    expect((await roomPost(roomId, 'join', gil.accessToken)).status).toBe(200);
    // As if the server stopped right after the deactivation committed.
    await db()
      .transaction()
      .execute((tx) => t.server.ctx.services.accounts.deactivate(tx, gil.userId, { erase: false }));
    expect((await member(roomId, gil.userId)).membership).toBe('join');
    await t.server.ctx.services.rooms.partDeactivatedUsers();
    expect((await member(roomId, gil.userId)).membership).toBe('leave');
  });
});

describe('GET /_synapse/admin/v1/users/{userId}/joined_rooms', () => {
  it('lists the rooms the user is joined to now', async () => {
    const hal = await createUser(t, 'hal');
    const a = await create({ preset: 'public_chat' });
    const b = await create({ preset: 'public_chat' });
    expect((await roomPost(a, 'join', hal.accessToken)).status).toBe(200);
    expect((await roomPost(b, 'join', hal.accessToken)).status).toBe(200);
    expect((await roomPost(b, 'leave', hal.accessToken)).status).toBe(200);
    const res = await api(t, 'GET', `/_synapse/admin/v1/users/${enc(hal.userId)}/joined_rooms`, { token: admin.accessToken });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ joined_rooms: [a], total: 1 });
    expect((await api(t, 'GET', `/_synapse/admin/v1/users/${enc(hal.userId)}/joined_rooms`, { token: hal.accessToken })).status).toBe(403);
  });
});

describe('profile changes reach member events', () => {
  it('a new display name or avatar is a new join event in every joined room; an unchanged one is not', async () => {
    const ivy = await createUser(t, 'ivy');
    const a = await create({ preset: 'public_chat' });
    const b = await create({ preset: 'public_chat' });
    const left = await create({ preset: 'public_chat' });
    for (const r of [a, b, left]) expect((await roomPost(r, 'join', ivy.accessToken)).status).toBe(200);
    expect((await roomPost(left, 'leave', ivy.accessToken)).status).toBe(200);

    const put = await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(ivy.userId)}/displayname`, { token: ivy.accessToken, body: { displayname: 'Ivy Green' } });
    expect(put.status).toBe(200);
    await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(ivy.userId)}/avatar_url`, { token: ivy.accessToken, body: { avatar_url: 'mxc://test.local/ivy' } });
    for (const r of [a, b]) expect(await member(r, ivy.userId)).toEqual({ membership: 'join', displayname: 'Ivy Green', avatar_url: 'mxc://test.local/ivy' });
    expect((await member(left, ivy.userId)).membership).toBe('leave');

    const before = await memberEventId(a, ivy.userId);
    await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(ivy.userId)}/displayname`, { token: ivy.accessToken, body: { displayname: 'Ivy Green' } });
    expect(await memberEventId(a, ivy.userId)).toBe(before);

    // An admin changing the profile: the event is still the user's own.
    expect((await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(ivy.userId)}/displayname`, { token: admin.accessToken, body: { displayname: 'Ivy' } })).status).toBe(200);
    expect((await member(a, ivy.userId)).displayname).toBe('Ivy');
    expect(await memberEventSender(a, ivy.userId)).toBe(ivy.userId);
  });
});

describe('block_non_admin_invites', () => {
  it('refuses invites from non-admins only', async () => {
    const s = await startTestServer({ yaml: { block_non_admin_invites: true } });
    try {
      const owner = await createUser(s, 'owner');
      const boss = await createUser(s, 'boss', { admin: true });
      const guestUser = await createUser(s, 'visitor');
      const roomId = (
        await api(s, 'POST', '/_matrix/client/v3/createRoom', { token: owner.accessToken, body: { preset: 'public_chat', power_level_content_override: { invite: 0 } } })
      ).body.room_id as string;
      const refused = await api(s, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: owner.accessToken, body: { user_id: guestUser.userId } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('Invites have been disabled on this server');
      const inviteAtCreate = await api(s, 'POST', '/_matrix/client/v3/createRoom', { token: owner.accessToken, body: { invite: [guestUser.userId] } });
      expect(inviteAtCreate.status).toBe(403);
      expect(await s.server.ctx.database.db.selectFrom('rooms').select('room_id').execute()).toHaveLength(1);
      expect((await api(s, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: boss.accessToken, body: {} })).status).toBe(200);
      expect((await api(s, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: boss.accessToken, body: { user_id: guestUser.userId } })).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

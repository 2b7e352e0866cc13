/**
 * GET /rooms/{roomId}/members (membership, not_membership, `at`, departed
 * users) and GET /rooms/{roomId}/joined_members.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, createUser } from '../helpers/users.js';

const { t, alice, bob, carol, dave } = useServerWithUsers('alice', 'bob', 'carol', 'dave');

const enc = encodeURIComponent;

interface Ev {
  event_id: string;
  type: string;
  state_key: string;
  content: Record<string, unknown>;
}

async function createRoom(token: string, body: object = {}): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}

const post = (token: string, roomId: string, action: string, body: object = {}) => api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, { token, body });
const members = (token: string, roomId: string, query = '') => api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/members${query}`, { token });
const memberships = (chunk: unknown) => Object.fromEntries((chunk as Ev[]).map((e) => [e.state_key, e.content['membership']]));

describe('/members', () => {
  let roomId: string;
  let tokenBeforeBan: string;
  beforeAll(async () => {
    roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    expect((await post(bob.accessToken, roomId, 'join')).status).toBe(200);
    expect((await post(alice.accessToken, roomId, 'invite', { user_id: carol.userId })).status).toBe(200);
    expect((await post(dave.accessToken, roomId, 'join')).status).toBe(200);
    const page = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=1`, { token: alice.accessToken });
    tokenBeforeBan = page.body.start as string;
    expect((await post(alice.accessToken, roomId, 'ban', { user_id: dave.userId, reason: 'spam' })).status).toBe(200);
  });

  it('lists every member event of the current state', async () => {
    const res = await members(alice.accessToken, roomId);
    expect(res.status).toBe(200);
    expect(memberships(res.body.chunk)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'join', [carol.userId]: 'invite', [dave.userId]: 'ban' });
    for (const e of res.body.chunk as Ev[]) expect(e.type).toBe('m.room.member');
    // r0 too
    expect((await api(t, 'GET', `/_matrix/client/r0/rooms/${enc(roomId)}/members`, { token: bob.accessToken })).status).toBe(200);
  });

  it('membership and not_membership filter (together: either matches)', async () => {
    expect(memberships((await members(alice.accessToken, roomId, '?membership=join')).body.chunk)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'join' });
    expect(memberships((await members(alice.accessToken, roomId, '?not_membership=join')).body.chunk)).toEqual({ [carol.userId]: 'invite', [dave.userId]: 'ban' });
    expect(memberships((await members(alice.accessToken, roomId, '?membership=ban&not_membership=invite')).body.chunk)).toEqual({
      [alice.userId]: 'join',
      [bob.userId]: 'join',
      [dave.userId]: 'ban',
    });
    const bad = await members(alice.accessToken, roomId, '?membership=joined');
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
  });

  it('`at` gives the members as of that token', async () => {
    const res = await members(alice.accessToken, roomId, `?at=${enc(tokenBeforeBan)}`);
    expect(res.status).toBe(200);
    expect(memberships(res.body.chunk)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'join', [carol.userId]: 'invite', [dave.userId]: 'join' });
    const bad = await members(alice.accessToken, roomId, '?at=rubbish');
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const before = await members(alice.accessToken, roomId, '?at=t0_0');
    expect(before.status).toBe(404);
    expect(before.body.errcode).toBe('M_NOT_FOUND');
  });

  it('a departed user gets the members as they were when they left', async () => {
    const room = await createRoom(alice.accessToken, { preset: 'public_chat' });
    expect((await post(bob.accessToken, room, 'join')).status).toBe(200);
    expect((await post(bob.accessToken, room, 'leave')).status).toBe(200);
    expect((await post(carol.accessToken, room, 'join')).status).toBe(200);
    const res = await members(bob.accessToken, room);
    expect(res.status).toBe(200);
    expect(memberships(res.body.chunk)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'leave' });
    expect(memberships((await members(alice.accessToken, room)).body.chunk)).toEqual({ [alice.userId]: 'join', [bob.userId]: 'leave', [carol.userId]: 'join' });
  });

  it('403 M_FORBIDDEN for non-members, banned and invited users of a non-world-readable room', async () => {
    for (const user of [carol, dave]) {
      const res = await members(user.accessToken, roomId);
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
    }
    const outsider = await createUser(t, 'outsider');
    expect((await members(outsider.accessToken, roomId)).status).toBe(403);
  });
});

describe('world_readable rooms', () => {
  it('anyone signed in may list members and joined members', async () => {
    const roomId = await createRoom(alice.accessToken, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
    });
    const outsider = await createUser(t, 'peeker');
    const res = await members(outsider.accessToken, roomId);
    expect(res.status).toBe(200);
    expect(memberships(res.body.chunk)).toEqual({ [alice.userId]: 'join' });
    const joined = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, { token: outsider.accessToken });
    expect(joined.status).toBe(200);
    expect(Object.keys(joined.body.joined as object)).toEqual([alice.userId]);
  });
});

describe('/joined_members', () => {
  it('maps joined users to the display name and avatar of their member event', async () => {
    await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { token: bob.accessToken, body: { displayname: 'Bobby' } });
    await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/avatar_url`, { token: bob.accessToken, body: { avatar_url: 'mxc://test.local/bob' } });
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    expect((await post(bob.accessToken, roomId, 'join')).status).toBe(200);
    expect((await post(alice.accessToken, roomId, 'invite', { user_id: carol.userId })).status).toBe(200);
    const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    // The creator's join carries their profile too (here the display name registration gave them).
    const aliceProfile = await api(t, 'GET', `/_matrix/client/v3/profile/${enc(alice.userId)}`, { token: alice.accessToken });
    const aliceName = aliceProfile.body.displayname as string | undefined;
    expect(res.body).toEqual({
      joined: { [alice.userId]: aliceName === undefined ? {} : { display_name: aliceName }, [bob.userId]: { display_name: 'Bobby', avatar_url: 'mxc://test.local/bob' } },
    });
  });

  it('403 M_FORBIDDEN unless joined (invited and departed users included)', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    expect((await post(alice.accessToken, roomId, 'invite', { user_id: carol.userId })).status).toBe(200);
    expect((await post(bob.accessToken, roomId, 'join')).status).toBe(200);
    expect((await post(bob.accessToken, roomId, 'leave')).status).toBe(200);
    for (const user of [carol, bob, dave]) {
      const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, { token: user.accessToken });
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
    }
  });
});

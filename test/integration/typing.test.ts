/**
 * Typing notifications: PUT /rooms/{roomId}/typing/{userId} keeps who is
 * typing in memory with an expiry, moves the typing stream position on each
 * change, and wakes the room's members.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let t: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let roomId: string;

const enc = encodeURIComponent;
const typingPath = (room: string, user: string, prefix = 'v3') => `/_matrix/client/${prefix}/rooms/${enc(room)}/typing/${enc(user)}`;

beforeAll(async () => {
  t = await startTestServer();
  alice = await createUser(t, 'alice');
  bob = await createUser(t, 'bob');
  carol = await createUser(t, 'carol');
  roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
  expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
});
afterAll(async () => {
  await t?.close();
});

const typing = () => t.server.ctx.services.typing;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PUT /rooms/{roomId}/typing/{userId}', () => {
  it('starts typing, moves the position once, and lists the user in the room', async () => {
    const before = typing().position();
    const res = await api(t, 'PUT', typingPath(roomId, alice.userId), { token: alice.accessToken, body: { typing: true, timeout: 30000 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect(typing().forRoom(roomId)).toEqual([alice.userId]);
    const after = typing().position();
    expect(after).toBeGreaterThan(before);
    expect(typing().changedRoomsSince(before)).toEqual([roomId]);
    expect(typing().changedRoomsSince(after)).toEqual([]);
    // Typing again only refreshes the expiry: no new position.
    expect((await api(t, 'PUT', typingPath(roomId, alice.userId, 'r0'), { token: alice.accessToken, body: { typing: true } })).status).toBe(200);
    expect(typing().position()).toBe(after);
  });

  it('stops typing on typing: false, moving the position', async () => {
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: true } });
    expect(typing().forRoom(roomId)).toContain(bob.userId);
    const before = typing().position();
    const res = await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: false } });
    expect(res.status).toBe(200);
    expect(typing().forRoom(roomId)).not.toContain(bob.userId);
    expect(typing().position()).toBe(before + 1);
    expect(typing().changedRoomsSince(before)).toEqual([roomId]);
    // Stopping when not typing changes nothing.
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: false } });
    expect(typing().position()).toBe(before + 1);
  });

  it('defaults the timeout to 30 s and caps it at 120 s', async () => {
    const start = Date.now();
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: true } });
    const dflt = (typing().expiresAt(roomId, bob.userId) as number) - start;
    expect(dflt).toBeGreaterThanOrEqual(29_000);
    expect(dflt).toBeLessThanOrEqual(31_000);
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: true, timeout: 86_400_000 } });
    const capped = (typing().expiresAt(roomId, bob.userId) as number) - start;
    expect(capped).toBeGreaterThanOrEqual(119_000);
    expect(capped).toBeLessThanOrEqual(121_000);
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: false } });
  });

  it('expires after the timeout, which is a change too', async () => {
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: true, timeout: 150 } });
    expect(typing().forRoom(roomId)).toContain(bob.userId);
    const before = typing().position();
    await sleep(400);
    expect(typing().forRoom(roomId)).not.toContain(bob.userId);
    expect(typing().position()).toBeGreaterThan(before);
    expect(typing().changedRoomsSince(before)).toEqual([roomId]);
  });

  it("wakes the room's members' syncs", async () => {
    const woken = t.server.ctx.services.notifier.wait(bob.userId, 5000);
    await api(t, 'PUT', typingPath(roomId, alice.userId), { token: alice.accessToken, body: { typing: false } });
    const started = Date.now();
    await api(t, 'PUT', typingPath(roomId, alice.userId), { token: alice.accessToken, body: { typing: true } });
    expect(await woken).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('refuses setting typing for someone else with 403 M_FORBIDDEN', async () => {
    const res = await api(t, 'PUT', typingPath(roomId, bob.userId), { token: alice.accessToken, body: { typing: true } });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    expect(typing().forRoom(roomId)).not.toContain(bob.userId);
  });

  it('refuses users not joined to the room with 403 M_FORBIDDEN', async () => {
    const res = await api(t, 'PUT', typingPath(roomId, carol.userId), { token: carol.accessToken, body: { typing: true } });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    const unknownRoom = await api(t, 'PUT', typingPath('!nope:test.local', carol.userId), { token: carol.accessToken, body: { typing: true } });
    expect(unknownRoom.status).toBe(403);
    expect(typing().forRoom(roomId)).not.toContain(carol.userId);
  });

  it('refuses malformed bodies and missing tokens', async () => {
    const put = (body: unknown) => api(t, 'PUT', typingPath(roomId, alice.userId), { token: alice.accessToken, body });
    expect((await put({})).body.errcode).toBe('M_MISSING_PARAM');
    expect((await put({ typing: 'yes' })).body.errcode).toBe('M_BAD_JSON');
    const badTimeout = await put({ typing: true, timeout: 'long' });
    expect(badTimeout.status).toBe(400);
    expect(badTimeout.body.errcode).toBe('M_INVALID_PARAM');
    expect((await put({ typing: true, timeout: -5 })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await put([true])).body.errcode).toBe('M_BAD_JSON');
    const anon = await api(t, 'PUT', typingPath(roomId, alice.userId), { body: { typing: true } });
    expect(anon.status).toBe(401);
    expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('a user who leaves the room stops typing', async () => {
    await api(t, 'PUT', typingPath(roomId, bob.userId), { token: bob.accessToken, body: { typing: true } });
    expect(typing().forRoom(roomId)).toContain(bob.userId);
    const before = typing().position();
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { token: bob.accessToken, body: {} })).status).toBe(200);
    expect(typing().forRoom(roomId)).not.toContain(bob.userId);
    expect(typing().changedRoomsSince(before)).toEqual([roomId]);
  });
});

/**
 * The rc_* rate limits on room actions, media and to-device messages, and
 * the per-user override admin API, against a real server: each limit
 * answers 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After once its
 * burst is spent, and lets the action through again once the bucket has
 * drained (polled, with a bound; no timing assertions). Limits are small
 * (0.5 per second) so recovery takes a second or two.
 */
import { describe, expect, it } from 'vitest';
import { roomHelpers, text, useTestServer } from '../helpers/rooms.js';
import { type TestServer, startTestServer } from '../helpers/server.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Res = Awaited<ReturnType<typeof api>>;
const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
/** One action back every 2 s: recovery within a couple of seconds, and a wide margin for the burst to still be spent when the next request arrives. */
const FAST = (burst: number) => ({ per_second: 0.5, burst_count: burst });
const RECOVERY_BOUND_MS = 15_000;

/** The 429 body and headers Synapse sends. */
function expectLimited(res: Res): void {
  expect(res.status, JSON.stringify(res.body)).toBe(429);
  expect(res.body.errcode).toBe('M_LIMIT_EXCEEDED');
  expect(res.body.retry_after_ms).toBeGreaterThan(0);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(Number(res.headers.get('retry-after'))).toBe(Math.ceil((res.body.retry_after_ms as number) / 1000));
}

/** Repeats `attempt` while it is rate limited, waiting as told, until it answers otherwise (or the bound passes). */
async function untilNotLimited(attempt: () => Promise<Res>): Promise<Res> {
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  for (;;) {
    const res = await attempt();
    if (res.status !== 429) return res;
    expect(res.body.errcode).toBe('M_LIMIT_EXCEEDED');
    if (Date.now() > deadline) throw new Error(`still rate limited after ${RECOVERY_BOUND_MS} ms`);
    await new Promise((r) => setTimeout(r, Math.min(Number(res.body.retry_after_ms) || 100, 1000)));
  }
}

function fixtures(server: () => TestServer) {
  let n = 0;
  const rooms = roomHelpers(server);
  return {
    rooms,
    user: (name: string, opts: { admin?: boolean } = {}) => createUser(server(), `${name}${++n}`, opts),
    createRoom: (u: TestUser, body: object = {}) => api(server(), 'POST', `${V3}/createRoom`, { token: u.accessToken, body }),
    join: (u: TestUser, roomId: string) => api(server(), 'POST', `${V3}/rooms/${enc(roomId)}/join`, { token: u.accessToken, body: {} }),
    invite: (u: TestUser, roomId: string, target: TestUser) =>
      api(server(), 'POST', `${V3}/rooms/${enc(roomId)}/invite`, { token: u.accessToken, body: { user_id: target.userId } }),
    override: (admin: TestUser, method: string, target: string, body?: unknown) =>
      api(server(), method, `/_synapse/admin/v1/users/${enc(target)}/override_ratelimit`, { token: admin.accessToken, body }),
  };
}

describe('rc_message and rc_admin_redaction', () => {
  const f = fixtures(() => t);
  const t = useTestServer({ yaml: { rc_message: FAST(3), rc_admin_redaction: FAST(2) } });

  /** A public room made by a fresh user (1 of their rc_message). */
  async function publicRoom(): Promise<{ owner: TestUser; roomId: string }> {
    const owner = await f.user('owner');
    return { owner, roomId: await f.rooms.createRoom(owner, { preset: 'public_chat' }) };
  }

  it('limits sends per user, counting the join; the retry of a sent transaction is not counted; it recovers', async () => {
    const { roomId } = await publicRoom();
    const u = await f.user('sender');
    await f.rooms.join(u, roomId); // 1 of 3
    expect((await f.rooms.sendRaw(u, roomId, text('one'), 'm.room.message', 'one')).status).toBe(200);
    expect((await f.rooms.sendRaw(u, roomId, text('two'))).status).toBe(200);
    const limited = await f.rooms.sendRaw(u, roomId, text('three'));
    expectLimited(limited);
    // A retried transaction answers with its event, limit or not.
    const retry = await f.rooms.sendRaw(u, roomId, text('one'), 'm.room.message', 'one');
    expect(retry.status).toBe(200);
    // Another user's bucket is their own.
    const other = await f.user('other');
    await f.rooms.join(other, roomId);
    expect((await f.rooms.sendRaw(other, roomId, text('mine'))).status).toBe(200);
    const recovered = await untilNotLimited(() => f.rooms.sendRaw(u, roomId, text('later')));
    expect(recovered.status).toBe(200);
  });

  it('state events and room creation count against it; a refused send is not counted', async () => {
    const u = await f.user('stater');
    const roomId = await f.rooms.createRoom(u); // 1 of 3
    // Sending to a room that does not exist fails and gives its count back.
    for (let i = 0; i < 3; i++) expect((await f.rooms.sendRaw(u, '!nowhere:test.local', text('x'))).status).toBe(404);
    const put = (name: string) => api(t, 'PUT', `${V3}/rooms/${enc(roomId)}/state/m.room.name`, { token: u.accessToken, body: { name } });
    expect((await put('a')).status).toBe(200);
    expect((await put('b')).status).toBe(200);
    expectLimited(await put('c'));
    expectLimited(await f.createRoom(u));
  });

  it('redactions of others’ events count against rc_admin_redaction, one’s own against rc_message', async () => {
    const { owner, roomId } = await publicRoom(); // owner: 1 of 3
    const mine = await f.rooms.send(owner, roomId, text('mine')); // owner: 2 of 3
    const u = await f.user('spammer');
    await f.rooms.join(u, roomId);
    const spam = [await f.rooms.send(u, roomId, text('spam 1')), await f.rooms.send(u, roomId, text('spam 2'))];
    expect((await f.rooms.redact(owner, roomId, spam[0] as string)).status).toBe(200);
    expect((await f.rooms.redact(owner, roomId, spam[1] as string)).status).toBe(200);
    const members = await api(t, 'GET', `${V3}/rooms/${enc(roomId)}/members`, { token: owner.accessToken });
    const joinEvent = (members.body.chunk as { state_key: string; event_id: string }[]).find((e) => e.state_key === u.userId)?.event_id as string;
    expectLimited(await f.rooms.redact(owner, roomId, joinEvent)); // a third admin redaction
    // The owner's own message is not an admin redaction: rc_message still has room.
    expect((await f.rooms.redact(owner, roomId, mine)).status).toBe(200);
    expect((await untilNotLimited(() => f.rooms.redact(owner, roomId, joinEvent))).status).toBe(200);
  });

  it('the issue’s case: eight quick sends at rc_message 0.5/s, burst 3 are not all accepted', async () => {
    const s = await startTestServer({ yaml: { rc_message: { per_second: 0.5, burst_count: 3 } } });
    try {
      const g = fixtures(() => s);
      const owner = await g.user('o');
      const roomId = await g.rooms.createRoom(owner); // 1 of 3
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await g.rooms.sendRaw(owner, roomId, text(`m${i}`))).status);
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses).toContain(429);
    } finally {
      await s.close();
    }
  });

  it('server admins are limited too (Synapse has no admin exemption)', async () => {
    const admin = await f.user('admin', { admin: true });
    const roomId = await f.rooms.createRoom(admin);
    await f.rooms.send(admin, roomId, text('1'));
    await f.rooms.send(admin, roomId, text('2'));
    expectLimited(await f.rooms.sendRaw(admin, roomId, text('3')));
  });

  it('override_ratelimit: 0/0 exempts the user, other values replace rc_message, DELETE restores it', async () => {
    const admin = await f.user('boss', { admin: true });
    const u = await f.user('bot');
    const { roomId } = await publicRoom();
    expect((await f.override(admin, 'GET', u.userId)).body).toEqual({});
    const set = await f.override(admin, 'POST', u.userId, {});
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ messages_per_second: 0, burst_count: 0 });
    expect((await f.override(admin, 'GET', u.userId)).body).toEqual({ messages_per_second: 0, burst_count: 0 });
    await f.rooms.join(u, roomId);
    for (let i = 0; i < 8; i++) expect((await f.rooms.sendRaw(u, roomId, text(`bot ${i}`))).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await f.createRoom(u)).status).toBe(200);

    // A rate of its own: 1 per second with a burst of 12 (the bucket already holds nothing, exempt sends were not counted).
    expect((await f.override(admin, 'POST', u.userId, { messages_per_second: 1, burst_count: 12 })).body).toEqual({ messages_per_second: 1, burst_count: 12 });
    let sent = 0;
    for (; sent < 20; sent++) if ((await f.rooms.sendRaw(u, roomId, text(`paced ${sent}`))).status !== 200) break;
    expect(sent).toBeGreaterThanOrEqual(5); // more than rc_message's burst of 3
    expect(sent).toBeLessThan(20);

    expect((await f.override(admin, 'DELETE', u.userId)).status).toBe(200);
    expect((await f.override(admin, 'GET', u.userId)).body).toEqual({});
    expectLimited(await f.rooms.sendRaw(u, roomId, text('back to normal')));
  });

  it('override_ratelimit refuses non-admins, remote and unknown users, and bad values', async () => {
    const admin = await f.user('chief', { admin: true });
    const u = await f.user('plain');
    expect((await f.override(u, 'GET', u.userId)).status).toBe(403);
    expect((await f.override(u, 'POST', u.userId, {})).status).toBe(403);
    const remote = await f.override(admin, 'POST', '@x:elsewhere.example', {});
    expect(remote.status).toBe(400);
    expect((await f.override(admin, 'GET', '@x:elsewhere.example')).status).toBe(400);
    const unknown = await f.override(admin, 'GET', '@nobody:test.local');
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    expect((await f.override(admin, 'DELETE', '@nobody:test.local')).status).toBe(404);
    for (const bad of [{ messages_per_second: -1 }, { burst_count: 1.5 }, { messages_per_second: '1' }, { burst_count: true }]) {
      const res = await f.override(admin, 'POST', u.userId, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
    expect((await f.override(admin, 'GET', u.userId)).body).toEqual({});
  });

  it('overrides survive a restart (they are stored)', async () => {
    const admin = await f.user('keeper', { admin: true });
    const u = await f.user('kept');
    await f.override(admin, 'POST', u.userId, { messages_per_second: 7, burst_count: 9 });
    await t.server.ctx.services.ratelimitOverrides.load();
    expect(t.server.ctx.services.ratelimitOverrides.get(u.userId)).toEqual({ messages_per_second: 7, burst_count: 9 });
  });
});

describe('rc_room_creation, rc_joins, rc_joins_per_room, rc_invites, rc_media_create, rc_key_requests', () => {
  const f = fixtures(() => t);
  const t = useTestServer({
    yaml: {
      rc_room_creation: FAST(2),
      rc_joins: { local: FAST(2), remote: FAST(2) },
      rc_joins_per_room: FAST(3),
      rc_invites: { per_room: FAST(2), per_user: FAST(2), per_issuer: FAST(3) },
      rc_media_create: FAST(2),
      rc_key_requests: FAST(2),
    },
  });

  it('rc_room_creation limits /createRoom and upgrades per user, and recovers', async () => {
    const u = await f.user('creator');
    expect((await f.createRoom(u)).status).toBe(200);
    const second = await f.createRoom(u);
    expect(second.status).toBe(200);
    expectLimited(await f.createRoom(u));
    const upgrade = await api(t, 'POST', `${V3}/rooms/${enc(second.body.room_id as string)}/upgrade`, { token: u.accessToken, body: { new_version: '10' } });
    expectLimited(upgrade);
    expect((await untilNotLimited(() => f.createRoom(u))).status).toBe(200);
  });

  it('/createRoom with more invitees than rc_invites.per_room allows at once is 400', async () => {
    const [a, b, c] = [await f.user('a'), await f.user('b'), await f.user('c')];
    const tooMany = await f.createRoom(await f.user('host'), { invite: [a.userId, b.userId, c.userId] });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toBe('Cannot invite so many users at once');
    expect((await f.createRoom(await f.user('host'), { invite: [a.userId, b.userId] })).status).toBe(200);
  });

  it('rc_joins.local limits joins to rooms the user is not in; joining again is not counted', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < 3; i++) rooms.push(await f.rooms.createRoom(await f.user('pub'), { preset: 'public_chat' }));
    const j = await f.user('joiner');
    expect((await f.join(j, rooms[0] as string)).status).toBe(200);
    expect((await f.join(j, rooms[1] as string)).status).toBe(200);
    expectLimited(await f.join(j, rooms[2] as string));
    // Already joined: no rc_joins check (a profile re-join).
    expect((await f.join(j, rooms[0] as string)).status).toBe(200);
    expect((await untilNotLimited(() => f.join(j, rooms[2] as string))).status).toBe(200);
  });

  it('rc_joins_per_room stops new joins to a room that had too many recent joins, and recovers', async () => {
    const roomId = await f.rooms.createRoom(await f.user('busy'), { preset: 'public_chat' }); // the creator's join: 1 of 3
    expect((await f.join(await f.user('j'), roomId)).status).toBe(200);
    expect((await f.join(await f.user('j'), roomId)).status).toBe(200);
    const late = await f.user('late');
    expectLimited(await f.join(late, roomId));
    // Another room is not affected.
    const quiet = await f.rooms.createRoom(await f.user('quiet'), { preset: 'public_chat' });
    expect((await f.join(await f.user('j'), quiet)).status).toBe(200);
    expect((await untilNotLimited(() => f.join(late, roomId))).status).toBe(200);
  });

  it('rc_invites.per_room limits invites in one room', async () => {
    const host = await f.user('inviter');
    const roomId = await f.rooms.createRoom(host);
    expect((await f.invite(host, roomId, await f.user('guest'))).status).toBe(200);
    expect((await f.invite(host, roomId, await f.user('guest'))).status).toBe(200);
    const third = await f.user('guest');
    expectLimited(await f.invite(host, roomId, third));
    expect((await untilNotLimited(() => f.invite(host, roomId, third))).status).toBe(200);
  });

  it('rc_invites.per_user limits the invites one user receives, from anyone', async () => {
    const target = await f.user('popular');
    for (let i = 0; i < 2; i++) {
      const host = await f.user('fan');
      expect((await f.invite(host, await f.rooms.createRoom(host), target)).status).toBe(200);
    }
    const host = await f.user('fan');
    const roomId = await f.rooms.createRoom(host);
    expectLimited(await f.invite(host, roomId, target));
    // The same inviter may still invite someone else.
    expect((await f.invite(host, roomId, await f.user('nobody'))).status).toBe(200);
    expect((await untilNotLimited(() => f.invite(host, roomId, target))).status).toBe(200);
  });

  it('rc_invites.per_issuer limits the invites one user sends, across rooms', async () => {
    const host = await f.user('issuer');
    const r1 = await f.rooms.createRoom(host);
    const r2 = await f.rooms.createRoom(host);
    expect((await f.invite(host, r1, await f.user('x'))).status).toBe(200);
    expect((await f.invite(host, r1, await f.user('x'))).status).toBe(200);
    expect((await f.invite(host, r2, await f.user('x'))).status).toBe(200);
    const fourth = await f.user('x');
    expectLimited(await f.invite(host, r2, fourth));
    expect((await untilNotLimited(() => f.invite(host, r2, fourth))).status).toBe(200);
  });

  it('rc_media_create limits POST /_matrix/media/v1/create per user, and recovers', async () => {
    const u = await f.user('uploader');
    const create = () => api(t, 'POST', '/_matrix/media/v1/create', { token: u.accessToken });
    expect((await create()).status).toBe(200);
    expect((await create()).status).toBe(200);
    expectLimited(await create());
    // max_pending_media_uploads (5) is not reached by three reservations.
    expect((await untilNotLimited(create)).status).toBe(200);
  });

  it('rc_key_requests drops room key requests to others past the limit, without an error', async () => {
    const sender = await f.user('asker');
    const other = await f.user('holder');
    let txn = 0;
    const ask = () =>
      api(t, 'PUT', `${V3}/sendToDevice/m.room_key_request/kr${++txn}`, {
        token: sender.accessToken,
        body: { messages: { [other.userId]: { [other.deviceId]: { action: 'request', request_id: `r${txn}` } } } },
      });
    for (let i = 0; i < 4; i++) expect((await ask()).status).toBe(200);
    const sync = await api(t, 'GET', `${V3}/sync?timeout=0`, { token: other.accessToken });
    const ids = (sync.body.to_device as { events: { content: { request_id: string } }[] }).events.map((e) => e.content.request_id);
    expect(ids).toEqual(['r1', 'r2']);
    // Other to-device types are not limited by it.
    const plain = await api(t, 'PUT', `${V3}/sendToDevice/m.custom/c1`, {
      token: sender.accessToken,
      body: { messages: { [other.userId]: { [other.deviceId]: { n: 1 } } } },
    });
    expect(plain.status).toBe(200);
  });

  it('an override of 0 exempts a user from these limits too', async () => {
    const admin = await f.user('root', { admin: true });
    const u = await f.user('vip');
    expect((await f.override(admin, 'POST', u.userId, { messages_per_second: 0, burst_count: 0 })).status).toBe(200);
    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await f.createRoom(u);
      expect(res.status).toBe(200);
      made.push(res.body.room_id as string);
    }
    for (let i = 0; i < 4; i++) expect((await f.invite(u, made[0] as string, await f.user('y'))).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await api(t, 'POST', '/_matrix/media/v1/create', { token: u.accessToken })).status).toBe(200);
  });
});

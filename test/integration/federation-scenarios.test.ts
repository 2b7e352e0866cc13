/**
 * Federation scenarios across two real Axon servers over HTTPS on the
 * loopback: a conversation both ways with long-polling /sync on each side,
 * and kick, ban, unban and leave across servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { until } from '../helpers/until.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
const enc = encodeURIComponent;

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  alice = await createUser(a.test, 'alice');
  bob = await createUser(b.test, 'bob');
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

async function publicRoom(): Promise<string> {
  const res = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat', room_version: '10' } });
  expect(res.status).toBe(200);
  const roomId = res.body.room_id as string;
  const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
  expect(join.status, JSON.stringify(join.body)).toBe(200);
  await until(async () => (await membership(a, alice, roomId, bob.userId)) === 'join');
  return roomId;
}

async function membership(t: FederationServer, user: TestUser, roomId: string, target: string): Promise<string | undefined> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(target)}`, { token: user.accessToken });
  return res.status === 200 ? (res.body.membership as string) : undefined;
}

async function messageIds(t: FederationServer, user: TestUser, roomId: string): Promise<string[]> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=f&limit=200`, { token: user.accessToken });
  expect(res.status).toBe(200);
  return (res.body.chunk as { type: string; event_id: string }[]).filter((e) => e.type === 'm.room.message').map((e) => e.event_id);
}

async function sinceToken(t: FederationServer, user: TestUser): Promise<string> {
  const res = await api(t.test, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: user.accessToken });
  return res.body.next_batch as string;
}

type SyncBody = {
  next_batch: string;
  rooms?: {
    join?: Record<string, { timeline: { events: { type: string; event_id: string; state_key?: string; content: Record<string, unknown> }[] } }>;
    leave?: Record<string, unknown>;
  };
};

describe('a conversation both ways', () => {
  it('20 messages from each side, interleaved: long-polling syncs wake on both sides and both timelines hold the same 40 in the same order', async () => {
    const roomId = await publicRoom();
    // A long poll waiting on one side before the other sends: the remote message must wake it
    // (a poll answered early for something else is renewed from its next_batch).
    const wokenBy = async (t: FederationServer, user: TestUser, since: string, send: () => Promise<string>): Promise<string> => {
      let poll = api(t.test, 'GET', `/_matrix/client/v3/sync?since=${enc(since)}&timeout=10000`, { token: user.accessToken });
      await new Promise((r) => setTimeout(r, 200));
      const id = await send();
      for (let i = 0; i < 10; i++) {
        const body = (await poll).body as SyncBody;
        if (body.rooms?.join?.[roomId]?.timeline.events.some((e) => e.event_id === id)) return body.next_batch;
        poll = api(t.test, 'GET', `/_matrix/client/v3/sync?since=${enc(body.next_batch)}&timeout=10000`, { token: user.accessToken });
      }
      throw new Error('the long poll never carried the remote message');
    };
    const send = async (t: FederationServer, user: TestUser, txn: string, body: string): Promise<string> => {
      const res = await api(t.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/${txn}`, { token: user.accessToken, body: { msgtype: 'm.text', body } });
      expect(res.status).toBe(200);
      return res.body.event_id as string;
    };
    const sinceB = await wokenBy(b, bob, await sinceToken(b, bob), () => send(a, alice, 'chat-a-0', 'a0'));
    const sinceA = await wokenBy(a, alice, await sinceToken(a, alice), () => send(b, bob, 'chat-b-0', 'b0'));

    // Each waits for the other's message before answering, so the order is the same everywhere.
    for (let i = 1; i < 20; i++) {
      const sa = await send(a, alice, `chat-a-${i}`, `a${i}`);
      await until(async () => (await messageIds(b, bob, roomId)).includes(sa));
      const sb = await send(b, bob, `chat-b-${i}`, `b${i}`);
      await until(async () => (await messageIds(a, alice, roomId)).includes(sb));
    }
    const onA = await messageIds(a, alice, roomId);
    const onB = await messageIds(b, bob, roomId);
    expect(onA).toHaveLength(40);
    expect(onB).toEqual(onA);

    // Incremental syncs from the woken tokens carry the rest, in that order too.
    const collect = async (t: FederationServer, user: TestUser, since: string): Promise<string[]> => {
      const res = (await api(t.test, 'GET', `/_matrix/client/v3/sync?since=${enc(since)}&timeout=0`, { token: user.accessToken })).body as SyncBody;
      return (res.rooms?.join?.[roomId]?.timeline.events ?? []).filter((e) => e.type === 'm.room.message').map((e) => e.event_id);
    };
    const restB = await collect(b, bob, sinceB);
    expect(restB.length).toBeGreaterThan(0);
    expect(onB.slice(onB.length - restB.length)).toEqual(restB);
    const restA = await collect(a, alice, sinceA);
    expect(onA.slice(onA.length - restA.length)).toEqual(restA);
  }, 40_000);
});

describe('kick, ban and leave across servers', () => {
  it('alice kicks bob (B sees the leave), bans him (his rejoin is 403), unbans; bob rejoins and leaves and A sees it', async () => {
    const roomId = await publicRoom();
    const since = await sinceToken(b, bob);
    const kick = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/kick`, { token: alice.accessToken, body: { user_id: bob.userId, reason: 'out' } });
    expect(kick.status).toBe(200);
    await until(async () => {
      const res = (await api(b.test, 'GET', `/_matrix/client/v3/sync?since=${enc(since)}&timeout=0`, { token: bob.accessToken })).body as SyncBody;
      return res.rooms?.leave?.[roomId] !== undefined;
    });
    const joined = await api(b.test, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken });
    expect(joined.body.joined_rooms).not.toContain(roomId);

    const ban = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/ban`, { token: alice.accessToken, body: { user_id: bob.userId } });
    expect(ban.status).toBe(200);
    const refused = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    expect(await membership(a, alice, roomId, bob.userId)).toBe('ban');

    const unban = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/unban`, { token: alice.accessToken, body: { user_id: bob.userId } });
    expect(unban.status).toBe(200);
    const rejoin = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
    expect(rejoin.status, JSON.stringify(rejoin.body)).toBe(200);
    await until(async () => (await membership(a, alice, roomId, bob.userId)) === 'join');

    const leave = await api(b.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { token: bob.accessToken, body: {} });
    expect(leave.status).toBe(200);
    await until(async () => (await membership(a, alice, roomId, bob.userId)) === 'leave');
  }, 40_000);
});

describe('a message each way in every room version', () => {
  for (const version of ['1', '3', '6', '10', '11', '12']) {
    it(`room version ${version}: bob joins, then one message from each side reaches the other`, async () => {
      const res = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat', room_version: version } });
      expect(res.status).toBe(200);
      const roomId = res.body.room_id as string;
      const join = await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: bob.accessToken, body: {} });
      expect(join.status, JSON.stringify(join.body)).toBe(200);
      const fromA = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/v${version}-a`, {
        token: alice.accessToken,
        body: { msgtype: 'm.text', body: 'from A' },
      });
      expect(fromA.status).toBe(200);
      await until(async () => (await messageIds(b, bob, roomId)).includes(fromA.body.event_id as string));
      const fromB = await api(b.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/v${version}-b`, {
        token: bob.accessToken,
        body: { msgtype: 'm.text', body: 'from B' },
      });
      expect(fromB.status).toBe(200);
      await until(async () => (await messageIds(a, alice, roomId)).includes(fromB.body.event_id as string));
      expect(await messageIds(a, alice, roomId)).toEqual(await messageIds(b, bob, roomId));
    });
  }
});

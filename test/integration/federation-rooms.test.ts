/**
 * Rooms shared by two (and three) real Axon servers over HTTPS on the
 * loopback, once joined: EDUs both ways (received in /send, and sent by the
 * federation sender), a third server's join passed on by the resident,
 * rc_federation, /hierarchy, another server's room directory, server ACLs
 * and backfill.
 */
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  signedFederationRequest,
  startFederationServer,
  startFederationPair,
  type FederationPair,
  type FederationServer,
  createRoomOn as createRoom,
  membersOn as members,
} from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';
import { until } from '../helpers/until.js';

let a: FederationServer;
let b: FederationServer;
let alice: TestUser;
let bob: TestUser;
let agent: Agent;
const enc = encodeURIComponent;

let pair: FederationPair;
beforeAll(async () => {
  pair = await startFederationPair();
  ({ a, b, alice, bob, agent } = pair);
  await api(b.test, 'PUT', `/_matrix/client/v3/profile/${enc(bob.userId)}/displayname`, { token: bob.accessToken, body: { displayname: 'Bob of B' } });
}, 60_000);

afterAll(() => pair?.close());

/** A federation request from `from` to `to`, signed with `from`'s key. */
const fed = (from: FederationServer, to: FederationServer, method: 'GET' | 'PUT' | 'POST', uri: string, body?: unknown) =>
  signedFederationRequest(agent, from, to, method, uri, body);

describe('EDUs over /send', () => {
  let roomId: string;
  let since: string;
  beforeAll(async () => {
    roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
    since = (await api(a.test, 'GET', '/_matrix/client/v3/sync', { token: alice.accessToken })).body.next_batch as string;
  });

  it('typing, receipts, to-device and device-list updates of the origin’s users reach alice; ones naming others are skipped', async () => {
    const lastEvent = (await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=1`, { token: alice.accessToken })).body.chunk as {
      event_id: string;
    }[];
    const target = lastEvent[0]!.event_id;
    const edus = [
      { edu_type: 'm.typing', content: { room_id: roomId, user_id: bob.userId, typing: true } },
      // Not B's user: skipped.
      { edu_type: 'm.typing', content: { room_id: roomId, user_id: alice.userId, typing: true } },
      { edu_type: 'm.receipt', content: { [roomId]: { 'm.read': { [bob.userId]: { event_ids: [target], data: { ts: 1 } } } } } },
      {
        edu_type: 'm.direct_to_device',
        content: { sender: bob.userId, type: 'm.room_key_request', message_id: 'm1', messages: { [alice.userId]: { [alice.deviceId]: { hello: 'alice' } } } },
      },
      { edu_type: 'm.device_list_update', content: { user_id: bob.userId, device_id: 'BOBDEV', stream_id: 1, prev_id: [], deleted: false } },
      {
        edu_type: 'm.presence',
        content: {
          push: [
            { user_id: bob.userId, presence: 'online', status_msg: 'on B', last_active_ago: 1000, currently_active: true },
            { user_id: alice.userId, presence: 'offline' },
          ],
        },
      },
      { edu_type: 'm.unknown_edu', content: {} },
    ];
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/edus1`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [], edus });
    expect(res.status).toBe(200);
    const sync = (await api(a.test, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=0`, { token: alice.accessToken })).body as Record<string, any>;
    const ephemeral = sync.rooms?.join?.[roomId]?.ephemeral?.events as { type: string; content: Record<string, any> }[];
    expect(ephemeral.find((e) => e.type === 'm.typing')?.content.user_ids).toEqual([bob.userId]);
    const receipt = ephemeral.find((e) => e.type === 'm.receipt');
    expect(receipt?.content[target]?.['m.read']?.[bob.userId]).toBeDefined();
    expect(sync.to_device.events).toEqual([{ type: 'm.room_key_request', sender: bob.userId, content: { hello: 'alice' } }]);
    expect(sync.device_lists.changed).toContain(bob.userId);
    const presence = (sync.presence?.events ?? []) as { sender: string; content: Record<string, unknown> }[];
    expect(presence.find((e) => e.sender === bob.userId)?.content).toMatchObject({ presence: 'online', status_msg: 'on B', currently_active: true });
    // alice's own presence is not B's to say.
    expect((await api(a.test, 'GET', `/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { token: alice.accessToken })).body.presence).not.toBe('offline');

    // The same message id again is not delivered twice.
    const again = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/edus2`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [], edus: [edus[3]] });
    expect(again.status).toBe(200);
    const next = (await api(a.test, 'GET', `/_matrix/client/v3/sync?since=${sync.next_batch}&timeout=0`, { token: alice.accessToken })).body as Record<string, any>;
    expect(next.to_device?.events ?? []).toEqual([]);
  });
});

describe('EDUs sent by the federation sender', () => {
  it('bob’s typing, read receipt and presence on B reach alice on A', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
    const sent = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/edu-m1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'read me' },
    });
    const eventId = sent.body.event_id as string;
    // bob's server has the message once the sender delivered it.
    await until(async () => (await api(b.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: bob.accessToken })).status === 200);
    expect(
      (await api(b.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { token: bob.accessToken, body: { typing: true, timeout: 20000 } })).status,
    ).toBe(200);
    expect((await api(b.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
    expect(
      (await api(b.test, 'PUT', `/_matrix/client/v3/presence/${enc(bob.userId)}/status`, { token: bob.accessToken, body: { presence: 'unavailable', status_msg: 'away on B' } }))
        .status,
    ).toBe(200);
    await until(async () => {
      const sync = (await api(a.test, 'GET', '/_matrix/client/v3/sync', { token: alice.accessToken })).body as Record<string, any>;
      const ephemeral = (sync.rooms?.join?.[roomId]?.ephemeral?.events ?? []) as { type: string; content: Record<string, any> }[];
      const typing = ephemeral.find((e) => e.type === 'm.typing')?.content.user_ids ?? [];
      const receipt = ephemeral.find((e) => e.type === 'm.receipt')?.content[eventId]?.['m.read']?.[bob.userId];
      return typing.includes(bob.userId) && receipt !== undefined;
    });
    await until(async () => (await api(a.test, 'GET', `/_matrix/client/v3/presence/${enc(bob.userId)}/status`, { token: alice.accessToken })).body.status_msg === 'away on B');
  });
});

describe('three servers', () => {
  it('a third server joining through A is passed on by A to B, and messages then reach all three', async () => {
    const c = await startFederationServer();
    try {
      const carol = await createUser(c.test, 'carol');
      const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '11' });
      expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
      expect((await api(c.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: carol.accessToken, body: {} })).status).toBe(200);
      // B never talked to C: it learns of carol's join from A, the resident that took her send_join.
      await until(async () => (await members(b, bob, roomId))[carol.userId] === 'join');
      const sent = await api(c.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/three1`, {
        token: carol.accessToken,
        body: { msgtype: 'm.text', body: 'hello from C' },
      });
      expect(sent.status).toBe(200);
      const eventId = sent.body.event_id as string;
      for (const [t, u] of [
        [a, alice],
        [b, bob],
      ] as const) {
        await until(async () => (await api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: u.accessToken })).status === 200);
      }
    } finally {
      await c.close();
    }
  });
});

describe('rc_federation', () => {
  it('with Synapse’s limits, a burst of 60 requests from one origin has the ones past 50 refused with 429', async () => {
    // Synapse's defaults but for a window long enough that a slow machine (the embedded database) still sends the burst within it.
    const d = await startFederationServer({ yaml: { rc_federation: { window_size: 60_000 } } });
    try {
      const dave = await createUser(d.test, 'dave');
      const uri = `/_matrix/federation/v1/query/profile?user_id=${enc(dave.userId)}`;
      const answers = await Promise.all(Array.from({ length: 60 }, () => fed(a, d, 'GET', uri)));
      const refused = answers.filter((r) => r.status === 429);
      expect(answers.filter((r) => r.status === 200).length).toBe(50);
      expect(refused.length).toBe(10);
      expect(refused[0]!.body.errcode).toBe('M_LIMIT_EXCEEDED');
      expect(typeof refused[0]!.body.retry_after_ms).toBe('number');
      // Another origin is counted apart.
      expect((await fed(b, d, 'GET', uri)).status).toBe(200);
    } finally {
      await d.close();
    }
  });
});

describe('/hierarchy over federation', () => {
  it('answers a space with its children: public ones in children, private ones inaccessible, suggested_only honoured; 404 for what B may not see', async () => {
    const space = await createRoom(a, alice, { preset: 'public_chat', name: 'Space', creation_content: { type: 'm.space' } });
    const open = await createRoom(a, alice, { preset: 'public_chat', name: 'Open', topic: 'chat here' });
    const closed = await createRoom(a, alice, { preset: 'private_chat', name: 'Closed' });
    for (const [child, suggested] of [
      [open, true],
      [closed, false],
    ] as const) {
      const r = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(space)}/state/m.space.child/${enc(child)}`, {
        token: alice.accessToken,
        body: { via: [a.serverName], suggested },
      });
      expect(r.status).toBe(200);
    }
    const res = await fed(b, a, 'GET', `/_matrix/federation/v1/hierarchy/${enc(space)}`);
    expect(res.status).toBe(200);
    expect(res.body.room).toMatchObject({ room_id: space, name: 'Space', room_type: 'm.space', join_rule: 'public', num_joined_members: 1, world_readable: false });
    expect((res.body.room as { children_state: { state_key: string }[] }).children_state.map((c) => c.state_key).sort()).toEqual([open, closed].sort());
    expect((res.body.children as { room_id: string; topic?: string }[]).map((c) => [c.room_id, c.topic])).toEqual([[open, 'chat here']]);
    expect(res.body.inaccessible_children).toEqual([closed]);
    const suggested = await fed(b, a, 'GET', `/_matrix/federation/v1/hierarchy/${enc(space)}?suggested_only=true`);
    expect((suggested.body.room as { children_state: unknown[] }).children_state).toHaveLength(1);
    const hidden = await fed(b, a, 'GET', `/_matrix/federation/v1/hierarchy/${enc(closed)}`);
    expect(hidden.status).toBe(404);
    expect(hidden.body.errcode).toBe('M_NOT_FOUND');
    expect((await fed(b, a, 'GET', `/_matrix/federation/v1/hierarchy/${enc('!nope:' + a.serverName)}`)).status).toBe(404);
  });
});

describe('another server’s room directory', () => {
  it('GET and POST /publicRooms?server= ask it over federation, and its refusal is the answer', async () => {
    const res = await api(b.test, 'GET', `/_matrix/client/v3/publicRooms?server=${enc(a.serverName)}`, { token: bob.accessToken });
    // allow_public_rooms_over_federation is off by default (as Synapse): A refuses.
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });
});

describe('m.room.server_acl', () => {
  it('a server the room bans gets its PDUs refused, and cannot make_join', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '11' });
    expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
    // A message built by B before the ban.
    const svc = b.test.server.ctx.services;
    const db = b.test.server.ctx.database.db;
    const { requireRoomVersion } = await import('../../src/core/room-versions.js');
    const room = await svc.rooms.pipeline.room(db, roomId);
    const built = await svc.rooms.pipeline.builder.build(
      db,
      room,
      requireRoomVersion('11'),
      bob.userId,
      { type: 'm.room.message', content: { msgtype: 'm.text', body: 'after the ban' } },
      Date.now(),
    );
    const acl = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.server_acl/`, {
      token: alice.accessToken,
      body: { allow: ['*'], deny: [b.serverName.split(':')[0]], allow_ip_literals: true },
    });
    expect(acl.status).toBe(200);
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/acl1`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [built.pdu] });
    expect(res.status).toBe(200);
    expect(Object.values(res.body.pdus as Record<string, { error?: string }>)).toEqual([{ error: 'Server is banned from room' }]);
    const made = await fed(b, a, 'GET', `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(`@dave:${b.serverName}`)}?ver=11`);
    expect(made.status).toBe(403);
    expect(made.body.errcode).toBe('M_FORBIDDEN');
  });
});

describe('backfill', () => {
  it('bob, joining late, pages back through history B never saw: fetched from A, in order', async () => {
    const roomId = await createRoom(a, alice, { preset: 'public_chat', room_version: '10' });
    for (let i = 0; i < 25; i++) {
      const r = await api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/bf${i}`, {
        token: alice.accessToken,
        body: { msgtype: 'm.text', body: `old ${i}` },
      });
      expect(r.status).toBe(200);
    }
    expect((await api(b.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: bob.accessToken, body: {} })).status).toBe(200);
    const bodies: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await api(b.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=10${from ? `&from=${from}` : ''}`, { token: bob.accessToken });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      for (const e of res.body.chunk as { type: string; content: { body?: string } }[]) if (e.type === 'm.room.message') bodies.push(e.content.body ?? '');
      from = res.body.end as string | undefined;
      if (!from) break;
    }
    expect(bodies).toEqual(Array.from({ length: 25 }, (_, i) => `old ${24 - i}`));
    // The room's creation is reached too, and sync never shows the history as new.
    const sync = await api(b.test, 'GET', '/_matrix/client/v3/sync', { token: bob.accessToken });
    expect(sync.status).toBe(200);
  });
});

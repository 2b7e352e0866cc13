/**
 * What the server adds to `unsigned` wherever timeline events are read
 * (/messages, /context, /event, /sync, /relations, /threads):
 * `transaction_id` on the events the requesting device sent (the spec's
 * ClientEvent), and `prev_content`, `prev_sender` and `replaces_state` on
 * state events (as Synapse).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type ClientEv, roomHelpers, useServerWithUsers, signIn, text } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

const env = useServerWithUsers('alice', 'bob');

const enc = encodeURIComponent;
const { act, createRoom, join, messages, redact, send, setState, sync } = roomHelpers(() => env.t);

/** The event as each reading endpoint serves it to this device: /messages, /context, /event and an initial /sync. */
async function everywhere(as: TestUser, roomId: string, eventId: string): Promise<Record<string, ClientEv>> {
  const page = await messages(as, roomId, { dir: 'b', limit: 50 });
  expect(page.status).toBe(200);
  const context = await api(env.t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/context/${enc(eventId)}?limit=2`, { token: as.accessToken });
  expect(context.status).toBe(200);
  const event = await api(env.t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: as.accessToken });
  expect(event.status).toBe(200);
  const body = await sync(as, { filter: { room: { rooms: [roomId], timeline: { limit: 50 } } } });
  const find = (events: ClientEv[]) => {
    const e = events.find((x) => x.event_id === eventId);
    if (!e) throw new Error(`${eventId} not served`);
    return e;
  };
  return {
    messages: find(page.body.chunk),
    context: context.body.event as ClientEv,
    event: event.body as unknown as ClientEv,
    sync: find(body.rooms.join[roomId].timeline.events),
  };
}

describe('unsigned.transaction_id', () => {
  let roomId: string;
  let sent: string;
  beforeAll(async () => {
    roomId = await createRoom(env.alice, { preset: 'public_chat' });
    await join(env.bob, roomId);
    sent = await send(env.alice, roomId, text('with a txn id'), 'm.room.message', 'my-txn-1');
  });

  it('is on the events the requesting device sent, wherever they are read', async () => {
    for (const [where, e] of Object.entries(await everywhere(env.alice, roomId, sent))) {
      expect(e.unsigned['transaction_id'], where).toBe('my-txn-1');
      expect(typeof e.unsigned['age'], where).toBe('number');
    }
  });

  it("is not on them for the sender's other devices, nor for other users", async () => {
    const otherDevice = await signIn(env.t, env.alice);
    for (const reader of [otherDevice, env.bob]) {
      for (const [where, e] of Object.entries(await everywhere(reader, roomId, sent))) expect(e.unsigned['transaction_id'], where).toBeUndefined();
    }
  });

  it("is the redaction's own txn id on a redaction", async () => {
    const target = await send(env.alice, roomId, text('to redact'));
    const res = await redact(env.alice, roomId, target, 'redact-txn-1', { reason: 'oops' });
    expect(res.status).toBe(200);
    for (const [where, e] of Object.entries(await everywhere(env.alice, roomId, res.body.event_id as string))) {
      expect(e.type).toBe('m.room.redaction');
      expect(e.unsigned['transaction_id'], where).toBe('redact-txn-1');
    }
  });
});

describe('unsigned.transaction_id in /relations and /threads', () => {
  it("is on the device's own thread root and replies", async () => {
    const roomId = await createRoom(env.alice, { preset: 'public_chat' });
    await join(env.bob, roomId);
    const root = await send(env.alice, roomId, text('root'), 'm.room.message', 'root-txn');
    const reply = await send(env.alice, roomId, text('reply', { 'm.relates_to': { rel_type: 'm.thread', event_id: root } }), 'm.room.message', 'reply-txn');
    const read = async (as: TestUser) => {
      const rel = await api(env.t, 'GET', `/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(root)}`, { token: as.accessToken });
      const threads = await api(env.t, 'GET', `/_matrix/client/v1/rooms/${enc(roomId)}/threads`, { token: as.accessToken });
      expect(rel.status).toBe(200);
      expect(threads.status).toBe(200);
      const [r] = rel.body.chunk as ClientEv[];
      const [th] = threads.body.chunk as ClientEv[];
      expect(r?.event_id).toBe(reply);
      expect(th?.event_id).toBe(root);
      return [r!.unsigned['transaction_id'], th!.unsigned['transaction_id']];
    };
    expect(await read(env.alice)).toEqual(['reply-txn', 'root-txn']);
    expect(await read(env.bob)).toEqual([undefined, undefined]);
  });
});

describe('unsigned.prev_content, prev_sender and replaces_state', () => {
  it('are on a state event that replaced another, wherever it is read', async () => {
    const roomId = await createRoom(env.alice, { preset: 'private_chat' });
    const first = await setState(env.alice, roomId, 'org.example.state', { n: 1 }, 'k');
    const second = await setState(env.alice, roomId, 'org.example.state', { n: 2 }, 'k');
    for (const [where, e] of Object.entries(await everywhere(env.alice, roomId, first))) {
      expect(e.unsigned['prev_content'], where).toBeUndefined();
      expect(e.unsigned['replaces_state'], where).toBeUndefined();
    }
    for (const [where, e] of Object.entries(await everywhere(env.alice, roomId, second))) {
      expect(e.content, where).toEqual({ n: 2 });
      expect(e.unsigned['prev_content'], where).toEqual({ n: 1 });
      expect(e.unsigned['prev_sender'], where).toBe(env.alice.userId);
      expect(e.unsigned['replaces_state'], where).toBe(first);
    }
  });

  it("name the replaced event's sender: a join after an invite", async () => {
    const roomId = await createRoom(env.alice, { preset: 'private_chat' });
    await act(env.alice, roomId, 'invite', env.bob);
    const page = await messages(env.alice, roomId, { dir: 'b', limit: 1 });
    const invite = page.body.chunk[0]!;
    expect(invite.content['membership']).toBe('invite');
    await join(env.bob, roomId);
    const joinEvent = (await messages(env.bob, roomId, { dir: 'b', limit: 1 })).body.chunk[0]!;
    for (const [where, e] of Object.entries(await everywhere(env.bob, roomId, joinEvent.event_id))) {
      expect(e.content['membership'], where).toBe('join');
      expect(e.unsigned['prev_content'], where).toMatchObject({ membership: 'invite' });
      expect(e.unsigned['prev_sender'], where).toBe(env.alice.userId);
      expect(e.unsigned['replaces_state'], where).toBe(invite.event_id);
    }
  });
});

/**
 * GET /rooms/{roomId}/messages: topological pages in both directions with
 * `t` and sync tokens, the RoomEventFilter, lazy-loaded members, history
 * visibility, the 1000-event cap, and the errors. Also the 64 KiB event
 * limit through /send and /state.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { getEvent } from '../../src/storage/events.js';
import { roomHelpers, signIn, text, useServerWithUsers } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const { t, alice, bob, carol } = useServerWithUsers('alice', 'bob', 'carol');

const enc = encodeURIComponent;
const { act, createRoom, leave, send, setState, join, messages, sync } = roomHelpers(() => t);

interface Ev {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  state_key?: string;
  unsigned: Record<string, unknown>;
}
interface Page {
  chunk: Ev[];
  start: string;
  end?: string;
  state?: Ev[];
}

/** Every event of the room, paging with `limit`, in the direction given. */
async function pageAll(token: string, roomId: string, dir: 'b' | 'f', limit: number, from?: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let token_ = from;
  let pages = 0;
  for (;;) {
    const res = await messages(token, roomId, { dir, limit, ...(token_ ? { from: token_ } : {}) });
    expect(res.status).toBe(200);
    pages++;
    ids.push(...res.body.chunk.map((e) => e.event_id));
    if (!res.body.end) break;
    token_ = res.body.end;
    if (pages > 100) throw new Error('pagination does not end');
  }
  return { ids, pages };
}

describe('/messages pagination', () => {
  let roomId: string;
  const sent: string[] = [];
  beforeAll(async () => {
    roomId = await createRoom(alice.accessToken, { preset: 'public_chat', name: 'pages' });
    for (let i = 0; i < 12; i++) sent.push(await send(alice.accessToken, roomId, { msgtype: 'm.text', body: `message ${i}` }));
  });

  it('backwards without `from` starts at the newest event, 10 by default, with an `end` while more remain', async () => {
    const res = await messages(alice.accessToken, roomId, { dir: 'b' });
    expect(res.status).toBe(200);
    expect(res.body.chunk).toHaveLength(10);
    expect(res.body.chunk.map((e) => e.event_id)).toEqual([...sent].reverse().slice(0, 10));
    expect(res.body.start).toMatch(/^t\d+_\d+$/);
    expect(res.body.end).toMatch(/^t\d+_\d+$/);
    expect(res.body.state).toBeUndefined();
    const e = res.body.chunk[0]!;
    expect(e.content).toEqual({ msgtype: 'm.text', body: 'message 11' });
    expect(e.sender).toBe(alice.userId);
    expect(typeof e.unsigned.age).toBe('number');
  });

  it('pages back through the whole history to the create event, then gives no `end`', async () => {
    const { ids, pages } = await pageAll(alice.accessToken, roomId, 'b', 4);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(0, 12)).toEqual([...sent].reverse());
    const created = await getEvent(t.server.ctx.database.db, ids[ids.length - 1]!);
    expect(created?.type).toBe('m.room.create');
    // 12 messages + 7 creation events (create, member, power levels, join rules, history, name... ) in pages of 4
    expect(pages).toBe(Math.ceil(ids.length / 4));
  });

  it('forwards without `from` starts at the create event; both directions list the same events', async () => {
    const back = await pageAll(alice.accessToken, roomId, 'b', 5);
    const fwd = await pageAll(alice.accessToken, roomId, 'f', 5);
    expect(fwd.ids).toEqual([...back.ids].reverse());
    const first = await getEvent(t.server.ctx.database.db, fwd.ids[0]!);
    expect(first?.type).toBe('m.room.create');
  });

  it('an `end` token continues exactly where the page stopped, in either direction', async () => {
    const first = await messages(alice.accessToken, roomId, { dir: 'b', limit: 3 });
    const second = await messages(alice.accessToken, roomId, { dir: 'b', limit: 3, from: first.body.end! });
    expect(second.body.start).toBe(first.body.end);
    expect(second.body.chunk.map((e) => e.event_id)).toEqual([...sent].reverse().slice(3, 6));
    // Forwards from the second page's end: the events after it, oldest first.
    const fwd = await messages(alice.accessToken, roomId, { dir: 'f', limit: 4, from: second.body.end! });
    expect(fwd.body.chunk.map((e) => e.event_id)).toEqual(sent.slice(6, 10));
  });

  it('`to` bounds the page', async () => {
    const head = await messages(alice.accessToken, roomId, { dir: 'b', limit: 2 });
    const res = await messages(alice.accessToken, roomId, { dir: 'b', limit: 10, to: (await messages(alice.accessToken, roomId, { dir: 'b', limit: 5 })).body.end! });
    expect(res.body.chunk.map((e) => e.event_id)).toEqual([...sent].reverse().slice(0, 5));
    expect(res.body.end).toBeUndefined();
    expect(head.body.chunk).toHaveLength(2);
  });

  it('accepts a sync token as `from` (its events position)', async () => {
    const db = t.server.ctx.database.db;
    const mid = await getEvent(db, sent[5]!);
    const res = await messages(alice.accessToken, roomId, { dir: 'b', limit: 3, from: `s${mid!.stream_ordering}_0_0_0_0_0_0` });
    expect(res.status).toBe(200);
    expect(res.body.chunk.map((e) => e.event_id)).toEqual([sent[5], sent[4], sent[3]]);
    const fwd = await messages(alice.accessToken, roomId, { dir: 'f', limit: 2, from: `s${mid!.stream_ordering}` });
    expect(fwd.body.chunk.map((e) => e.event_id)).toEqual([sent[6], sent[7]]);
  });

  it('refuses bad parameters with the spec errors', async () => {
    const bad = async (q: Record<string, string>, status: number, errcode: string) => {
      const res = await messages(alice.accessToken, roomId, q);
      expect(res.status).toBe(status);
      expect(res.body.errcode).toBe(errcode);
    };
    await bad({ dir: 'x' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', from: 'garbage' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', to: 'tx_1' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', limit: '-1' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', limit: 'ten' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', filter: '{not json' }, 400, 'M_NOT_JSON');
    await bad({ dir: 'b', filter: '[1]' }, 400, 'M_NOT_JSON');
    await bad({ dir: 'b', filter: '{"types":"m.room.message"}' }, 400, 'M_INVALID_PARAM');
    await bad({ dir: 'b', filter: '{"lazy_load_members":"yes"}' }, 400, 'M_INVALID_PARAM');
    const noToken = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b`);
    expect(noToken.status).toBe(401);
    expect(noToken.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('is served under r0 too', async () => {
    const res = await api(t, 'GET', `/_matrix/client/r0/rooms/${enc(roomId)}/messages?dir=b&limit=1`, { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect((res.body.chunk as Ev[])[0]?.event_id).toBe(sent[11]);
  });
});

describe('/messages filter', () => {
  let roomId: string;
  beforeAll(async () => {
    roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await join(bob, roomId);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'a1' });
    await send(bob.accessToken, roomId, { msgtype: 'm.image', body: 'pic', url: 'mxc://test.local/abc' });
    await send(bob.accessToken, roomId, { hello: true }, 'org.example.custom');
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'a2' });
  });

  const ofFilter = async (filter: object, token = alice.accessToken) => {
    const res = await messages(token, roomId, { dir: 'b', limit: 50, filter: JSON.stringify(filter) });
    expect(res.status).toBe(200);
    return res.body;
  };

  it('types, not_types (with * wildcards), senders and not_senders', async () => {
    expect((await ofFilter({ types: ['m.room.message'] })).chunk.map((e) => e.content['body'])).toEqual(['a2', 'pic', 'a1']);
    expect((await ofFilter({ types: ['org.example.*'] })).chunk.map((e) => e.type)).toEqual(['org.example.custom']);
    const notState = (await ofFilter({ not_types: ['m.room.*'] })).chunk.map((e) => e.type);
    expect(notState).toEqual(['org.example.custom']);
    expect((await ofFilter({ senders: [bob.userId], types: ['m.room.message'] })).chunk.map((e) => e.content['body'])).toEqual(['pic']);
    const notBob = (await ofFilter({ not_senders: [bob.userId], types: ['m.room.message', 'org.*'] })).chunk;
    expect(notBob.every((e) => e.sender === alice.userId)).toBe(true);
    expect(notBob.map((e) => e.content['body'])).toEqual(['a2', 'a1']);
    // not_types wins over types.
    expect((await ofFilter({ types: ['m.room.message'], not_types: ['m.room.message'] })).chunk).toEqual([]);
  });

  it('contains_url true and false', async () => {
    expect((await ofFilter({ contains_url: true })).chunk.map((e) => e.content['body'])).toEqual(['pic']);
    const without = (await ofFilter({ contains_url: false, types: ['m.room.message'] })).chunk.map((e) => e.content['body']);
    expect(without).toEqual(['a2', 'a1']);
  });

  it('a filter limit applies when the query has none; rooms/not_rooms can exclude the room', async () => {
    expect((await messages(alice.accessToken, roomId, { dir: 'b', filter: JSON.stringify({ limit: 2 }) })).body.chunk).toHaveLength(2);
    const excluded = await ofFilter({ not_rooms: [roomId] });
    expect(excluded.chunk).toEqual([]);
    expect(excluded.end).toBeUndefined();
  });

  it('reads the parameter leniently (null is absent, ids unchecked) but refuses U+0000 and a limit below 1', async () => {
    const lenient = await ofFilter({ types: null, not_types: null, limit: null, contains_url: null, not_senders: ['not-a-user-id'], not_rooms: ['#not-a-room'] });
    expect(lenient.chunk.map((e) => e.content['body']).filter(Boolean)).toEqual(['a2', 'pic', 'a1']);
    for (const filter of [{ types: ['m.room.message\u0000'] }, { senders: ['@a\u0000:x'] }, { limit: 0 }, { unread_thread_notifications: 'yes' }]) {
      const res = await messages(alice, roomId, { dir: 'b', filter: JSON.stringify(filter) });
      expect(res.status, JSON.stringify(filter)).toBe(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
    }
  });

  it('lazy_load_members returns the member events of the senders in `state`', async () => {
    const body = await ofFilter({ lazy_load_members: true, types: ['m.room.message'] });
    const members = (body.state ?? []).map((e) => [e.type, e.state_key, e.content['membership']]);
    expect(members.sort()).toEqual([
      ['m.room.member', alice.userId, 'join'],
      ['m.room.member', bob.userId, 'join'],
    ]);
    const onlyBob = await ofFilter({ lazy_load_members: true, include_redundant_members: true, senders: [bob.userId], types: ['m.room.message'] });
    expect(onlyBob.state?.map((e) => e.state_key)).toEqual([bob.userId]);
  });
});

describe('/messages lazy-loaded members, per device', () => {
  let roomId: string;
  const lazy = (extra: object = {}) => JSON.stringify({ lazy_load_members: true, types: ['m.room.message'], ...extra });
  const members = (p: Page) => (p.state ?? []).map((e) => e.state_key).sort();
  beforeAll(async () => {
    roomId = await createRoom(alice, { preset: 'public_chat', name: 'lazy members' });
    await join(bob, roomId);
    await join(carol, roomId);
    await send(alice, roomId, text('from alice'));
    await send(bob, roomId, text('from bob'));
    await send(carol, roomId, text('from carol'));
  });

  it('leaves out members already sent to the device; include_redundant_members and other devices get them all', async () => {
    const device = await signIn(t, alice);
    const first = await messages(device, roomId, { dir: 'b', filter: lazy() });
    expect(first.status).toBe(200);
    expect(members(first.body)).toEqual([alice.userId, bob.userId, carol.userId].sort());
    // The same page again: this device has every one of them.
    const again = await messages(device, roomId, { dir: 'b', filter: lazy() });
    expect(again.body.chunk).toHaveLength(3);
    expect(again.body.state).toEqual([]);
    const redundant = await messages(device, roomId, { dir: 'b', filter: lazy({ include_redundant_members: true }) });
    expect(members(redundant.body)).toEqual([alice.userId, bob.userId, carol.userId].sort());
    // Another device of the same user has been sent nothing yet.
    const other = await signIn(t, alice);
    expect(members((await messages(other, roomId, { dir: 'b', filter: lazy() })).body)).toEqual([alice.userId, bob.userId, carol.userId].sort());
    // Without lazy loading there is no `state` at all.
    expect((await messages(device, roomId, { dir: 'b' })).body.state).toBeUndefined();
  });

  it('sends a member again once their member event changed', async () => {
    const device = await signIn(t, alice);
    expect(members((await messages(device, roomId, { dir: 'b', filter: lazy() })).body)).toHaveLength(3);
    const renamed = await setState(bob, roomId, 'm.room.member', { membership: 'join', displayname: 'Bobby' }, bob.userId);
    await send(bob, roomId, text('renamed'));
    const page = await messages(device, roomId, { dir: 'b', filter: lazy() });
    expect(page.body.state?.map((e) => e.event_id)).toEqual([renamed]);
    expect(page.body.state?.[0]?.content['displayname']).toBe('Bobby');
  });

  it('leaves out the members /sync already sent to the device; an initial sync starts the record afresh', async () => {
    const device = await signIn(t, alice);
    const last = await send(carol, roomId, text('carol again'));
    // A lazy initial sync whose timeline is carol's message: the state sends carol (the sender) and alice (the syncing user).
    const filter = { room: { rooms: [roomId], timeline: { limit: 1 }, state: { lazy_load_members: true } } };
    const body = await sync(device, { filter });
    const joined = body.rooms.join[roomId];
    expect(joined.timeline.events.map((e: Ev) => e.event_id)).toEqual([last]);
    expect(
      joined.state.events
        .filter((e: Ev) => e.type === 'm.room.member')
        .map((e: Ev) => e.state_key)
        .sort(),
    ).toEqual([alice.userId, carol.userId].sort());
    expect(members((await messages(device, roomId, { dir: 'b', filter: lazy() })).body)).toEqual([bob.userId]);
    // Everything has been sent now. A new initial sync starts afresh (sending alice and carol again): bob is sent once more.
    expect(members((await messages(device, roomId, { dir: 'b', filter: lazy() })).body)).toEqual([]);
    await sync(device, { filter });
    expect(members((await messages(device, roomId, { dir: 'b', filter: lazy() })).body)).toEqual([bob.userId]);
  });
});

describe('history visibility in /messages', () => {
  const bodies = (p: Page) => p.chunk.filter((e) => e.type === 'm.room.message').map((e) => e.content['body']);

  it('joined: a later joiner sees only what came after their join', async () => {
    const roomId = await createRoom(alice.accessToken, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }],
    });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'before' });
    await join(bob, roomId);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'after' });
    const res = await messages(bob.accessToken, roomId, { dir: 'b', limit: 50 });
    expect(res.status).toBe(200);
    expect(bodies(res.body)).toEqual(['after']);
    // Bob's own join is visible to him.
    expect(res.body.chunk.some((e) => e.type === 'm.room.member' && e.state_key === bob.userId)).toBe(true);
    expect(bodies((await messages(alice.accessToken, roomId, { dir: 'b', limit: 50 })).body)).toEqual(['after', 'before']);
  });

  it('shared: a later joiner sees the history from before their join', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'old' });
    await join(bob, roomId);
    expect(bodies((await messages(bob.accessToken, roomId, { dir: 'b', limit: 50 })).body)).toEqual(['old']);
  });

  it('invited: visible from the invite on, not before', async () => {
    const roomId = await createRoom(alice.accessToken, {
      preset: 'private_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'invited' } }],
    });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'secret' });
    await act(alice, roomId, 'invite', bob);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'while invited' });
    await join(bob, roomId);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'joined' });
    expect(bodies((await messages(bob.accessToken, roomId, { dir: 'b', limit: 50 })).body)).toEqual(['joined', 'while invited']);
  });

  it('a user who left reads up to their leave, not after it', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await join(bob, roomId);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'while there' });
    await leave(bob, roomId);
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'after leaving' });
    const back = await messages(bob.accessToken, roomId, { dir: 'b', limit: 50 });
    expect(back.status).toBe(200);
    expect(bodies(back.body)).toEqual(['while there']);
    expect(back.body.chunk[0]).toMatchObject({ type: 'm.room.member', state_key: bob.userId, content: { membership: 'leave' } });
    const fwd = await pageAll(bob.accessToken, roomId, 'f', 50);
    const db = t.server.ctx.database.db;
    const types = await Promise.all(fwd.ids.map(async (id) => (await getEvent(db, id))?.json['content']));
    expect(types.some((c) => (c as Record<string, unknown>)['body'] === 'after leaving')).toBe(false);
  });

  it('non-members of a non-world-readable room get 403 M_FORBIDDEN (and so does an unknown room)', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    const res = await messages(carol.accessToken, roomId, { dir: 'b' });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
    const unknown = await messages(carol.accessToken, '!nowhere:test.local', { dir: 'b' });
    expect(unknown.status).toBe(403);
    expect(unknown.body.errcode).toBe('M_FORBIDDEN');
  });

  it('world_readable: anyone reads the world_readable part; the earlier shared part stays hidden from peekers', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'members only' });
    await setState(alice.accessToken, roomId, 'm.room.history_visibility', { history_visibility: 'world_readable' });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'for the world' });
    const res = await messages(carol.accessToken, roomId, { dir: 'b', limit: 50 });
    expect(res.status).toBe(200);
    expect(bodies(res.body)).toEqual(['for the world']);
    // The change to world_readable is visible (judged by the less restrictive side).
    expect(res.body.chunk.some((e) => e.type === 'm.room.history_visibility')).toBe(true);
    // Back to joined: the peeker sees the change itself, but not what follows.
    await setState(alice.accessToken, roomId, 'm.room.history_visibility', { history_visibility: 'joined' });
    await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'closed again' });
    const after = await messages(carol.accessToken, roomId, { dir: 'b', limit: 50 });
    // The room is no longer world_readable now: carol has no access at all.
    expect(after.status).toBe(403);
  });
});

describe('long rooms', () => {
  it('caps a page at 1000 events and pages on from there', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    // 1,010 messages through the pipeline in one transaction: cheaper than 1,010 requests.
    const rooms = t.server.ctx.services.rooms;
    const db = t.server.ctx.database.db;
    await rooms.pipeline.inRoomQueue(roomId, () =>
      rooms.pipeline.transaction(async (tx) => {
        const room = await rooms.pipeline.room(tx, roomId);
        for (let i = 0; i < 1010; i++) await rooms.pipeline.persist(tx, room, alice.userId, { type: 'm.room.message', content: { msgtype: 'm.text', body: `bulk ${i}` } });
      }),
    );
    // The bulk insert can hold the event loop for seconds (the embedded database runs in this
    // process): let overdue keep-alive timers close idle sockets before the next request.
    await new Promise((r) => setTimeout(r, 100));
    const res = await messages(alice.accessToken, roomId, { dir: 'b', limit: 5000 });
    expect(res.status).toBe(200);
    expect(res.body.chunk).toHaveLength(1000);
    expect(res.body.chunk[0]!.content['body']).toBe('bulk 1009');
    expect(res.body.chunk[999]!.content['body']).toBe('bulk 10');
    const rest = await messages(alice.accessToken, roomId, { dir: 'b', limit: 20, from: res.body.end! });
    expect(rest.body.chunk.slice(0, 10).map((e) => e.content['body'])).toEqual(Array.from({ length: 10 }, (_, i) => `bulk ${9 - i}`));
  });
});

describe('the 64 KiB event limit', () => {
  it('refuses an oversized message (/send) and state event (/state) with 413 M_TOO_LARGE, storing nothing', async () => {
    const roomId = await createRoom(alice.accessToken, {});
    const before = await messages(alice.accessToken, roomId, { dir: 'b', limit: 100 });
    const big = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/huge1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'x'.repeat(66_000) },
    });
    expect(big.status).toBe(413);
    expect(big.body.errcode).toBe('M_TOO_LARGE');
    const bigState = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic`, { token: alice.accessToken, body: { topic: 'y'.repeat(66_000) } });
    expect(bigState.status).toBe(413);
    expect(bigState.body.errcode).toBe('M_TOO_LARGE');
    const after = await messages(alice.accessToken, roomId, { dir: 'b', limit: 100 });
    expect(after.body.chunk.map((e) => e.event_id)).toEqual(before.body.chunk.map((e) => e.event_id));
    // Just under the limit is fine.
    const fits = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/fits1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'z'.repeat(60_000) },
    });
    expect(fits.status).toBe(200);
  });
});

/**
 * GET /rooms/{roomId}/context/{eventId}, GET /rooms/{roomId}/event/{eventId}
 * and GET /v1/rooms/{roomId}/timestamp_to_event, with history visibility
 * and the errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { getEvent } from '../../src/storage/events.js';
import { roomHelpers, text, useServerWithUsers } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const { t, alice, bob, carol } = useServerWithUsers('alice', 'bob', 'carol');

const enc = encodeURIComponent;
const rooms = roomHelpers(() => t);
const { createRoom, join, leave } = rooms;
/** Sends a text message; its event id. */
const send = (token: string, roomId: string, body: string) => rooms.send(token, roomId, text(body));

interface Ev {
  event_id: string;
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
  room_id: string;
  unsigned: Record<string, unknown>;
}

const context = (token: string, roomId: string, eventId: string, query = '') => api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/context/${enc(eventId)}${query}`, { token });
const getEventReq = (token: string, roomId: string, eventId: string, version = 'v3') =>
  api(t, 'GET', `/_matrix/client/${version}/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token });

describe('/context', () => {
  let roomId: string;
  const ids: string[] = [];
  beforeAll(async () => {
    roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await join(bob, roomId);
    for (let i = 0; i < 10; i++) ids.push(await send(i % 2 === 0 ? alice.accessToken : bob.accessToken, roomId, `m${i}`));
  });

  it('returns the event, limit/2 events before (newest first) and the rest after (oldest first)', async () => {
    const res = await context(alice.accessToken, roomId, ids[5]!, '?limit=4');
    expect(res.status).toBe(200);
    const body = res.body as unknown as { event: Ev; events_before: Ev[]; events_after: Ev[]; state: Ev[]; start: string; end: string };
    expect(body.event.event_id).toBe(ids[5]);
    expect(body.event.content).toEqual({ msgtype: 'm.text', body: 'm5' });
    expect(body.events_before.map((e) => e.event_id)).toEqual([ids[4], ids[3]]);
    expect(body.events_after.map((e) => e.event_id)).toEqual([ids[6], ids[7]]);
    const stateTypes = new Set(body.state.map((e) => e.type));
    for (const ty of ['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member']) expect(stateTypes.has(ty)).toBe(true);
    expect(
      body.state
        .filter((e) => e.type === 'm.room.member')
        .map((e) => e.state_key)
        .sort(),
    ).toEqual([alice.userId, bob.userId].sort());

    // start/end continue with /messages.
    const back = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=2&from=${enc(body.start)}`, { token: alice.accessToken });
    expect((back.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([ids[2], ids[1]]);
    const fwd = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=f&limit=2&from=${enc(body.end)}`, { token: alice.accessToken });
    expect((fwd.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([ids[8], ids[9]]);
  });

  it('defaults to 10 context events, and limit=0 returns only the event', async () => {
    const res = await context(alice.accessToken, roomId, ids[9]!);
    expect((res.body.events_before as Ev[]).length).toBe(5);
    expect(res.body.events_after).toEqual([]);
    const zero = await context(alice.accessToken, roomId, ids[4]!, '?limit=0');
    expect(zero.status).toBe(200);
    expect((zero.body.event as Ev).event_id).toBe(ids[4]);
    expect(zero.body.events_before).toEqual([]);
    expect(zero.body.events_after).toEqual([]);
  });

  it('applies the filter to the context events and state, and lazy-loads members', async () => {
    const filter = enc(JSON.stringify({ senders: [bob.userId], lazy_load_members: true }));
    const res = await context(alice.accessToken, roomId, ids[4]!, `?limit=6&filter=${filter}`);
    expect(res.status).toBe(200);
    expect((res.body.event as Ev).sender).toBe(alice.userId); // the event itself is not filtered
    const before = res.body.events_before as Ev[];
    expect(before.map((e) => e.event_id).slice(0, 2)).toEqual([ids[3], ids[1]]);
    expect(before[2]).toMatchObject({ type: 'm.room.member', state_key: bob.userId, sender: bob.userId });
    expect((res.body.events_after as Ev[]).map((e) => e.event_id)).toEqual([ids[5], ids[7], ids[9]]);
    // State: filtered by sender (bob's own join is the only state he sent), members lazy-loaded.
    const state = res.body.state as Ev[];
    expect(state.map((e) => [e.type, e.state_key])).toEqual([['m.room.member', bob.userId]]);
  });

  it('lazy_load_members keeps only the members who sent the returned events (plus all other state)', async () => {
    const room = await createRoom(alice.accessToken, { preset: 'public_chat' });
    await join(carol, room);
    await send(alice.accessToken, room, 'a');
    const b = await send(alice.accessToken, room, 'b');
    await send(alice.accessToken, room, 'c');
    const full = await context(alice.accessToken, room, b, '?limit=2');
    expect(
      (full.body.state as Ev[])
        .filter((e) => e.type === 'm.room.member')
        .map((e) => e.state_key)
        .sort(),
    ).toEqual([alice.userId, carol.userId].sort());
    const lazy = await context(alice.accessToken, room, b, `?limit=2&filter=${enc(JSON.stringify({ lazy_load_members: true }))}`);
    const lazyState = lazy.body.state as Ev[];
    expect(lazyState.filter((e) => e.type === 'm.room.member').map((e) => e.state_key)).toEqual([alice.userId]);
    expect(lazyState.some((e) => e.type === 'm.room.power_levels')).toBe(true);
  });

  it('errors: unknown event or another room → 404, not visible → 403, bad params → 400', async () => {
    const missing = await context(alice.accessToken, roomId, '$missing:test.local');
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    const other = await createRoom(alice.accessToken, { preset: 'public_chat' });
    const wrongRoom = await context(alice.accessToken, other, ids[0]!);
    expect(wrongRoom.status).toBe(404);
    expect(wrongRoom.body.errcode).toBe('M_NOT_FOUND');
    const secret = await createRoom(alice.accessToken, { preset: 'private_chat' });
    const hidden = await send(alice.accessToken, secret, 'hidden');
    const denied = await context(carol.accessToken, secret, hidden);
    expect(denied.status).toBe(403);
    expect(denied.body.errcode).toBe('M_FORBIDDEN');
    expect((await context(alice.accessToken, roomId, ids[0]!, '?limit=-3')).body.errcode).toBe('M_INVALID_PARAM');
    expect((await context(alice.accessToken, roomId, ids[0]!, '?filter=nope')).body.errcode).toBe('M_NOT_JSON');
  });
});

describe('/event', () => {
  it('returns the event in client format (v3 and r0)', async () => {
    const roomId = await createRoom(alice.accessToken, {});
    const id = await send(alice.accessToken, roomId, 'hello');
    for (const v of ['v3', 'r0']) {
      const res = await getEventReq(alice.accessToken, roomId, id, v);
      expect(res.status).toBe(200);
      const e = res.body as unknown as Ev;
      expect(e).toMatchObject({ event_id: id, room_id: roomId, sender: alice.userId, type: 'm.room.message', content: { msgtype: 'm.text', body: 'hello' } });
      expect(typeof e.origin_server_ts).toBe('number');
      expect(typeof e.unsigned.age).toBe('number');
      // The PDU's federation fields are not served.
      expect(res.body).not.toHaveProperty('hashes');
      expect(res.body).not.toHaveProperty('signatures');
      expect(res.body).not.toHaveProperty('prev_events');
    }
  });

  it('404 M_NOT_FOUND when missing, in another room, or not visible to the user', async () => {
    const roomId = await createRoom(alice.accessToken, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }],
    });
    const early = await send(alice.accessToken, roomId, 'before bob');
    expect((await getEventReq(alice.accessToken, roomId, '$nope:test.local')).body.errcode).toBe('M_NOT_FOUND');
    const other = await createRoom(alice.accessToken, {});
    const wrong = await getEventReq(alice.accessToken, other, early);
    expect(wrong.status).toBe(404);
    // Carol is not in the room.
    const outsider = await getEventReq(carol.accessToken, roomId, early);
    expect(outsider.status).toBe(404);
    expect(outsider.body.errcode).toBe('M_NOT_FOUND');
    // Bob joins after it, under `joined` visibility: still hidden; what follows is his.
    await join(bob, roomId);
    expect((await getEventReq(bob.accessToken, roomId, early)).status).toBe(404);
    const later = await send(alice.accessToken, roomId, 'after bob');
    expect((await getEventReq(bob.accessToken, roomId, later)).status).toBe(200);
    // After leaving, bob still reads what he saw while joined, but nothing newer.
    await leave(bob, roomId);
    const afterLeave = await send(alice.accessToken, roomId, 'after bob left');
    expect((await getEventReq(bob.accessToken, roomId, later)).status).toBe(200);
    expect((await getEventReq(bob.accessToken, roomId, afterLeave)).status).toBe(404);
  });

  it('world_readable events are readable by anyone signed in', async () => {
    const roomId = await createRoom(alice.accessToken, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
    });
    const id = await send(alice.accessToken, roomId, 'public words');
    const res = await getEventReq(carol.accessToken, roomId, id);
    expect(res.status).toBe(200);
    expect((res.body.content as Record<string, unknown>)['body']).toBe('public words');
  });
});

describe('/timestamp_to_event', () => {
  it('finds the nearest event forwards and backwards; 404 when there is none', async () => {
    const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
    const a = await send(alice.accessToken, roomId, 'a');
    await new Promise((r) => setTimeout(r, 15));
    const b = await send(alice.accessToken, roomId, 'b');
    const db = t.server.ctx.database.db;
    const ta = (await getEvent(db, a))!.origin_server_ts;
    const tb = (await getEvent(db, b))!.origin_server_ts;
    expect(tb).toBeGreaterThan(ta);
    const path = (q: string) => `/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event?${q}`;
    const fwd = await api(t, 'GET', path(`ts=${ta + 1}&dir=f`), { token: alice.accessToken });
    expect(fwd.status).toBe(200);
    expect(fwd.body).toEqual({ event_id: b, origin_server_ts: tb });
    const back = await api(t, 'GET', path(`ts=${tb - 1}&dir=b`), { token: alice.accessToken });
    expect(back.body).toEqual({ event_id: a, origin_server_ts: ta });
    const exact = await api(t, 'GET', path(`ts=${tb}&dir=b`), { token: alice.accessToken });
    expect(exact.body.event_id).toBe(b);
    const none = await api(t, 'GET', path(`ts=${tb + 60_000}&dir=f`), { token: alice.accessToken });
    expect(none.status).toBe(404);
    expect(none.body.errcode).toBe('M_NOT_FOUND');
  });

  it('errors: missing ts → M_MISSING_PARAM, bad dir → M_INVALID_PARAM, non-member → 403', async () => {
    const roomId = await createRoom(alice.accessToken, {});
    const base = `/_matrix/client/v1/rooms/${enc(roomId)}/timestamp_to_event`;
    const missing = await api(t, 'GET', `${base}?dir=f`, { token: alice.accessToken });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe('M_MISSING_PARAM');
    const badDir = await api(t, 'GET', `${base}?ts=1&dir=up`, { token: alice.accessToken });
    expect(badDir.status).toBe(400);
    expect(badDir.body.errcode).toBe('M_INVALID_PARAM');
    const badTs = await api(t, 'GET', `${base}?ts=soon&dir=f`, { token: alice.accessToken });
    expect(badTs.body.errcode).toBe('M_INVALID_PARAM');
    const outsider = await api(t, 'GET', `${base}?ts=1&dir=f`, { token: carol.accessToken });
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
  });
});

/**
 * GET /sync over HTTP: initial and incremental syncs, limited timelines
 * and prev_batch paging with /messages, state before the timeline, full
 * state, lazy-loaded members, invites with stripped state, leaves and
 * include_leave, account data, summaries, history visibility, ephemeral
 * events, unread counts, and the errors for bad parameters.
 */
import { describe, expect, it } from 'vitest';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;

const { t, alice, bob, carol } = useServerWithUsers('alice', 'bob', 'carol');

const enc = encodeURIComponent;

async function sync(u: TestUser, params: Record<string, string | number | boolean | object> = {}): Promise<Json> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  const res = await api(t, 'GET', `/_matrix/client/v3/sync?${q}`, { token: u.accessToken });
  if (res.status !== 200) throw new Error(`sync answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function createRoom(u: TestUser, body: object = {}): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: u.accessToken, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}

let txn = 0;
async function send(u: TestUser, roomId: string, body = 'hello', type = 'm.room.message'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/t${++txn}`, { token: u.accessToken, body: { msgtype: 'm.text', body } });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

async function setState(u: TestUser, roomId: string, type: string, content: object, stateKey = ''): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/${type}/${enc(stateKey)}`, { token: u.accessToken, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}

async function member(u: TestUser, roomId: string, action: 'join' | 'leave'): Promise<void> {
  const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, { token: u.accessToken, body: {} });
  expect(res.status).toBe(200);
}

async function act(u: TestUser, roomId: string, action: 'invite' | 'kick' | 'ban' | 'unban', target: TestUser): Promise<void> {
  const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/${action}`, { token: u.accessToken, body: { user_id: target.userId } });
  expect(res.status).toBe(200);
}

const ids = (events: Json[]) => events.map((e) => e.event_id as string);
const types = (events: Json[]) => events.map((e) => e.type as string);

describe('initial sync', () => {
  it('answers every section, with a small new room wholly in the timeline', async () => {
    const roomId = await createRoom(alice, { name: 'First' });
    const body = await sync(alice);
    expect(body.next_batch).toMatch(/^s\d+(_\d+){6}$/);
    expect(body.account_data).toEqual({ events: expect.any(Array) });
    expect(body.presence).toEqual({ events: expect.any(Array) });
    expect(body.to_device).toEqual({ events: [] });
    expect(body.device_lists).toEqual({ changed: [], left: [] });
    // signed_curve25519 is always counted, as Synapse does (services/e2ee/keys.ts).
    expect(body.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(body.device_unused_fallback_key_types).toEqual([]);
    expect(Object.keys(body.rooms).sort()).toEqual(['invite', 'join', 'knock', 'leave']);
    const room = body.rooms.join[roomId];
    expect(room).toBeDefined();
    expect(types(room.timeline.events)).toEqual([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.name',
    ]);
    expect(room.timeline.limited).toBe(false);
    expect(room.timeline.prev_batch).toMatch(/^t\d+_\d+$/);
    // Everything is in the timeline, so the state before it is empty.
    expect(room.state.events).toEqual([]);
    for (const e of room.timeline.events) {
      expect(e.room_id).toBeUndefined();
      expect(e.event_id).toMatch(/^\$/);
      expect(typeof e.origin_server_ts).toBe('number');
      expect(typeof e.unsigned.age).toBe('number');
    }
    expect(room.ephemeral).toEqual({ events: [] });
    expect(room.account_data).toEqual({ events: [] });
    expect(room.unread_notifications).toEqual({ notification_count: 0, highlight_count: 0 });
    expect(room.summary).toEqual({ 'm.joined_member_count': 1, 'm.invited_member_count': 0 });
  });

  it('a long timeline is limited; the state before it is the full state at its start; prev_batch pages back with /messages', async () => {
    const roomId = await createRoom(alice, { name: 'Long' });
    const sent: string[] = [];
    for (let i = 0; i < 15; i++) sent.push(await send(alice, roomId, `m${i}`));
    const body = await sync(alice, { filter: { room: { timeline: { limit: 5 } } } });
    const room = body.rooms.join[roomId];
    expect(room.timeline.limited).toBe(true);
    expect(ids(room.timeline.events)).toEqual(sent.slice(10));
    const stateTypes = types(room.state.events).sort();
    expect(stateTypes).toEqual(['m.room.create', 'm.room.guest_access', 'm.room.history_visibility', 'm.room.join_rules', 'm.room.member', 'm.room.name', 'm.room.power_levels']);
    // No event is both in the state and the timeline.
    const timelineIds = new Set(ids(room.timeline.events));
    for (const e of room.state.events) expect(timelineIds.has(e.event_id)).toBe(false);
    // prev_batch names the point just before the first timeline event.
    const first = room.timeline.events[0];
    expect(room.timeline.prev_batch).toMatch(/^t\d+_\d+$/);
    const page = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=5&from=${enc(room.timeline.prev_batch)}`, { token: alice.accessToken });
    expect(page.status).toBe(200);
    expect(ids(page.body.chunk as Json[])).toEqual(sent.slice(5, 10).reverse());
    expect(ids(page.body.chunk as Json[])).not.toContain(first.event_id);
  });

  it('state at the start of the timeline holds the value before a change the timeline carries', async () => {
    const roomId = await createRoom(alice, { name: 'Old name' });
    for (let i = 0; i < 5; i++) await send(alice, roomId, `x${i}`);
    await setState(alice, roomId, 'm.room.name', { name: 'New name' });
    const body = await sync(alice, { filter: { room: { timeline: { limit: 2 } } } });
    const room = body.rooms.join[roomId];
    expect(types(room.timeline.events)).toEqual(['m.room.message', 'm.room.name']);
    const name = room.state.events.find((e: Json) => e.type === 'm.room.name');
    expect(name.content).toEqual({ name: 'Old name' });
    const changed = room.timeline.events[1];
    expect(changed.content).toEqual({ name: 'New name' });
    expect(changed.unsigned.prev_content).toEqual({ name: 'Old name' });
    expect(changed.unsigned.replaces_state).toBe(name.event_id);
  });
});

describe('incremental sync', () => {
  it('returns only what is new, and nothing for rooms without news', async () => {
    const r1 = await createRoom(alice);
    const r2 = await createRoom(alice);
    const first = await sync(alice);
    const empty = await sync(alice, { since: first.next_batch });
    expect(empty.rooms.join).toEqual({});
    expect(empty.next_batch).toBe(first.next_batch);
    const eventId = await send(alice, r1, 'news');
    const next = await sync(alice, { since: first.next_batch });
    expect(Object.keys(next.rooms.join)).toEqual([r1]);
    expect(r2 in next.rooms.join).toBe(false);
    const room = next.rooms.join[r1];
    expect(ids(room.timeline.events)).toEqual([eventId]);
    expect(room.timeline.limited).toBe(false);
    expect(room.state.events).toEqual([]);
    expect(next.next_batch).not.toBe(first.next_batch);
    // The same token again gives the same news; the new one, none.
    expect(ids((await sync(alice, { since: first.next_batch })).rooms.join[r1].timeline.events)).toEqual([eventId]);
    expect((await sync(alice, { since: next.next_batch })).rooms.join).toEqual({});
  });

  it('gives transaction_id to the sending device only', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, roomId, 'join');
    const a0 = await sync(alice);
    const b0 = await sync(bob);
    const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/my-txn-1`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'x' } });
    const a1 = await sync(alice, { since: a0.next_batch });
    const b1 = await sync(bob, { since: b0.next_batch });
    const mine = a1.rooms.join[roomId].timeline.events.find((e: Json) => e.event_id === res.body.event_id);
    const theirs = b1.rooms.join[roomId].timeline.events.find((e: Json) => e.event_id === res.body.event_id);
    expect(mine.unsigned.transaction_id).toBe('my-txn-1');
    expect(theirs.unsigned.transaction_id).toBeUndefined();
  });

  it('a gap gives a limited timeline and the state that changed in the gap', async () => {
    const roomId = await createRoom(alice, { name: 'Before gap' });
    const s0 = await sync(alice);
    await setState(alice, roomId, 'm.room.name', { name: 'In the gap' });
    await setState(alice, roomId, 'm.room.topic', { topic: 'Topic in the gap' });
    for (let i = 0; i < 6; i++) await send(alice, roomId, `g${i}`);
    const s1 = await sync(alice, { since: s0.next_batch, filter: { room: { timeline: { limit: 3 } } } });
    const room = s1.rooms.join[roomId];
    expect(room.timeline.limited).toBe(true);
    expect(room.timeline.events).toHaveLength(3);
    const st = Object.fromEntries(room.state.events.map((e: Json) => [e.type, e.content]));
    expect(st).toEqual({ 'm.room.name': { name: 'In the gap' }, 'm.room.topic': { topic: 'Topic in the gap' } });
  });

  it('full_state=true sends the whole state with an incremental timeline', async () => {
    const roomId = await createRoom(alice, { name: 'Full' });
    const s0 = await sync(alice);
    const eventId = await send(alice, roomId, 'one');
    const s1 = await sync(alice, { since: s0.next_batch, full_state: true });
    const room = s1.rooms.join[roomId];
    expect(ids(room.timeline.events)).toEqual([eventId]);
    expect(types(room.state.events).sort()).toEqual([
      'm.room.create',
      'm.room.guest_access',
      'm.room.history_visibility',
      'm.room.join_rules',
      'm.room.member',
      'm.room.name',
      'm.room.power_levels',
    ]);
    // full_state also sends rooms with nothing new.
    const other = await createRoom(alice);
    const s2 = await sync(alice);
    const s3 = await sync(alice, { since: s2.next_batch, full_state: true });
    expect(s3.rooms.join[other]).toBeDefined();
    expect(s3.rooms.join[other].timeline.events).toEqual([]);
  });
});

describe('memberships', () => {
  it('an invite shows as stripped state; joining brings the room in full', async () => {
    const roomId = await createRoom(alice, { name: 'Invite me', topic: 'About' });
    const b0 = await sync(bob);
    await act(alice, roomId, 'invite', bob);
    const b1 = await sync(bob, { since: b0.next_batch });
    const inv = b1.rooms.invite[roomId];
    expect(inv).toBeDefined();
    const evs: Json[] = inv.invite_state.events;
    const byType = (ty: string, sk = '') => evs.find((e) => e.type === ty && e.state_key === sk);
    expect(byType('m.room.create')).toBeDefined();
    expect(byType('m.room.join_rules')?.content).toEqual({ join_rule: 'invite' });
    expect(byType('m.room.name')?.content).toEqual({ name: 'Invite me' });
    expect(byType('m.room.topic')?.content).toEqual({ topic: 'About' });
    const inviter = byType('m.room.member', alice.userId);
    expect(inviter).toEqual({ type: 'm.room.member', state_key: alice.userId, sender: alice.userId, content: expect.objectContaining({ membership: 'join' }) });
    // Stripped: only type, state_key, sender, content.
    expect(Object.keys(byType('m.room.name') as Json).sort()).toEqual(['content', 'sender', 'state_key', 'type']);
    const invite = evs[evs.length - 1] as Json;
    expect(invite.type).toBe('m.room.member');
    expect(invite.state_key).toBe(bob.userId);
    expect(invite.content.membership).toBe('invite');
    expect(invite.event_id).toMatch(/^\$/);
    expect(b1.rooms.join[roomId]).toBeUndefined();
    // An initial sync shows the invite too.
    expect((await sync(bob)).rooms.invite[roomId]).toBeDefined();

    await member(bob, roomId, 'join');
    const b2 = await sync(bob, { since: b1.next_batch });
    expect(b2.rooms.invite[roomId]).toBeUndefined();
    const joined = b2.rooms.join[roomId];
    expect(joined.timeline.limited).toBe(true);
    const all = [...joined.state.events, ...joined.timeline.events];
    expect(all.some((e: Json) => e.type === 'm.room.create')).toBe(true);
    expect(all.some((e: Json) => e.type === 'm.room.member' && e.state_key === bob.userId && e.content.membership === 'join')).toBe(true);
    expect(joined.summary['m.joined_member_count']).toBe(2);
  });

  it('leaving shows the room under leave up to the leave; initial syncs show it only with include_leave', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Leave me' });
    await member(bob, roomId, 'join');
    const b0 = await sync(bob);
    const before = await send(alice, roomId, 'before the leave');
    await member(bob, roomId, 'leave');
    const after = await send(alice, roomId, 'after the leave');
    const b1 = await sync(bob, { since: b0.next_batch });
    expect(b1.rooms.join[roomId]).toBeUndefined();
    const left = b1.rooms.leave[roomId];
    expect(left).toBeDefined();
    const tl = ids(left.timeline.events);
    expect(tl).toContain(before);
    expect(tl).not.toContain(after);
    const last = left.timeline.events[left.timeline.events.length - 1];
    expect(last.type).toBe('m.room.member');
    expect(last.state_key).toBe(bob.userId);
    expect(last.content.membership).toBe('leave');
    expect(left.ephemeral).toBeUndefined();

    expect((await sync(bob)).rooms.leave[roomId]).toBeUndefined();
    const withLeave = await sync(bob, { filter: { room: { include_leave: true } } });
    const archived = withLeave.rooms.leave[roomId];
    expect(archived).toBeDefined();
    expect(ids(archived.timeline.events)).not.toContain(after);
    expect(archived.timeline.events[archived.timeline.events.length - 1].content.membership).toBe('leave');
    // Nothing new after the leave reaches bob.
    expect((await sync(bob, { since: b1.next_batch })).rooms.leave).toEqual({});
  });

  it('kicks and bans show under leave even without include_leave', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(carol, roomId, 'join');
    const c0 = await sync(carol);
    await act(alice, roomId, 'ban', carol);
    const c1 = await sync(carol, { since: c0.next_batch });
    const left = c1.rooms.leave[roomId];
    expect(left.timeline.events[left.timeline.events.length - 1].content.membership).toBe('ban');
    expect((await sync(carol)).rooms.leave[roomId]).toBeDefined();
    await act(alice, roomId, 'unban', carol);
  });
});

describe('account data', () => {
  it('global and room account data come in the initial sync and when changed', async () => {
    const roomId = await createRoom(alice);
    const s0 = await sync(alice);
    const put = await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/org.example.settings`, { token: alice.accessToken, body: { theme: 'dark' } });
    expect(put.status).toBe(200);
    const putRoom = await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/rooms/${enc(roomId)}/account_data/m.tag`, {
      token: alice.accessToken,
      body: { tags: { 'u.work': {} } },
    });
    expect(putRoom.status).toBe(200);
    const s1 = await sync(alice, { since: s0.next_batch });
    expect(s1.account_data.events).toEqual([{ type: 'org.example.settings', content: { theme: 'dark' } }]);
    expect(s1.rooms.join[roomId].account_data.events).toEqual([{ type: 'm.tag', content: { tags: { 'u.work': {} } } }]);
    expect(s1.rooms.join[roomId].timeline.events).toEqual([]);
    const initial = await sync(alice);
    expect(initial.account_data.events).toContainEqual({ type: 'org.example.settings', content: { theme: 'dark' } });
    expect(initial.rooms.join[roomId].account_data.events).toContainEqual({ type: 'm.tag', content: { tags: { 'u.work': {} } } });
    expect((await sync(alice, { since: s1.next_batch })).account_data.events).toEqual([]);
  });
});

describe('summary and lazy loading', () => {
  it('heroes are the other members when the room has no name', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, roomId, 'join');
    await act(alice, roomId, 'invite', carol);
    const body = await sync(alice);
    expect(body.rooms.join[roomId].summary).toEqual({
      'm.heroes': [bob.userId, carol.userId],
      'm.joined_member_count': 2,
      'm.invited_member_count': 1,
    });
  });

  it('lazy_load_members sends only the members the timeline needs, once per device', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat', name: 'Lazy' });
    await member(bob, roomId, 'join');
    await member(carol, roomId, 'join');
    for (let i = 0; i < 3; i++) await send(alice, roomId, `a${i}`);
    await send(carol, roomId, 'from carol');
    const lazy = { room: { state: { lazy_load_members: true }, timeline: { limit: 1 } } };
    const s0 = await sync(alice, { filter: lazy });
    const room = s0.rooms.join[roomId];
    const members = room.state.events
      .filter((e: Json) => e.type === 'm.room.member')
      .map((e: Json) => e.state_key)
      .sort();
    expect(members).toEqual([alice.userId, carol.userId].sort());
    expect(room.state.events.some((e: Json) => e.type === 'm.room.name')).toBe(true);
    // Carol again: her membership is not sent twice to this device.
    await send(carol, roomId, 'carol again');
    const s1 = await sync(alice, { filter: lazy, since: s0.next_batch });
    expect(s1.rooms.join[roomId].state.events).toEqual([]);
    // Bob speaks: his membership comes now.
    await send(bob, roomId, 'bob speaks');
    const s2 = await sync(alice, { filter: lazy, since: s1.next_batch });
    expect(s2.rooms.join[roomId].state.events.map((e: Json) => e.state_key)).toEqual([bob.userId]);
    // include_redundant_members: sent every time.
    await send(carol, roomId, 'carol thrice');
    const redundant = { room: { state: { lazy_load_members: true, include_redundant_members: true }, timeline: { limit: 1 } } };
    const s3 = await sync(alice, { filter: redundant, since: s2.next_batch });
    expect(s3.rooms.join[roomId].state.events.map((e: Json) => e.state_key)).toEqual([carol.userId]);
    // Without lazy loading, a full sync has every member.
    const full = await sync(alice, { filter: { room: { timeline: { limit: 1 } } } });
    expect(full.rooms.join[roomId].state.events.filter((e: Json) => e.type === 'm.room.member')).toHaveLength(3);
  });
});

describe('history visibility', () => {
  it('a room with history_visibility joined hides what came before the join', async () => {
    const roomId = await createRoom(alice, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }],
    });
    const secret = await send(alice, roomId, 'before bob');
    await member(bob, roomId, 'join');
    const visible = await send(alice, roomId, 'after bob');
    const body = await sync(bob, { filter: { room: { timeline: { limit: 20 } } } });
    const tl = ids(body.rooms.join[roomId].timeline.events);
    expect(tl).not.toContain(secret);
    expect(tl).toContain(visible);
    // With shared visibility (the default of presets) the earlier messages show.
    const shared = await createRoom(alice, { preset: 'public_chat' });
    const early = await send(alice, shared, 'early');
    await member(bob, shared, 'join');
    expect(ids((await sync(bob)).rooms.join[shared].timeline.events)).toContain(early);
  });
});

describe('ignored users', () => {
  it('leaves their events out of timelines', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(carol, roomId, 'join');
    const put = await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, {
      token: alice.accessToken,
      body: { ignored_users: { [carol.userId]: {} } },
    });
    expect(put.status).toBe(200);
    const s0 = await sync(alice);
    await send(carol, roomId, 'ignored');
    const mine = await send(alice, roomId, 'mine');
    const s1 = await sync(alice, { since: s0.next_batch });
    expect(ids(s1.rooms.join[roomId].timeline.events)).toEqual([mine]);
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(alice.userId)}/account_data/m.ignored_user_list`, { token: alice.accessToken, body: { ignored_users: {} } });
  });
});

describe('ephemeral and counts', () => {
  it('typing, receipts and unread counts reach the room members', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, roomId, 'join');
    const b0 = await sync(bob);
    const eventId = await send(alice, roomId, 'count me');
    const b1 = await sync(bob, { since: b0.next_batch });
    expect(b1.rooms.join[roomId].unread_notifications.notification_count).toBe(1);
    const typing = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { token: alice.accessToken, body: { typing: true, timeout: 30000 } });
    expect(typing.status).toBe(200);
    const b2 = await sync(bob, { since: b1.next_batch });
    expect(b2.rooms.join[roomId].ephemeral.events).toContainEqual({ type: 'm.typing', content: { user_ids: [alice.userId] } });
    const receipt = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, { token: bob.accessToken, body: {} });
    expect(receipt.status).toBe(200);
    const b3 = await sync(bob, { since: b2.next_batch });
    const r = b3.rooms.join[roomId];
    const rec = r.ephemeral.events.find((e: Json) => e.type === 'm.receipt');
    expect(rec.content[eventId]['m.read'][bob.userId]).toEqual(expect.objectContaining({ ts: expect.any(Number) }));
    expect(r.unread_notifications.notification_count).toBe(0);
    // The ephemeral filter can leave them out.
    const filtered = await sync(bob, { since: b1.next_batch, filter: { room: { ephemeral: { not_types: ['m.typing'] } } } });
    expect(filtered.rooms.join[roomId].ephemeral.events.map((e: Json) => e.type)).toEqual(['m.receipt']);
  });
});

describe('more room sections', () => {
  it('knocks show under knock with stripped state', async () => {
    const roomId = await createRoom(alice, {
      room_version: '10',
      name: 'Knock here',
      initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
    });
    const c0 = await sync(carol);
    const knock = await api(t, 'POST', `/_matrix/client/v3/knock/${enc(roomId)}`, { token: carol.accessToken, body: { reason: 'let me in' } });
    expect(knock.status).toBe(200);
    const c1 = await sync(carol, { since: c0.next_batch });
    const k = c1.rooms.knock[roomId];
    expect(k).toBeDefined();
    const evs: Json[] = k.knock_state.events;
    expect(evs.find((e) => e.type === 'm.room.join_rules')?.content).toEqual({ join_rule: 'knock' });
    expect(evs.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Knock here' });
    const own = evs[evs.length - 1] as Json;
    expect(own.state_key).toBe(carol.userId);
    expect(own.content.membership).toBe('knock');
    expect((await sync(carol)).rooms.knock[roomId]).toBeDefined();
    expect(c1.rooms.join[roomId]).toBeUndefined();
  });

  it('invites from ignored users are left out; forgotten rooms stay out of leave', async () => {
    const roomId = await createRoom(carol, { name: 'From carol' });
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { token: bob.accessToken, body: { ignored_users: { [carol.userId]: {} } } });
    await act(carol, roomId, 'invite', bob);
    expect((await sync(bob)).rooms.invite[roomId]).toBeUndefined();
    await api(t, 'PUT', `/_matrix/client/v3/user/${enc(bob.userId)}/account_data/m.ignored_user_list`, { token: bob.accessToken, body: { ignored_users: {} } });
    expect((await sync(bob)).rooms.invite[roomId]).toBeDefined();

    const other = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, other, 'join');
    await act(alice, other, 'kick', bob);
    expect((await sync(bob)).rooms.leave[other]).toBeDefined();
    const forget = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(other)}/forget`, { token: bob.accessToken, body: {} });
    expect(forget.status).toBe(200);
    expect((await sync(bob)).rooms.leave[other]).toBeUndefined();
    expect((await sync(bob, { filter: { room: { include_leave: true } } })).rooms.leave[other]).toBeUndefined();
  });

  it('the summary comes again when membership changes', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    const s0 = await sync(alice);
    await send(alice, roomId, 'no membership change');
    const s1 = await sync(alice, { since: s0.next_batch });
    expect(s1.rooms.join[roomId].summary).toEqual({});
    await member(carol, roomId, 'join');
    const s2 = await sync(alice, { since: s1.next_batch });
    expect(s2.rooms.join[roomId].summary).toEqual({ 'm.heroes': [carol.userId], 'm.joined_member_count': 2, 'm.invited_member_count': 0 });
  });
});

describe('event details', () => {
  it('a redacted event shows redacted, with the redaction that did it', async () => {
    const roomId = await createRoom(alice);
    const s0 = await sync(alice);
    const target = await send(alice, roomId, 'regrettable');
    const red = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(target)}/r1`, { token: alice.accessToken, body: { reason: 'oops' } });
    expect(red.status).toBe(200);
    const s1 = await sync(alice, { since: s0.next_batch });
    const [msg, redaction] = s1.rooms.join[roomId].timeline.events as Json[];
    expect(msg.event_id).toBe(target);
    expect(msg.content).toEqual({});
    expect(msg.unsigned.redacted_because.event_id).toBe(red.body.event_id);
    expect(redaction.type).toBe('m.room.redaction');
    expect(redaction.redacts).toBe(target);
  });

  it('a display name change carries prev_content', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, roomId, 'join');
    const s0 = await sync(alice);
    const put = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, {
      token: bob.accessToken,
      body: { membership: 'join', displayname: 'Bobby' },
    });
    expect(put.status).toBe(200);
    const s1 = await sync(alice, { since: s0.next_batch });
    const ev = s1.rooms.join[roomId].timeline.events.find((e: Json) => e.event_id === put.body.event_id);
    expect(ev.content.displayname).toBe('Bobby');
    expect(ev.unsigned.prev_content.membership).toBe('join');
    expect(ev.unsigned.prev_content.displayname).not.toBe('Bobby');
    expect(ev.unsigned.prev_sender).toBe(bob.userId);
  });

  it('use_state_after gives the state at the end of the timeline instead', async () => {
    const roomId = await createRoom(alice, { name: 'Start' });
    const s0 = await sync(alice);
    await setState(alice, roomId, 'm.room.name', { name: 'End' });
    const plain = await sync(alice, { since: s0.next_batch });
    expect(plain.rooms.join[roomId].state).toEqual({ events: [] });
    expect(plain.rooms.join[roomId].state_after).toBeUndefined();
    const after = await sync(alice, { since: s0.next_batch, use_state_after: true });
    const room = after.rooms.join[roomId];
    expect(room.state).toBeUndefined();
    expect(room.state_after.events.map((e: Json) => [e.type, e.content])).toEqual([['m.room.name', { name: 'End' }]]);
    const initial = await sync(alice, { use_state_after: true, filter: { room: { timeline: { limit: 1 } } } });
    const full = initial.rooms.join[roomId].state_after.events as Json[];
    expect(full.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'End' });
    expect(full.some((e) => e.type === 'm.room.create')).toBe(true);
  });

  it('unread_thread_notifications splits the counts per thread when asked', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(bob, roomId, 'join');
    const root = await send(alice, roomId, 'root');
    const b0 = await sync(bob);
    const reply = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/thr1`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'in thread', 'm.relates_to': { rel_type: 'm.thread', event_id: root } },
    });
    expect(reply.status).toBe(200);
    const plain = await sync(bob, { since: b0.next_batch });
    expect(plain.rooms.join[roomId].unread_notifications.notification_count).toBe(2);
    expect(plain.rooms.join[roomId].unread_thread_notifications).toBeUndefined();
    const split = await sync(bob, { since: b0.next_batch, filter: { room: { timeline: { unread_thread_notifications: true } } } });
    expect(split.rooms.join[roomId].unread_notifications.notification_count).toBe(1);
    expect(split.rooms.join[roomId].unread_thread_notifications).toEqual({ [root]: { notification_count: 1, highlight_count: 0 } });
  });

  it('presence of room members comes, unless filtered out', async () => {
    const roomId = await createRoom(alice, { preset: 'public_chat' });
    await member(carol, roomId, 'join');
    const s0 = await sync(alice, { set_presence: 'offline' });
    const put = await api(t, 'PUT', `/_matrix/client/v3/presence/${enc(carol.userId)}/status`, { token: carol.accessToken, body: { presence: 'online', status_msg: 'here' } });
    expect(put.status).toBe(200);
    const s1 = await sync(alice, { since: s0.next_batch, set_presence: 'offline' });
    const p = (s1.presence.events as Json[]).find((e) => e.sender === carol.userId);
    expect(p).toEqual({ type: 'm.presence', sender: carol.userId, content: expect.objectContaining({ presence: 'online', status_msg: 'here' }) });
    const none = await sync(alice, { since: s0.next_batch, set_presence: 'offline', filter: { presence: { not_types: ['*'] } } });
    expect(none.presence.events).toEqual([]);
  });
});

describe('bad parameters', () => {
  const raw = (u: TestUser, q: string) => api(t, 'GET', `/_matrix/client/v3/sync?${q}`, { token: u.accessToken });

  it('refuses malformed tokens and parameters with 400, never 500', async () => {
    for (const q of [
      'since=garbage',
      'since=s1_x',
      'since=t1_2',
      'since=s99999999999999999999',
      'timeout=abc',
      'timeout=1.5',
      'full_state=yes',
      'set_presence=busy',
      'from=s1',
      'use_state_after=1',
    ]) {
      const res = await raw(alice, q);
      expect(res.status, q).toBe(400);
      expect(res.body.errcode, q).toBe('M_INVALID_PARAM');
    }
    expect((await raw(alice, 'filter=%7Bnot json')).body.errcode).toBe('M_NOT_JSON');
    const anon = await api(t, 'GET', '/_matrix/client/v3/sync');
    expect(anon.status).toBe(401);
    expect(anon.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('brings a token from the future back to the present', async () => {
    const now = await sync(alice);
    const res = await raw(alice, `since=s999999999_999999999_0_0_0_0_0`);
    expect(res.status).toBe(200);
    expect(res.body.rooms).toBeDefined();
    const [events] = (now.next_batch as string).slice(1).split('_').map(Number);
    expect(Number((res.body.next_batch as string).slice(1).split('_')[0])).toBeGreaterThanOrEqual(events as number);
  });

  it('serves r0 as well as v3', async () => {
    const res = await api(t, 'GET', '/_matrix/client/r0/sync', { token: alice.accessToken });
    expect(res.status).toBe(200);
    expect(typeof res.body.next_batch).toBe('string');
  });
});

describe('push rules in account data', () => {
  it('an initial sync carries m.push_rules with the server defaults; a change arrives in the next incremental sync', async () => {
    const u = await createUser(t, 'pushsync');
    const initial = (await sync(u)) as {
      next_batch: string;
      account_data: { events: { type: string; content: { global: { override: { rule_id: string }[]; content: { rule_id: string }[] } } }[] };
    };
    const rules = initial.account_data.events.find((e) => e.type === 'm.push_rules');
    expect(rules?.content.global.override.map((r) => r.rule_id)).toContain('.m.rule.master');
    expect(rules?.content.global.content.map((r) => r.rule_id)).toContain('.m.rule.contains_user_name');
    const quiet = (await sync(u, { since: initial.next_batch })) as { account_data: { events: { type: string }[] } };
    expect(quiet.account_data.events.map((e) => e.type)).not.toContain('m.push_rules');
    const put = await api(t, 'PUT', '/_matrix/client/v3/pushrules/global/content/mykeyword', { token: u.accessToken, body: { pattern: 'cake', actions: ['notify'] } });
    expect(put.status).toBe(200);
    const next = (await sync(u, { since: initial.next_batch })) as typeof initial;
    const changed = next.account_data.events.find((e) => e.type === 'm.push_rules');
    expect(changed?.content.global.content.map((r) => r.rule_id)).toContain('mykeyword');
    expect(changed?.content.global.override.map((r) => r.rule_id)).toContain('.m.rule.master');
  });
});

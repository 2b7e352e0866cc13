/**
 * Notification counts and GET /notifications: push rules run for each local
 * member but the sender when an event is stored; counts are what notified
 * after the user's read position (receipts, public or private, threaded or
 * not, and their own events); /notifications pages through them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

const enc = encodeURIComponent;
let txn = 0;
async function send(user: TestUser, roomId: string, content: Record<string, unknown>, type = 'm.room.message'): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${type}/n${++txn}`, { token: user.accessToken, body: content });
  expect(res.status).toBe(200);
  return res.body.event_id as string;
}
const text = (body: string, extra: Record<string, unknown> = {}) => ({ msgtype: 'm.text', body, ...extra });
async function room(creator: TestUser, members: TestUser[]): Promise<string> {
  const roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: creator.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
  for (const m of members) expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: m.accessToken, body: {} })).status).toBe(200);
  return roomId;
}
const receipt = (user: TestUser, roomId: string, type: string, eventId: string, body: Record<string, unknown> = {}) =>
  api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/receipt/${type}/${enc(eventId)}`, { token: user.accessToken, body });
const counts = (user: TestUser, roomId: string) => t.server.ctx.services.push.unreadCounts(user.userId, roomId);
const notifications = (user: TestUser, query = '') => api(t, 'GET', `/_matrix/client/v3/notifications${query}`, { token: user.accessToken });

const { t, alice, bob, carol, dave } = useServerWithUsers('alice', 'bob', 'carol', 'dave');

describe('unread counts', () => {
  let roomId: string;
  beforeAll(async () => {
    roomId = await room(alice, [bob, carol]);
  });

  it("counts a message for every other member, in the event's own transaction, never for the sender", async () => {
    await send(alice, roomId, text('hello all'));
    // No waiting: the counts commit with the event.
    expect(await counts(bob, roomId)).toEqual({ notification_count: 1, highlight_count: 0, main: { notification_count: 1, highlight_count: 0 }, threads: {} });
    expect((await counts(carol, roomId)).notification_count).toBe(1);
    expect((await counts(alice, roomId)).notification_count).toBe(0);
  });

  it('mentions highlight, notices and reactions do not count', async () => {
    await send(alice, roomId, text('hey bob', { 'm.mentions': { user_ids: [bob.userId] } }));
    await send(alice, roomId, { msgtype: 'm.notice', body: 'automated' });
    const first = (await notifications(bob)).body.notifications as { event: { event_id: string } }[];
    await send(alice, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: first[0]?.event.event_id, key: '👍' } }, 'm.reaction');
    expect(await counts(bob, roomId)).toMatchObject({ notification_count: 2, highlight_count: 1 });
    expect(await counts(carol, roomId)).toMatchObject({ notification_count: 2, highlight_count: 0 });
  });

  it('a read receipt on the latest event clears the counts; a private one does too', async () => {
    const latest = await send(alice, roomId, text('one more'));
    expect((await counts(bob, roomId)).notification_count).toBe(3);
    expect((await receipt(bob, roomId, 'm.read', latest)).status).toBe(200);
    expect(await counts(bob, roomId)).toMatchObject({ notification_count: 0, highlight_count: 0 });
    expect((await receipt(carol, roomId, 'm.read.private', latest)).status).toBe(200);
    expect((await counts(carol, roomId)).notification_count).toBe(0);
    // A receipt on an earlier event leaves later ones unread.
    const a = await send(alice, roomId, text('a'));
    await send(alice, roomId, text('b'));
    await receipt(bob, roomId, 'm.read', a);
    expect((await counts(bob, roomId)).notification_count).toBe(1);
  });

  it('the further of m.read and m.read.private counts', async () => {
    const x = await send(alice, roomId, text('x'));
    const y = await send(alice, roomId, text('y'));
    await receipt(carol, roomId, 'm.read', y);
    await receipt(carol, roomId, 'm.read.private', x); // behind the public one: no rewind
    expect((await counts(carol, roomId)).notification_count).toBe(0);
  });

  it('sending an event reads everything before it', async () => {
    await send(alice, roomId, text('question?'));
    expect((await counts(bob, roomId)).notification_count).toBeGreaterThan(0);
    await send(bob, roomId, text('answer'));
    expect((await counts(bob, roomId)).notification_count).toBe(0);
  });

  it('counts many rooms at once', async () => {
    const other = await room(alice, [bob, carol]);
    await send(alice, other, text('elsewhere'));
    const all = await t.server.ctx.services.push.unreadCountsForRooms(bob.userId, [roomId, other, '!unknown:test.local']);
    expect(all.get(other)?.notification_count).toBe(1);
    expect(all.get('!unknown:test.local')).toEqual({ notification_count: 0, highlight_count: 0, main: { notification_count: 0, highlight_count: 0 }, threads: {} });
  });

  it('a redacted event no longer counts', async () => {
    const before = (await counts(carol, roomId)).notification_count;
    const ev = await send(alice, roomId, text('oops'));
    expect((await counts(carol, roomId)).notification_count).toBe(before + 1);
    const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.redaction/r${++txn}`, { token: alice.accessToken, body: { redacts: ev } });
    // Rooms v11+ carry `redacts` in content; the pipeline applies the redaction either way.
    expect(res.status).toBe(200);
    expect((await counts(carol, roomId)).notification_count).toBe(before);
  });
});

describe('display names', () => {
  it("a message with the member's display name in the room highlights them (no m.mentions)", async () => {
    const res = await api(t, 'PUT', `/_matrix/client/v3/profile/${enc(dave.userId)}/displayname`, { token: dave.accessToken, body: { displayname: 'Dave Bowman' } });
    expect(res.status).toBe(200);
    const roomId = await room(alice, [bob, dave]);
    await send(alice, roomId, text('open the pod bay doors, dave bowman'));
    expect(await counts(dave, roomId)).toMatchObject({ notification_count: 1, highlight_count: 1 });
    expect(await counts(bob, roomId)).toMatchObject({ notification_count: 1, highlight_count: 0 });
    // With m.mentions, the legacy display-name rule stands aside.
    await send(alice, roomId, text('dave bowman again', { 'm.mentions': {} }));
    expect(await counts(dave, roomId)).toMatchObject({ notification_count: 2, highlight_count: 1 });
  });
});

describe('direct messages and invites', () => {
  it('a message in a two-person room notifies with a sound', async () => {
    const dm = await room(alice, [dave]);
    await send(alice, dm, text('psst'));
    const n = (await notifications(dave)).body.notifications as { actions: unknown[]; room_id: string }[];
    expect(n[0]?.room_id).toBe(dm);
    expect(n[0]?.actions).toEqual(['notify', { set_tweak: 'sound', value: 'default' }]);
  });

  it('an invite notifies the invited local user', async () => {
    const roomId = await room(alice, []);
    const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: carol.userId } });
    expect(res.status).toBe(200);
    expect((await counts(carol, roomId)).notification_count).toBe(1);
  });
});

describe('threads', () => {
  it('counts per thread; threaded receipts clear their own thread only; unthreaded ones clear all', async () => {
    const roomId = await room(alice, [bob, carol]);
    const root = await send(alice, roomId, text('root'));
    const r1 = await send(alice, roomId, text('reply 1', { 'm.relates_to': { rel_type: 'm.thread', event_id: root } }));
    const r2 = await send(alice, roomId, text('reply 2', { 'm.relates_to': { rel_type: 'm.thread', event_id: root }, 'm.mentions': { user_ids: [bob.userId] } }));
    // A reaction to a thread reply belongs to the thread (but does not notify).
    await send(alice, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: r1, key: 'x' } }, 'm.reaction');
    const main2 = await send(alice, roomId, text('main again'));
    expect(await counts(bob, roomId)).toEqual({
      notification_count: 4,
      highlight_count: 1,
      main: { notification_count: 2, highlight_count: 0 },
      threads: { [root]: { notification_count: 2, highlight_count: 1 } },
    });

    expect((await receipt(bob, roomId, 'm.read', r1, { thread_id: root })).status).toBe(200);
    expect((await counts(bob, roomId)).threads[root]).toEqual({ notification_count: 1, highlight_count: 1 });
    expect((await counts(bob, roomId)).main.notification_count).toBe(2);

    expect((await receipt(bob, roomId, 'm.read', main2, { thread_id: 'main' })).status).toBe(200);
    const afterMain = await counts(bob, roomId);
    expect(afterMain.main.notification_count).toBe(0);
    expect(afterMain.threads[root]?.notification_count).toBe(1);
    expect(afterMain.notification_count).toBe(1);

    // Carol's unthreaded receipt on the last event covers the thread too.
    await receipt(carol, roomId, 'm.read', main2);
    expect((await counts(carol, roomId)).notification_count).toBe(0);
    expect(r2).toBeTruthy();
  });
});

describe('GET /notifications', () => {
  let roomId: string;
  const ids: string[] = [];
  beforeAll(async () => {
    roomId = await room(bob, [alice, carol]);
    ids.push(await send(bob, roomId, text('first')));
    ids.push(await send(bob, roomId, text('second, @alice', { 'm.mentions': { user_ids: [alice.userId] } })));
    ids.push(await send(bob, roomId, text('third')));
  });

  it('lists notifications newest first, with actions, read, room_id, ts and the event without room_id', async () => {
    const res = await notifications(alice);
    expect(res.status).toBe(200);
    const list = res.body.notifications as { actions: unknown[]; event: Record<string, unknown>; read: boolean; room_id: string; ts: number }[];
    const mine = list.filter((n) => n.room_id === roomId);
    expect(mine.map((n) => n.event['event_id'])).toEqual([ids[2], ids[1], ids[0]]);
    expect(mine[1]?.actions).toEqual(['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }]);
    expect(mine[0]).toMatchObject({ read: false, actions: ['notify'] });
    expect(mine[0]?.event).toMatchObject({ type: 'm.room.message', sender: bob.userId, content: { msgtype: 'm.text', body: 'third' } });
    expect(mine[0]?.event['room_id']).toBeUndefined();
    expect(Math.abs((mine[0]?.ts as number) - Date.now())).toBeLessThan(60_000);
    // Bob sent them: none of them notify him.
    const bobs = (await notifications(bob)).body.notifications as { room_id: string }[];
    expect(bobs.filter((n) => n.room_id === roomId)).toEqual([]);
  });

  it('only=highlight keeps the highlights', async () => {
    const list = (await notifications(alice, '?only=highlight')).body.notifications as { event: { event_id: string } }[];
    expect(list.map((n) => n.event.event_id)).toContain(ids[1]);
    expect(list.map((n) => n.event.event_id)).not.toContain(ids[0]);
    expect(list.map((n) => n.event.event_id)).not.toContain(ids[2]);
  });

  it('read reflects the receipts', async () => {
    await receipt(alice, roomId, 'm.read.private', ids[1] as string);
    const list = (await notifications(alice)).body.notifications as { event: { event_id: string }; read: boolean }[];
    const readOf = (id: string) => list.find((n) => n.event.event_id === id)?.read;
    expect(readOf(ids[0] as string)).toBe(true);
    expect(readOf(ids[1] as string)).toBe(true);
    expect(readOf(ids[2] as string)).toBe(false);
  });

  it('pages with limit, from and next_token', async () => {
    const first = await notifications(carol, '?limit=2');
    const page1 = first.body.notifications as { event: { event_id: string } }[];
    expect(page1.map((n) => n.event.event_id)).toEqual([ids[2], ids[1]]);
    expect(typeof first.body.next_token).toBe('string');
    const second = await notifications(carol, `?limit=2&from=${enc(first.body.next_token as string)}`);
    const page2 = second.body.notifications as { event: { event_id: string } }[];
    expect(page2[0]?.event.event_id).toBe(ids[0]);
    expect(page2.length).toBeLessThanOrEqual(2);
    let token = second.body.next_token as string | undefined;
    let guard = 0;
    while (token !== undefined && guard++ < 20) token = (await notifications(carol, `?limit=2&from=${enc(token)}`)).body.next_token as string | undefined;
    expect(token).toBeUndefined();
    expect((await notifications(carol, '?limit=0')).body.notifications).toEqual([]);
  });

  it('refuses bad tokens and limits; needs an access token', async () => {
    const bad = await notifications(carol, '?from=abc');
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const badLimit = await notifications(carol, '?limit=-1');
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.errcode).toBe('M_INVALID_PARAM');
    const anon = await api(t, 'GET', '/_matrix/client/v3/notifications');
    expect(anon.status).toBe(401);
  });
});

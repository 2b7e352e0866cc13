/**
 * Event relationships: indexing as events are sent (and the checks on
 * them), GET /v1/rooms/{roomId}/relations/…, bundled aggregations
 * (m.thread, m.replace, m.reference) wherever events are served, and
 * GET /v1/rooms/{roomId}/threads.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { roomHelpers, useServerWithUsers } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const { t, alice, bob, carol } = useServerWithUsers('alice', 'bob', 'carol');

const enc = encodeURIComponent;

interface Ev {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  unsigned: Record<string, unknown>;
}
type Relations = Record<string, unknown>;

const { createRoom, join, send, sendRaw } = roomHelpers(() => t);

const text = (body: string, relatesTo?: object) => ({ msgtype: 'm.text', body, ...(relatesTo ? { 'm.relates_to': relatesTo } : {}) });
const thread = (root: string) => ({ rel_type: 'm.thread', event_id: root });
const relationsOf = (e: { unsigned: Record<string, unknown> }) => e.unsigned['m.relations'] as Relations | undefined;

async function relations(token: string, roomId: string, eventId: string, suffix = '', query = '') {
  return api(t, 'GET', `/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(eventId)}${suffix}${query}`, { token });
}

async function publicRoomWithBob(): Promise<string> {
  const roomId = await createRoom(alice.accessToken, { preset: 'public_chat' });
  await join(bob, roomId);
  return roomId;
}

describe('/relations', () => {
  let roomId: string;
  let root: string;
  let reaction: string;
  let replies: string[];
  let edit: string;
  beforeAll(async () => {
    roomId = await publicRoomWithBob();
    root = await send(alice.accessToken, roomId, text('root'));
    reaction = await send(bob.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👍' } }, 'm.reaction');
    replies = [];
    for (let i = 0; i < 5; i++) replies.push(await send(i % 2 ? alice.accessToken : bob.accessToken, roomId, text(`reply ${i}`, thread(root))));
    edit = await send(alice.accessToken, roomId, { ...text('* root edited'), 'm.new_content': text('root edited'), 'm.relates_to': { rel_type: 'm.replace', event_id: root } });
  });

  it('lists every child, most recent first, with rel type and event type filters', async () => {
    const all = await relations(alice.accessToken, roomId, root, '', '?limit=50');
    expect(all.status).toBe(200);
    expect((all.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([edit, ...[...replies].reverse(), reaction]);
    expect(all.body.next_batch).toBeUndefined();
    expect(all.body.prev_batch).toBeUndefined();
    expect(all.body).not.toHaveProperty('recursion_depth');
    const threads = await relations(alice.accessToken, roomId, root, '/m.thread', '?limit=50');
    expect((threads.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([...replies].reverse());
    const reactions = await relations(alice.accessToken, roomId, root, '/m.annotation/m.reaction');
    expect((reactions.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([reaction]);
    const noneOfType = await relations(alice.accessToken, roomId, root, '/m.annotation/m.room.message');
    expect(noneOfType.body.chunk).toEqual([]);
  });

  it('pages with next_batch/prev_batch, backwards by default and forwards with dir=f', async () => {
    const p1 = await relations(alice.accessToken, roomId, root, '/m.thread', '?limit=2');
    expect((p1.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([replies[4], replies[3]]);
    expect(typeof p1.body.next_batch).toBe('string');
    const p2 = await relations(alice.accessToken, roomId, root, '/m.thread', `?limit=2&from=${enc(p1.body.next_batch as string)}`);
    expect((p2.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([replies[2], replies[1]]);
    expect(p2.body.prev_batch).toBe(p1.body.next_batch);
    const p3 = await relations(alice.accessToken, roomId, root, '/m.thread', `?limit=2&from=${enc(p2.body.next_batch as string)}`);
    expect((p3.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([replies[0]]);
    expect(p3.body.next_batch).toBeUndefined();
    // `to` stops the page; forwards walks oldest first.
    const bounded = await relations(alice.accessToken, roomId, root, '/m.thread', `?limit=10&to=${enc(p1.body.next_batch as string)}`);
    expect((bounded.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([replies[4], replies[3]]);
    const f1 = await relations(alice.accessToken, roomId, root, '/m.thread', '?limit=3&dir=f');
    expect((f1.body.chunk as Ev[]).map((e) => e.event_id)).toEqual(replies.slice(0, 3));
    const f2 = await relations(alice.accessToken, roomId, root, '/m.thread', `?limit=3&dir=f&from=${enc(f1.body.next_batch as string)}`);
    expect((f2.body.chunk as Ev[]).map((e) => e.event_id)).toEqual(replies.slice(3));
  });

  it('recurse follows relations of relations and reports the depth', async () => {
    const reactionToReply = await send(alice.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: replies[0], key: '🎉' } }, 'm.reaction');
    const flat = await relations(alice.accessToken, roomId, root, '/m.annotation', '?limit=50');
    expect((flat.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([reaction]);
    const deep = await relations(alice.accessToken, roomId, root, '/m.annotation', '?limit=50&recurse=true');
    expect((deep.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([reactionToReply, reaction]);
    expect(deep.body.recursion_depth).toBe(3);
    expect((await relations(alice.accessToken, roomId, root, '', '?recurse=false')).body.recursion_depth).toBe(1);
  });

  it('errors: unknown or invisible parent → 404, non-member → 403, bad params → 400', async () => {
    const missing = await relations(alice.accessToken, roomId, '$nope:test.local');
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    const outsider = await relations(carol.accessToken, roomId, root);
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
    // Bob joined a `joined` room after the parent was sent: it is not his to read.
    const closed = await createRoom(alice.accessToken, {
      preset: 'public_chat',
      initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'joined' } }],
    });
    const early = await send(alice.accessToken, closed, text('early'));
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(closed)}/join`, { token: bob.accessToken, body: {} });
    const hidden = await relations(bob.accessToken, closed, early);
    expect(hidden.status).toBe(404);
    expect(hidden.body.errcode).toBe('M_NOT_FOUND');
    for (const q of ['?dir=x', '?limit=-1', '?recurse=maybe', '?from=junk']) {
      const res = await relations(alice.accessToken, roomId, root, '', q);
      expect(res.status, q).toBe(400);
      expect(res.body.errcode, q).toBe('M_INVALID_PARAM');
    }
  });
});

describe('checks on sent relations', () => {
  it('refuses duplicate annotations, unknown and cross-room parents, and threads off related events', async () => {
    const roomId = await publicRoomWithBob();
    const root = await send(alice.accessToken, roomId, text('root'));
    const like = { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '❤️' } };
    await send(bob.accessToken, roomId, like, 'm.reaction');
    const dup = await sendRaw(bob.accessToken, roomId, like, 'm.reaction');
    expect(dup.status).toBe(400);
    expect(dup.body.errcode).toBe('M_DUPLICATE_ANNOTATION');
    // Another user, or another key, is fine.
    await send(alice.accessToken, roomId, like, 'm.reaction');
    await send(bob.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👀' } }, 'm.reaction');
    const noKey = await sendRaw(bob.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root } }, 'm.reaction');
    expect(noKey.status).toBe(400);
    expect(noKey.body.error).toMatch(/aggregation key/i);

    const unknown = await sendRaw(alice.accessToken, roomId, text('x', thread('$unknown:test.local')));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatch(/unknown event/);
    const other = await createRoom(alice.accessToken, {});
    const elsewhere = await send(alice.accessToken, other, text('elsewhere'));
    const cross = await sendRaw(alice.accessToken, roomId, text('x', thread(elsewhere)));
    expect(cross.status).toBe(400);
    expect(cross.body.error).toMatch(/same room/);

    const reply = await send(alice.accessToken, roomId, text('in thread', thread(root)));
    const nested = await sendRaw(alice.accessToken, roomId, text('thread off a reply', thread(reply)));
    expect(nested.status).toBe(400);
    expect(nested.body.error).toMatch(/Cannot start threads/);
    // Nothing of the refused events was stored.
    const db = t.server.ctx.database.db;
    const rows = await db.selectFrom('event_relations').select('event_id').where('room_id', '=', roomId).execute();
    expect(rows).toHaveLength(4);
  });

  it('replies (m.in_reply_to) are stored and served as sent, without being indexed', async () => {
    const roomId = await publicRoomWithBob();
    const root = await send(alice.accessToken, roomId, text('question'));
    const reply = await send(bob.accessToken, roomId, { ...text('answer'), 'm.relates_to': { 'm.in_reply_to': { event_id: root } } });
    const ev = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(reply)}`, { token: alice.accessToken });
    expect(ev.body.content).toEqual({ msgtype: 'm.text', body: 'answer', 'm.relates_to': { 'm.in_reply_to': { event_id: root } } });
    expect((await relations(alice.accessToken, roomId, root)).body.chunk).toEqual([]);
  });
});

describe('bundled aggregations', () => {
  it('m.thread: latest event (with its own edit), count, and whether the reader took part', async () => {
    const roomId = await publicRoomWithBob();
    const root = await send(alice.accessToken, roomId, text('root'));
    await send(bob.accessToken, roomId, text('first', thread(root)));
    const last = await send(bob.accessToken, roomId, text('second', thread(root)));
    const lastEdit = await send(bob.accessToken, roomId, { ...text('* second!'), 'm.new_content': text('second!'), 'm.relates_to': { rel_type: 'm.replace', event_id: last } });

    const forAlice = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(root)}`, { token: alice.accessToken });
    const th = relationsOf(forAlice.body as unknown as Ev)!['m.thread'] as Record<string, unknown>;
    expect(th['count']).toBe(2);
    expect(th['current_user_participated']).toBe(true); // alice sent the root
    const latest = th['latest_event'] as Ev;
    expect(latest).toMatchObject({ event_id: last, sender: bob.userId, content: { body: 'second' } });
    expect((relationsOf(latest)!['m.replace'] as Ev).event_id).toBe(lastEdit);

    // Carol joins: she has not taken part; once she replies, she has.
    await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: carol.accessToken, body: {} });
    const forCarol = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(root)}`, { token: carol.accessToken });
    expect((relationsOf(forCarol.body as unknown as Ev)!['m.thread'] as Record<string, unknown>)['current_user_participated']).toBe(false);
    const carolReply = await send(carol.accessToken, roomId, text('me too', thread(root)));
    const page = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=20`, { token: carol.accessToken });
    const rootInPage = (page.body.chunk as Ev[]).find((e) => e.event_id === root)!;
    const th2 = relationsOf(rootInPage)!['m.thread'] as Record<string, unknown>;
    expect(th2['current_user_participated']).toBe(true);
    expect(th2['count']).toBe(3);
    expect((th2['latest_event'] as Ev).event_id).toBe(carolReply);
    // Thread replies themselves carry no thread summary.
    const replyInPage = (page.body.chunk as Ev[]).find((e) => e.event_id === carolReply)!;
    expect(relationsOf(replyInPage)).toBeUndefined();
  });

  it('m.replace: the latest edit by the original sender, as a whole event; the content stays the original', async () => {
    const roomId = await publicRoomWithBob();
    const original = await send(alice.accessToken, roomId, text('helo'));
    const edit = (body: string) => ({ ...text(`* ${body}`), 'm.new_content': text(body), 'm.relates_to': { rel_type: 'm.replace', event_id: original } });
    await send(alice.accessToken, roomId, edit('hello'));
    const latest = await send(alice.accessToken, roomId, edit('hello!'));
    // An edit by someone else does not apply.
    await send(bob.accessToken, roomId, edit('hijacked'));
    const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(original)}`, { token: bob.accessToken });
    expect(res.body.content).toEqual(text('helo'));
    const replace = relationsOf(res.body as unknown as Ev)!['m.replace'] as Ev;
    expect(replace.event_id).toBe(latest);
    expect(replace.sender).toBe(alice.userId);
    expect(replace.content['m.new_content']).toEqual(text('hello!'));
    // Edits themselves get no aggregations.
    const editEv = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(latest)}`, { token: bob.accessToken });
    expect(relationsOf(editEv.body as unknown as Ev)).toBeUndefined();
    // A redacted original carries no edit.
    await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(original)}/red1`, { token: alice.accessToken, body: {} });
    const redacted = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(original)}`, { token: bob.accessToken });
    expect(relationsOf(redacted.body as unknown as Ev)).toBeUndefined();
    // and /relations leaves its edits out
    expect((await relations(bob.accessToken, roomId, original, '/m.replace')).body.chunk).toEqual([]);
  });

  it('m.reference: the chunk of referencing event ids, also in /context', async () => {
    const roomId = await publicRoomWithBob();
    const target = await send(alice.accessToken, roomId, text('poll'));
    const r1 = await send(bob.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.reference', event_id: target } }, 'org.example.vote');
    const r2 = await send(alice.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.reference', event_id: target } }, 'org.example.vote');
    const ctx = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/context/${enc(target)}`, { token: bob.accessToken });
    expect(relationsOf(ctx.body.event as Ev)!['m.reference']).toEqual({ chunk: [{ event_id: r1 }, { event_id: r2 }] });
  });
});

describe('/threads', () => {
  let roomId: string;
  let roots: string[];
  beforeAll(async () => {
    roomId = await publicRoomWithBob();
    roots = [];
    for (let i = 0; i < 4; i++) roots.push(await send(i === 3 ? bob.accessToken : alice.accessToken, roomId, text(`root ${i}`)));
    await send(alice.accessToken, roomId, text('no thread'));
    // Replies in order: root 0, root 1 (by bob), root 2, root 3 (bob's root, replied to by bob), then root 0 again.
    await send(alice.accessToken, roomId, text('r', thread(roots[0]!)));
    await send(bob.accessToken, roomId, text('r', thread(roots[1]!)));
    await send(alice.accessToken, roomId, text('r', thread(roots[2]!)));
    await send(bob.accessToken, roomId, text('r', thread(roots[3]!)));
    await send(alice.accessToken, roomId, text('r again', thread(roots[0]!)));
  });

  const threads = (token: string, query = '') => api(t, 'GET', `/_matrix/client/v1/rooms/${enc(roomId)}/threads${query}`, { token });

  it('lists thread roots by latest reply, with their aggregations', async () => {
    const res = await threads(alice.accessToken, '?limit=10');
    expect(res.status).toBe(200);
    const chunk = res.body.chunk as Ev[];
    expect(chunk.map((e) => e.event_id)).toEqual([roots[0], roots[3], roots[2], roots[1]]);
    expect((relationsOf(chunk[0]!)!['m.thread'] as Record<string, unknown>)['count']).toBe(2);
    expect(res.body.next_batch).toBeUndefined();
  });

  it('pages with next_batch', async () => {
    const p1 = await threads(alice.accessToken, '?limit=3');
    expect((p1.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([roots[0], roots[3], roots[2]]);
    const p2 = await threads(alice.accessToken, `?limit=3&from=${enc(p1.body.next_batch as string)}`);
    expect((p2.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([roots[1]]);
    expect(p2.body.next_batch).toBeUndefined();
  });

  it('include=participated: threads the user started or replied in', async () => {
    const forBob = await threads(bob.accessToken, '?include=participated');
    expect((forBob.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([roots[3], roots[1]]);
    const forAlice = await threads(alice.accessToken, '?include=participated&limit=10');
    expect((forAlice.body.chunk as Ev[]).map((e) => e.event_id)).toEqual([roots[0], roots[2], roots[1]]);
  });

  it('errors: bad include, limit or token → 400 M_INVALID_PARAM; non-member → 403', async () => {
    for (const q of ['?include=mine', '?limit=0', '?limit=x', '?from=s1_2_3']) {
      const res = await threads(alice.accessToken, q);
      expect(res.status, q).toBe(400);
      expect(res.body.errcode, q).toBe('M_INVALID_PARAM');
    }
    const outsider = await threads(carol.accessToken);
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');
  });
});

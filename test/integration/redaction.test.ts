/**
 * PUT /rooms/{roomId}/redact/{eventId}/{txnId}: who may redact what, the
 * redacted form served with `unsigned.redacted_because` everywhere events
 * are read, idempotent transaction ids, and the errors.
 */
import { describe, expect, it } from 'vitest';
import { getEvent } from '../../src/storage/events.js';
import { roomHelpers, useServerWithUsers } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const { t, alice, bob, carol } = useServerWithUsers('alice', 'bob', 'carol');

const enc = encodeURIComponent;

interface Ev {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  redacts?: string;
  unsigned: Record<string, unknown>;
}

const { createRoom, join, redact, send } = roomHelpers(() => t);

async function publicRoomWithBob(version?: string): Promise<string> {
  const roomId = await createRoom(alice.accessToken, { preset: 'public_chat', ...(version ? { room_version: version } : {}) });
  await join(bob, roomId);
  return roomId;
}

describe('redacting', () => {
  it.each(['10', '11'])('room v%s: the sender redacts their own message; it is served stripped with redacted_because', async (v) => {
    const roomId = await publicRoomWithBob(v);
    const target = await send(bob.accessToken, roomId, { msgtype: 'm.text', body: 'oops', 'm.mentions': {} });
    const res = await redact(bob.accessToken, roomId, target, 'x1', { reason: 'typo' });
    expect(res.status).toBe(200);
    const redactionId = res.body.event_id as string;
    expect(redactionId).toMatch(/^\$/);

    // Stored: the redacted form, and the redaction as a real event of the room.
    const db = t.server.ctx.database.db;
    const stored = await getEvent(db, target);
    expect(stored?.redacted_by).toBe(redactionId);
    expect(stored?.json['content']).toEqual({});
    const redaction = await getEvent(db, redactionId);
    expect(redaction?.type).toBe('m.room.redaction');
    if (v === '11') expect(redaction?.json['content']).toEqual({ reason: 'typo', redacts: target });
    else expect(redaction?.json['redacts']).toBe(target);

    const check = (e: Ev) => {
      expect(e.event_id).toBe(target);
      expect(e.content).toEqual({});
      const because = e.unsigned['redacted_because'] as Ev;
      expect(because).toMatchObject({ event_id: redactionId, type: 'm.room.redaction', sender: bob.userId, redacts: target });
      expect(because.content['reason']).toBe('typo');
    };
    const one = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(target)}`, { token: alice.accessToken });
    expect(one.status).toBe(200);
    check(one.body as unknown as Ev);
    const page = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=5`, { token: alice.accessToken });
    const chunk = page.body.chunk as Ev[];
    expect(chunk[0]).toMatchObject({ event_id: redactionId, redacts: target });
    check(chunk.find((e) => e.event_id === target)!);
    const ctx = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/context/${enc(target)}`, { token: bob.accessToken });
    check(ctx.body.event as Ev);
  });

  it('is idempotent per transaction id, and its txn ids do not meet /send txn ids', async () => {
    const roomId = await publicRoomWithBob();
    const a = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'one' });
    const b = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'two' });
    const first = await redact(alice.accessToken, roomId, a, 'same');
    const again = await redact(alice.accessToken, roomId, a, 'same');
    expect(first.status).toBe(200);
    expect(again.body.event_id).toBe(first.body.event_id);
    const db = t.server.ctx.database.db;
    const count = await db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('room_id', '=', roomId)
      .where('type', '=', 'm.room.redaction')
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
    // The same txn id for another target is another request.
    const other = await redact(alice.accessToken, roomId, b, 'same');
    expect(other.status).toBe(200);
    expect(other.body.event_id).not.toBe(first.body.event_id);
    expect((await getEvent(db, b))?.redacted_by).toBe(other.body.event_id);
    // A /send with the same txn id is not answered with the redaction.
    const sent = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/same`, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'three' } });
    expect(sent.status).toBe(200);
    expect(sent.body.event_id).not.toBe(first.body.event_id);
    expect((await getEvent(db, sent.body.event_id as string))?.type).toBe('m.room.message');
  });

  it('a moderator (redact level) redacts anyone; others only their own (403)', async () => {
    const roomId = await publicRoomWithBob();
    const fromAlice = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'by alice' });
    const fromBob = await send(bob.accessToken, roomId, { msgtype: 'm.text', body: 'by bob' });
    const denied = await redact(bob.accessToken, roomId, fromAlice, 'd1');
    expect(denied.status).toBe(403);
    expect(denied.body.errcode).toBe('M_FORBIDDEN');
    const db = t.server.ctx.database.db;
    expect((await getEvent(db, fromAlice))?.redacted_by).toBeNull();
    const allowed = await redact(alice.accessToken, roomId, fromBob, 'd2', { reason: 'moderation' });
    expect(allowed.status).toBe(200);
    expect((await getEvent(db, fromBob))?.redacted_by).toBe(allowed.body.event_id);
  });

  it('in v11, a raw m.room.redaction via /send obeys the same rules', async () => {
    const roomId = await publicRoomWithBob('11');
    const fromAlice = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'keep me' });
    const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.redaction/raw1`, { token: bob.accessToken, body: { redacts: fromAlice } });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/permission to redact/);
    expect((await getEvent(t.server.ctx.database.db, fromAlice))?.redacted_by).toBeNull();
  });

  it('a redacted state event keeps the keys its version keeps', async () => {
    const roomId = await publicRoomWithBob('10');
    const topic = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.topic`, { token: alice.accessToken, body: { topic: 'secret topic' } });
    const topicEvent = await getEvent(t.server.ctx.database.db, topic.body.event_id as string);
    expect((await redact(alice.accessToken, roomId, topicEvent!.event_id, 's1')).status).toBe(200);
    const res = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(topicEvent!.event_id)}`, { token: bob.accessToken });
    expect(res.body.content).toEqual({});
    expect(res.body.type).toBe('m.room.topic');
    const members = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/members`, { token: bob.accessToken });
    const bobJoin = (members.body.chunk as (Ev & { state_key: string })[]).find((e) => e.state_key === bob.userId)!;
    expect((await redact(alice.accessToken, roomId, bobJoin.event_id, 's2')).status).toBe(200);
    const redactedJoin = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(bobJoin.event_id)}`, { token: bob.accessToken });
    expect(redactedJoin.body.content).toEqual({ membership: 'join' });
    expect((redactedJoin.body.unsigned as Record<string, unknown>)['redacted_because']).toMatchObject({ sender: alice.userId });
  });

  it('errors: unknown target → 404 (or allowed for a moderator), create event → 403, other room → 400, non-member → 403, bad body → 400', async () => {
    const roomId = await publicRoomWithBob();
    const unknown = await redact(bob.accessToken, roomId, '$unknown:test.local', 'e1');
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    expect((await redact(alice.accessToken, roomId, '$unknown:test.local', 'e2')).status).toBe(200);

    const state = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state`, { token: alice.accessToken });
    const create = (state.body as unknown as Ev[]).find((e) => e.type === 'm.room.create')!;
    const createRes = await redact(alice.accessToken, roomId, create.event_id, 'e3');
    expect(createRes.status).toBe(403);
    expect(createRes.body.errcode).toBe('M_FORBIDDEN');

    const otherRoom = await createRoom(alice.accessToken, {});
    const elsewhere = await send(alice.accessToken, otherRoom, { msgtype: 'm.text', body: 'elsewhere' });
    const cross = await redact(alice.accessToken, roomId, elsewhere, 'e4');
    expect(cross.status).toBe(400);
    expect((await getEvent(t.server.ctx.database.db, elsewhere))?.redacted_by).toBeNull();

    const msg = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'hi' });
    const outsider = await redact(carol.accessToken, roomId, msg, 'e5');
    expect(outsider.status).toBe(403);
    expect(outsider.body.errcode).toBe('M_FORBIDDEN');

    const badReason = await redact(alice.accessToken, roomId, msg, 'e6', { reason: 42 });
    expect(badReason.status).toBe(400);
    expect(badReason.body.errcode).toBe('M_BAD_JSON');
    // As Synapse: a body that is JSON but not an object is M_BAD_JSON.
    const notObject = await redact(alice.accessToken, roomId, msg, 'e7', [1, 2]);
    expect(notObject.status).toBe(400);
    expect(notObject.body.errcode).toBe('M_BAD_JSON');
    const unknownRoom = await redact(alice.accessToken, '!nowhere:test.local', msg, 'e8');
    expect(unknownRoom.status).toBe(404);
    expect(unknownRoom.body.errcode).toBe('M_NOT_FOUND');
    const noAuth = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(msg)}/e9`, { body: {} });
    expect(noAuth.status).toBe(401);
  });

  it('redacting a reaction removes it from the relations; redacting a thread reply updates the thread', async () => {
    const roomId = await publicRoomWithBob();
    const root = await send(alice.accessToken, roomId, { msgtype: 'm.text', body: 'root' });
    const reaction = await send(bob.accessToken, roomId, { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👍' } }, 'm.reaction');
    const reply1 = await send(bob.accessToken, roomId, { msgtype: 'm.text', body: 'r1', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const reply2 = await send(bob.accessToken, roomId, { msgtype: 'm.text', body: 'r2', 'm.relates_to': { rel_type: 'm.thread', event_id: root } });
    const rel = () => api(t, 'GET', `/_matrix/client/v1/rooms/${enc(roomId)}/relations/${enc(root)}`, { token: alice.accessToken });
    expect(((await rel()).body.chunk as Ev[]).map((e) => e.event_id)).toEqual([reply2, reply1, reaction]);
    expect((await redact(bob.accessToken, roomId, reaction, 'rr1')).status).toBe(200);
    expect((await redact(bob.accessToken, roomId, reply2, 'rr2')).status).toBe(200);
    expect(((await rel()).body.chunk as Ev[]).map((e) => e.event_id)).toEqual([reply1]);
    const ev = await api(t, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(root)}`, { token: alice.accessToken });
    const thread = ((ev.body.unsigned as Record<string, unknown>)['m.relations'] as Record<string, Record<string, unknown>>)['m.thread']!;
    expect(thread['count']).toBe(1);
    expect((thread['latest_event'] as Ev).event_id).toBe(reply1);
    // The same duplicate reaction is allowed again once the first is redacted.
    expect(
      (
        await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.reaction/again`, {
          token: bob.accessToken,
          body: { 'm.relates_to': { rel_type: 'm.annotation', event_id: root, key: '👍' } },
        })
      ).status,
    ).toBe(200);
  });
});

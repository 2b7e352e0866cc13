/**
 * Transaction ids are scoped to the device and the endpoint path (the
 * spec's "Transaction identifiers"): PUT /send/{eventType}/{txnId} and PUT
 * /redact/{eventId}/{txnId} answer a retransmission with the first event,
 * and send a new one when the room, the event type, the redacted event,
 * the endpoint or the device differs. Also migration 0012, which moved the
 * ids stored before it into their scopes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as m0012 from '../../migrations/0012_txn_scope.js';
import { roomHelpers, useServerWithUsers, signIn, text } from '../helpers/rooms.js';
import { api, type TestUser } from '../helpers/users.js';

const env = useServerWithUsers('alice', 'bob');

const enc = encodeURIComponent;
const { createRoom, join, messages, redact, send, sendRaw } = roomHelpers(() => env.t);

async function eventIds(roomId: string): Promise<string[]> {
  const page = await messages(env.alice, roomId, { dir: 'b', limit: 100 });
  expect(page.status).toBe(200);
  return page.body.chunk.map((e) => e.event_id);
}

describe('PUT /send/{eventType}/{txnId}', () => {
  it('answers a retransmission (r0 or v3) with the first event, storing one', async () => {
    const roomId = await createRoom(env.alice, { preset: 'public_chat' });
    const first = await send(env.alice, roomId, text('once'), 'm.room.message', 'same');
    expect(await send(env.alice, roomId, text('once'), 'm.room.message', 'same')).toBe(first);
    const r0 = await api(env.t, 'PUT', `/_matrix/client/r0/rooms/${enc(roomId)}/send/m.room.message/same`, { token: env.alice.accessToken, body: text('once') });
    expect(r0.body.event_id).toBe(first);
    // Even with another body: the id decides.
    expect(await send(env.alice, roomId, text('changed'), 'm.room.message', 'same')).toBe(first);
    expect((await eventIds(roomId)).filter((id) => id === first)).toHaveLength(1);
    const page = await messages(env.alice, roomId, { dir: 'b', limit: 1 });
    expect(page.body.chunk.map((e) => e.content['body'])).toEqual(['once']);
  });

  it('sends a new event for the same txn id in another room, with another event type, or from another device or user', async () => {
    const room1 = await createRoom(env.alice, { preset: 'public_chat' });
    const room2 = await createRoom(env.alice, { preset: 'public_chat' });
    await join(env.bob, room1);
    const original = await send(env.alice, room1, text('one'), 'm.room.message', 'shared-txn');
    const elsewhere = await send(env.alice, room2, text('two'), 'm.room.message', 'shared-txn');
    const otherType = await send(env.alice, room1, { custom: true }, 'org.example.custom', 'shared-txn');
    const otherDevice = await send(await signIn(env.t, env.alice), room1, text('three'), 'm.room.message', 'shared-txn');
    const otherUser = await send(env.bob, room1, text('four'), 'm.room.message', 'shared-txn');
    const all = [original, elsewhere, otherType, otherDevice, otherUser];
    expect(new Set(all).size).toBe(all.length);
    // Each stays idempotent in its own scope.
    expect(await send(env.alice, room2, text('two'), 'm.room.message', 'shared-txn')).toBe(elsewhere);
    expect(await send(env.alice, room1, { custom: true }, 'org.example.custom', 'shared-txn')).toBe(otherType);
    expect(await send(env.alice, room1, text('one'), 'm.room.message', 'shared-txn')).toBe(original);
    const ids = await eventIds(room1);
    for (const id of [original, otherType, otherDevice, otherUser]) expect(ids).toContain(id);
    expect(await eventIds(room2)).toContain(elsewhere);
  });

  it('a failed send records nothing: the same txn id sends once the request is valid', async () => {
    const roomId = await createRoom(env.alice, { preset: 'private_chat' });
    const refused = await sendRaw(env.bob, roomId, text('not a member'), 'm.room.message', 'retry-me');
    expect(refused.status).toBe(403);
    expect(refused.body.errcode).toBe('M_FORBIDDEN');
    const ok = await sendRaw(env.alice, roomId, text('member'), 'm.room.message', 'retry-me');
    expect(ok.status).toBe(200);
  });
});

describe('PUT /redact/{eventId}/{txnId}', () => {
  it('is idempotent per redacted event, and apart from /send', async () => {
    const roomId = await createRoom(env.alice, { preset: 'public_chat' });
    const a = await send(env.alice, roomId, text('a'));
    const b = await send(env.alice, roomId, text('b'));
    const sentWithTxn = await send(env.alice, roomId, text('c'), 'm.room.message', 'red-txn');
    const r1 = await redact(env.alice, roomId, a, 'red-txn');
    expect(r1.status).toBe(200);
    expect(r1.body.event_id).not.toBe(sentWithTxn);
    // The same request again: the same redaction.
    expect((await redact(env.alice, roomId, a, 'red-txn')).body.event_id).toBe(r1.body.event_id);
    // Another target with the same txn id: a new redaction.
    const r2 = await redact(env.alice, roomId, b, 'red-txn');
    expect(r2.status).toBe(200);
    expect(r2.body.event_id).not.toBe(r1.body.event_id);
    const redactions = (await messages(env.alice, roomId, { dir: 'b', limit: 100, filter: JSON.stringify({ types: ['m.room.redaction'] }) })).body.chunk;
    expect(redactions.map((e) => e.redacts).sort()).toEqual([a, b].sort());
  });
});

describe('migration 0012', () => {
  it('moves the ids stored before it into their scopes (and back down)', async () => {
    const db = env.t.server.ctx.database.db;
    const roomId = await createRoom(env.alice, { preset: 'public_chat' });
    const message = await send(env.alice, roomId, text('m'), 'm.room.message', 'legacy-1');
    const custom = await send(env.alice, roomId, { x: 1 }, 'org.example.custom', 'legacy-1');
    const target = await send(env.alice, roomId, text('target'));
    const red = await redact(env.alice, roomId, target, 'legacy-1');
    expect(red.status).toBe(200);
    const redaction = red.body.event_id as string;
    const byId = (x: { event_id: string }, y: { event_id: string }) => (x.event_id < y.event_id ? -1 : 1);
    const mine = async () =>
      (await db.selectFrom('event_txn_ids').selectAll().where('user_id', '=', env.alice.userId).where('txn_id', 'like', '%legacy-1').execute())
        .map((r) => ({ event_id: r.event_id, txn_id: r.txn_id, scope: (r as { scope?: string }).scope }))
        .sort(byId);
    const scoped = await mine();
    expect(scoped).toEqual(
      [
        { event_id: message, txn_id: 'legacy-1', scope: `/rooms/${roomId}/send/m.room.message` },
        { event_id: custom, txn_id: 'legacy-1', scope: `/rooms/${roomId}/send/org.example.custom` },
        { event_id: redaction, txn_id: 'legacy-1', scope: `/rooms/${roomId}/redact/${target}` },
      ].sort(byId),
    );

    // Down: the old layout. Per device one row per id is kept, the oldest (the m.room.message, sent first);
    // redactions carry their room and target in the id.
    await m0012.down(db as never);
    const mark = '\u001fredact\u001f';
    expect(await mine()).toEqual(
      [
        { event_id: message, txn_id: 'legacy-1', scope: undefined },
        { event_id: redaction, txn_id: `${mark}${roomId}${mark}${target}${mark}legacy-1`, scope: undefined },
      ].sort(byId),
    );

    // Up again: each row back in its scope, and the endpoints find them.
    await m0012.up(db as never);
    expect(await mine()).toEqual(scoped.filter((r) => r.event_id !== custom));
    expect(await send(env.alice, roomId, text('m'), 'm.room.message', 'legacy-1')).toBe(message);
    expect((await redact(env.alice, roomId, target, 'legacy-1')).body.event_id).toBe(redaction);
  });
});

/**
 * The event pipeline through the rooms API: rooms are created as real,
 * signed PDUs that pass the auth rules; sends are idempotent per device;
 * refusals name the rule; state is kept as bounded delta chains.
 */
import { describe, expect, it } from 'vitest';
import { checkContentHash } from '../../src/core/hashes.js';
import { eventId } from '../../src/core/event-id.js';
import { verifyEventSignature } from '../../src/core/event-signing.js';
import { getEvent } from '../../src/storage/events.js';
import { stateAtGroup } from '../../src/storage/state.js';
import { useServerWithUsers } from '../helpers/rooms.js';
import { api } from '../helpers/users.js';

const { t, alice, bob } = useServerWithUsers('alice', 'bob');

const create = async (body: object, token = alice.accessToken) => api(t, 'POST', '/_matrix/client/v3/createRoom', { token, body });

describe('createRoom', () => {
  it.each(['1', '6', '10', '11', '12'])('room version %s: every event is a signed, hashed PDU with the right id', async (v) => {
    const res = await create({ room_version: v, name: `Room v${v}`, preset: 'public_chat' });
    expect(res.status).toBe(200);
    const roomId = res.body.room_id as string;
    if (v === '12') expect(roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
    else expect(roomId).toMatch(/:test\.local$/);
    const state = await api(t, 'GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state`, { token: alice.accessToken });
    expect(state.status).toBe(200);
    const types = (state.body as unknown as { type: string }[]).map((e) => e.type).sort();
    expect(types).toEqual(['m.room.create', 'm.room.history_visibility', 'm.room.join_rules', 'm.room.member', 'm.room.name', 'm.room.power_levels']);
    const keys = t.server.ctx.keys;
    for (const ev of state.body as unknown as { event_id: string }[]) {
      const stored = await getEvent(t.server.ctx.database.db, ev.event_id);
      expect(stored).toBeDefined();
      const pdu = stored!.json;
      expect(checkContentHash(pdu)).toBe(true);
      expect(verifyEventSignature(pdu, v, 'test.local', keys.current.keyId, keys.current.publicKey)).toBe(true);
      if (Number(v) >= 3) expect(eventId(pdu, v)).toBe(ev.event_id);
    }
  });

  it('refuses an unknown room version with M_UNSUPPORTED_ROOM_VERSION', async () => {
    const res = await create({ room_version: '99' });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
  });

  it('refuses malformed bodies with M_BAD_JSON / M_INVALID_PARAM', async () => {
    expect((await create({ name: 5 })).body.errcode).toBe('M_BAD_JSON');
    expect((await create({ invite: ['not-a-user'] })).body.errcode).toBe('M_INVALID_PARAM');
  });
});

describe('sending and membership', () => {
  it('sends are idempotent per transaction id, and other users need to join first', async () => {
    const roomId = (await create({ preset: 'public_chat' })).body.room_id as string;
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/txn1`;
    const first = await api(t, 'PUT', path, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'hi' } });
    const again = await api(t, 'PUT', path, { token: alice.accessToken, body: { msgtype: 'm.text', body: 'hi' } });
    expect(first.status).toBe(200);
    expect(again.body.event_id).toBe(first.body.event_id);
    const notJoined = await api(t, 'PUT', path.replace('txn1', 'b1'), { token: bob.accessToken, body: { msgtype: 'm.text', body: 'x' } });
    expect(notJoined.status).toBe(403);
    expect(notJoined.body.errcode).toBe('M_FORBIDDEN');
    expect(notJoined.body.error).toMatch(/not in the room|not joined|sender/i);
    const join = await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, { token: bob.accessToken, body: {} });
    expect(join.status).toBe(200);
    const sent = await api(t, 'PUT', path.replace('txn1', 'b1'), { token: bob.accessToken, body: { msgtype: 'm.text', body: 'x' } });
    expect(sent.status).toBe(200);
    const joined = await api(t, 'GET', '/_matrix/client/v3/joined_rooms', { token: bob.accessToken });
    expect(joined.body.joined_rooms).toContain(roomId);
  });

  it('a private room refuses a join without an invite, naming the rule', async () => {
    const roomId = (await create({ preset: 'private_chat' })).body.room_id as string;
    const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, { token: bob.accessToken, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/join rule is invite/);
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } })).status).toBe(200);
    expect((await api(t, 'POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, { token: bob.accessToken, body: {} })).status).toBe(200);
  });

  it('refuses an event over 64 KiB with M_TOO_LARGE', async () => {
    const roomId = (await create({})).body.room_id as string;
    const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/big`, {
      token: alice.accessToken,
      body: { msgtype: 'm.text', body: 'x'.repeat(70_000) },
    });
    expect(res.status).toBe(413);
    expect(res.body.errcode).toBe('M_TOO_LARGE');
  });

  it('keeps state as deltas: a group holds the changed key, and resolves to the whole state', async () => {
    const roomId = (await create({ name: 'first' })).body.room_id as string;
    await api(t, 'PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic`, { token: alice.accessToken, body: { topic: 'a topic' } });
    const db = t.server.ctx.database.db;
    const room = await db.selectFrom('rooms').selectAll().where('room_id', '=', roomId).executeTakeFirstOrThrow();
    const rows = await db.selectFrom('state_groups_state').selectAll().where('state_group', '=', room.current_state_group!).execute();
    expect(rows.map((r) => r.type)).toEqual(['m.room.topic']);
    const full = await stateAtGroup(db, room.current_state_group!);
    expect(full.size).toBe(8); // create, member, power levels, join rules, history, guest access, name, topic
  });
});

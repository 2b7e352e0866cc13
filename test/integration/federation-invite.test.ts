/**
 * Invites across real Axon servers over HTTPS on the loopback: a local
 * user's invite of another server's user is co-signed by that server
 * (/invite v2, v1 for room versions 1 and 2) and shows in the invitee's
 * /sync with the room's stripped state; the invitee joins through the
 * inviting server, or rejects through it, or, when it is gone, with a leave
 * made at home.
 */
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import { signedFederationRequest, startFederationServer, startFederationPair, type FederationPair, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

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
}, 60_000);

afterAll(() => pair?.close());

type SyncBody = {
  next_batch: string;
  rooms?: {
    invite?: Record<string, { invite_state: { events: { type: string; state_key: string; content: Record<string, unknown> }[] } }>;
    join?: Record<string, unknown>;
    leave?: Record<string, unknown>;
  };
};

async function sync(t: FederationServer, user: TestUser, since?: string): Promise<SyncBody> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/sync${since ? `?since=${since}&timeout=0` : ''}`, { token: user.accessToken });
  expect(res.status).toBe(200);
  return res.body as unknown as SyncBody;
}

async function createRoom(t: FederationServer, user: TestUser, body: Record<string, unknown>): Promise<string> {
  const res = await api(t.test, 'POST', '/_matrix/client/v3/createRoom', { token: user.accessToken, body });
  expect(res.status).toBe(200);
  return res.body.room_id as string;
}

async function membership(t: FederationServer, user: TestUser, roomId: string, of: string): Promise<string | undefined> {
  const res = await api(t.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(of)}`, { token: user.accessToken });
  return res.status === 200 ? (res.body.membership as string) : undefined;
}

describe('inviting a user of another server', () => {
  for (const version of ['1', '10', '12']) {
    it(`room version ${version}: the invite shows in bob's sync with the room's stripped state, and bob joins through alice's server`, async () => {
      const before = await sync(b, bob);
      const roomId = await createRoom(a, alice, { preset: 'private_chat', name: `secret v${version}`, room_version: version });
      const inv = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } });
      expect(inv.status, JSON.stringify(inv.body)).toBe(200);
      expect(await membership(a, alice, roomId, bob.userId)).toBe('invite');

      const after = await sync(b, bob, before.next_batch);
      const invite = after.rooms?.invite?.[roomId];
      expect(invite).toBeDefined();
      const types = invite!.invite_state.events.map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.member']));
      expect(invite!.invite_state.events.find((e) => e.type === 'm.room.name')?.content.name).toBe(`secret v${version}`);

      // An invite-only room: the invite is what lets bob in, through the inviting server.
      const join = await api(b.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: bob.accessToken, body: {} });
      expect(join.status, JSON.stringify(join.body)).toBe(200);
      expect(await membership(a, alice, roomId, bob.userId)).toBe('join');
      expect(await membership(b, bob, roomId, bob.userId)).toBe('join');
      const joined = await sync(b, bob, after.next_batch);
      expect(joined.rooms?.join?.[roomId]).toBeDefined();
    });
  }

  it('bob rejects an invite: the leave goes through alice’s server, and both see it', async () => {
    const roomId = await createRoom(a, alice, { preset: 'private_chat' });
    expect((await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: bob.userId } })).status).toBe(200);
    const start = await sync(b, bob);
    expect(start.rooms?.invite?.[roomId]).toBeDefined();
    const leave = await api(b.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { token: bob.accessToken, body: {} });
    expect(leave.status, JSON.stringify(leave.body)).toBe(200);
    expect(await membership(a, alice, roomId, bob.userId)).toBe('leave');
    const next = await sync(b, bob, start.next_batch);
    expect(next.rooms?.leave?.[roomId]).toBeDefined();
    expect(next.rooms?.invite?.[roomId]).toBeUndefined();
  });

  it('an invite from a server that is gone is rejected with a leave made at home', async () => {
    const c = await startFederationServer();
    try {
      const carol = await createUser(c.test, 'carol');
      const roomId = await createRoom(c, carol, { preset: 'private_chat' });
      expect((await api(c.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: carol.accessToken, body: { user_id: bob.userId } })).status).toBe(200);
      const start = await sync(b, bob);
      expect(start.rooms?.invite?.[roomId]).toBeDefined();
      await c.close();
      const leave = await api(b.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { token: bob.accessToken, body: {} });
      expect(leave.status, JSON.stringify(leave.body)).toBe(200);
      const next = await sync(b, bob, start.next_batch);
      expect(next.rooms?.leave?.[roomId]).toBeDefined();
    } finally {
      await c.close();
    }
  });

  it('an invite of a user on a server that cannot be reached fails with 502 and stores nothing', async () => {
    const roomId = await createRoom(a, alice, { preset: 'private_chat' });
    const res = await api(a.test, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { token: alice.accessToken, body: { user_id: '@nobody:localhost:1' } });
    expect(res.status).toBe(502);
    expect(await membership(a, alice, roomId, '@nobody:localhost:1')).toBeUndefined();
  });
});

describe('PUT /invite as the invitee’s server', () => {
  async function invitePdu(roomId: string, invitee: string, sender = alice.userId): Promise<{ pdu: PDU; id: string }> {
    const ctx = a.test.server.ctx;
    const room = await ctx.services.rooms.pipeline.room(ctx.database.db, roomId);
    const { requireRoomVersion } = await import('../../src/core/room-versions.js');
    const built = await ctx.services.rooms.pipeline.builder.build(
      ctx.database.db,
      room,
      requireRoomVersion('11'),
      sender,
      { type: 'm.room.member', state_key: invitee, content: { membership: 'invite' } },
      Date.now(),
    );
    return { pdu: built.pdu, id: computeEventId(built.pdu, '11') };
  }

  const put = (uri: string, body: unknown, origin = a) => signedFederationRequest(agent, origin, b, 'PUT', uri, body);

  it('signs a good invite, and refuses one for another server’s user, a mismatched path, or an unsupported room version', async () => {
    const roomId = await createRoom(a, alice, { preset: 'private_chat', room_version: '11' });
    const { pdu, id } = await invitePdu(roomId, bob.userId);
    const ok = await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(id)}`, { event: pdu, room_version: '11', invite_room_state: [] });
    expect(ok.status).toBe(200);
    const signed = ok.body.event as { signatures: Record<string, unknown> };
    expect(Object.keys(signed.signatures).sort()).toEqual([a.serverName, b.serverName].sort());

    const other = await invitePdu(roomId, `@dave:${a.serverName}`);
    expect((await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(other.id)}`, { event: other.pdu, room_version: '11', invite_room_state: [] })).status).toBe(400);
    expect((await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc('$elsewhere')}`, { event: pdu, room_version: '11', invite_room_state: [] })).status).toBe(400);
    const unsupported = await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(id)}`, { event: pdu, room_version: '999', invite_room_state: [] });
    expect(unsupported.status).toBe(400);
    expect(unsupported.body.errcode).toBe('M_INCOMPATIBLE_ROOM_VERSION');
  });

  it('refuses an invite whose sender is not of the origin, or whose signature is bad', async () => {
    const roomId = await createRoom(a, alice, { preset: 'private_chat', room_version: '11' });
    const { pdu, id } = await invitePdu(roomId, bob.userId);
    // Signed by A as it must be, but sent by B: the inviter is not of the origin.
    const res = await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(id)}`, { event: pdu, room_version: '11', invite_room_state: [] }, b);
    expect(res.status).toBe(403);
    // Signed by B alone: A's signature is missing.
    const { signatures: _s, hashes: _h, ...bare } = pdu;
    const asB = hashAndSignEvent(bare, '11', b.serverName, b.test.server.ctx.keys.current);
    const unsigned = await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(computeEventId(asB, '11'))}`, { event: asB, room_version: '11', invite_room_state: [] });
    expect(unsigned.status).toBe(400);
    const forged = { ...pdu, signatures: { [a.serverName]: { [a.test.server.ctx.keys.current.keyId]: 'AAAA' } } };
    const bad = await put(`/_matrix/federation/v2/invite/${enc(roomId)}/${enc(computeEventId(forged, '11'))}`, { event: forged, room_version: '11', invite_room_state: [] });
    expect(bad.status).toBe(400);
  });
});

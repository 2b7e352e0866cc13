/**
 * Three real Axon servers over HTTPS on the loopback in one room: users on
 * A and B rename the room at the same moment, so the DAG forks; once both
 * events have reached everyone, all three servers resolve the same current
 * name, and a message from C then cites both branches (the fork merged).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEvent } from '../../src/storage/events.js';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

let servers: FederationServer[];
let users: TestUser[];
const enc = encodeURIComponent;

beforeAll(async () => {
  servers = await startFederationServers(3);
  users = await Promise.all(servers.map((s, i) => createUser(s.test, ['alice', 'bob', 'carol'][i]!)));
}, 60_000);

afterAll(async () => {
  await Promise.all((servers ?? []).map((s) => s.close()));
});

async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function hasEvent(i: number, roomId: string, eventId: string): Promise<boolean> {
  const res = await api(servers[i]!.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/event/${enc(eventId)}`, { token: users[i]!.accessToken });
  return res.status === 200;
}

async function currentState(i: number, roomId: string): Promise<Record<string, string>> {
  const res = await api(servers[i]!.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state`, { token: users[i]!.accessToken });
  expect(res.status).toBe(200);
  const out: Record<string, string> = {};
  for (const e of res.body as unknown as { type: string; state_key: string; event_id: string }[]) out[`${e.type}|${e.state_key}`] = e.event_id;
  return out;
}

describe('three servers, a state fork', () => {
  for (const version of ['10', '12']) {
    it(`room version ${version}: concurrent renames on A and B resolve to the same name everywhere; C's message merges the fork`, async () => {
      const [a, b, c] = servers as [FederationServer, FederationServer, FederationServer];
      const [alice, bob, carol] = users as [TestUser, TestUser, TestUser];
      const created = await api(a.test, 'POST', '/_matrix/client/v3/createRoom', {
        token: alice.accessToken,
        body: { preset: 'public_chat', room_version: version, power_level_content_override: { events: { 'm.room.name': 0 } } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(200);
      const roomId = created.body.room_id as string;
      for (const [t, u] of [
        [b, bob],
        [c, carol],
      ] as const) {
        const join = await api(t.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(a.serverName)}`, { token: u.accessToken, body: {} });
        expect(join.status, JSON.stringify(join.body)).toBe(200);
      }
      // Everyone has everyone's join before the fork.
      const members = async (i: number) =>
        (await api(servers[i]!.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, { token: users[i]!.accessToken })).body.joined;
      for (const i of [0, 1, 2]) await until(async () => Object.keys((await members(i)) ?? {}).length === 3);

      const [ra, rb] = await Promise.all([
        api(a.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, { token: alice.accessToken, body: { name: 'from A' } }),
        api(b.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.name/`, { token: bob.accessToken, body: { name: 'from B' } }),
      ]);
      expect(ra.status).toBe(200);
      expect(rb.status).toBe(200);
      const ids = [ra.body.event_id as string, rb.body.event_id as string];
      for (const i of [0, 1, 2]) for (const id of ids) await until(() => hasEvent(i, roomId, id));

      const states = await Promise.all([0, 1, 2].map((i) => currentState(i, roomId)));
      expect(ids).toContain(states[0]!['m.room.name|']);
      expect(states[1]).toEqual(states[0]);
      expect(states[2]).toEqual(states[0]);

      const msg = await api(c.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/merge-${version}`, {
        token: carol.accessToken,
        body: { msgtype: 'm.text', body: 'merge' },
      });
      expect(msg.status).toBe(200);
      const stored = await getEvent(c.test.server.ctx.database.db, msg.body.event_id as string);
      const prevs = (stored!.json['prev_events'] as unknown[]).map((p) => (Array.isArray(p) ? p[0] : p));
      // If the renames did fork (neither saw the other first), C's message cites both.
      const forked = await Promise.all(ids.map(async (id) => (await getEvent(c.test.server.ctx.database.db, id))!.json['prev_events'] as unknown[]));
      if (JSON.stringify(forked[0]) === JSON.stringify(forked[1])) expect(new Set(prevs)).toEqual(new Set(ids));
      for (const i of [0, 1]) await until(() => hasEvent(i, roomId, msg.body.event_id as string));
      const after = await Promise.all([0, 1, 2].map((i) => currentState(i, roomId)));
      expect(after[1]).toEqual(after[0]);
      expect(after[2]).toEqual(after[0]);
      expect(after[0]!['m.room.name|']).toBe(states[0]!['m.room.name|']);
    }, 30_000);
  }
});

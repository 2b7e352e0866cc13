/**
 * The federation read endpoints between two servers over HTTPS: B's user
 * is put into rooms hosted on A (test/helpers/remote-member.ts), and B asks
 * A for events, state, auth chains and history with signed requests:
 * GET /event, /state, /state_ids, /event_auth, /backfill,
 * /timestamp_to_event and POST /get_missing_events. Covers the PDU forms
 * of room versions 1, 3, 10 and 12, history visibility for servers, server
 * ACLs, host-in-room, and bad parameters.
 */
import { type Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventId } from '../../src/core/event-id.js';
import type { JsonObject } from '../../src/core/pdu.js';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { startFederationServers, type FederationServer } from '../helpers/federation.js';
import { inviteRemote, joinRemote, persistRemote, remoteEvent, sendRemote } from '../helpers/remote-member.js';
import { roomHelpers, text } from '../helpers/rooms.js';
import { testCaAgent } from '../helpers/test-ca.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

type Json = Record<string, any>;

let a: FederationServer;
let b: FederationServer;
let agent: Agent;
let alice: TestUser;
let bob: string;
const enc = encodeURIComponent;
const rooms = roomHelpers(() => a.test);
const V1 = '/_matrix/federation/v1';

beforeAll(async () => {
  [a, b] = await startFederationServers(2);
  agent = testCaAgent();
  alice = await createUser(a.test, 'alice');
  bob = `@bob:${b.serverName}`;
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await Promise.all([a?.close(), b?.close()]);
});

/** A request to A's federation API signed by B (or unsigned with `auth: null`). */
async function fed(method: 'GET' | 'POST', uri: string, opts: { body?: unknown; auth?: null; rawBody?: string } = {}): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = {};
  if (opts.auth !== null) {
    headers.authorization = xMatrixAuthorization(
      { method, uri, origin: b.serverName, destination: a.serverName, ...(opts.body !== undefined && { content: opts.body }) },
      b.test.server.ctx.keys.current,
    );
  }
  const payload = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await request(`${a.url}${uri}`, { method, dispatcher: agent, headers, body: payload });
  const raw = await res.body.text();
  return { status: res.statusCode, body: raw === '' ? {} : (JSON.parse(raw) as Json) };
}

const getEvent = (id: string) => fed('GET', `${V1}/event/${enc(id)}`);
const backfill = (roomId: string, v: string[], limit: number) => fed('GET', `${V1}/backfill/${enc(roomId)}?${v.map((id) => `v=${enc(id)}`).join('&')}&limit=${limit}`);
const missing = (roomId: string, body: object) => fed('POST', `${V1}/get_missing_events/${enc(roomId)}`, { body });

/** The client API's current state of a room on A: event ids by `type|state_key`. */
async function clientState(roomId: string): Promise<Map<string, string>> {
  const res = await api(a.test, 'GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state`, { token: alice.accessToken });
  expect(res.status).toBe(200);
  return new Map((res.body as unknown as Json[]).map((e) => [`${e['type']}|${e['state_key']}`, e['event_id'] as string]));
}

async function createRoom(opts: { version?: string; visibility?: string } = {}): Promise<string> {
  return rooms.createRoom(alice, {
    preset: 'public_chat',
    room_version: opts.version ?? '10',
    ...(opts.visibility && { initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: opts.visibility } }] }),
  });
}

/** The event id of a PDU served for a room of this version. */
const idOf = (pdu: Json, version: string) => eventId(pdu, version);

describe.each(['1', '3', '10', '12'])('room version %s', (version) => {
  let roomId: string;
  let joinId: string;
  let msgId: string;
  let state: Map<string, string>;

  beforeAll(async () => {
    roomId = await createRoom({ version });
    joinId = await joinRemote(a, b, roomId, bob);
    msgId = await rooms.send(alice, roomId, text('hello from A'));
    state = await clientState(roomId);
  });

  it('GET /event serves the PDU as a transaction, event_id only in v1/v2', async () => {
    const before = Date.now();
    const res = await getEvent(msgId);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['origin', 'origin_server_ts', 'pdus']);
    expect(res.body['origin']).toBe(a.serverName);
    expect(res.body['origin_server_ts']).toBeGreaterThanOrEqual(before);
    const [pdu] = res.body['pdus'] as Json[];
    expect(pdu).toMatchObject({ room_id: roomId, sender: alice.userId, type: 'm.room.message', content: { body: 'hello from A' } });
    expect(pdu!['signatures'][a.serverName]).toBeDefined();
    if (version === '1') expect(pdu!['event_id']).toBe(msgId);
    else expect(pdu).not.toHaveProperty('event_id');
    expect(idOf(pdu!, version)).toBe(msgId);
    // B's own join comes back as B signed it.
    const join = (await getEvent(joinId)).body['pdus'][0] as Json;
    expect(join).toMatchObject({ type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
    expect(join['signatures'][b.serverName]).toBeDefined();
    expect(idOf(join, version)).toBe(joinId);
  });

  it('GET /state_ids and /state answer the state before the event and its auth chain', async () => {
    const atMsg = await fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(msgId)}`);
    expect(atMsg.status, JSON.stringify(atMsg.body)).toBe(200);
    expect(Object.keys(atMsg.body).sort()).toEqual(['auth_chain_ids', 'pdu_ids']);
    expect(new Set(atMsg.body['pdu_ids'])).toEqual(new Set(state.values()));
    const createId = state.get('m.room.create|')!;
    expect(atMsg.body['auth_chain_ids']).toContain(createId);
    // Nothing here was replaced: the auth chain is part of the state.
    const current = new Set(state.values());
    for (const id of atMsg.body['auth_chain_ids'] as string[]) expect(current.has(id)).toBe(true);

    // At B's join: the state before it, which does not hold the join.
    const atJoin = await fed('GET', `${V1}/state/${enc(roomId)}?event_id=${enc(joinId)}`);
    expect(atJoin.status, JSON.stringify(atJoin.body)).toBe(200);
    expect(Object.keys(atJoin.body).sort()).toEqual(['auth_chain', 'pdus']);
    const stateIds = (atJoin.body['pdus'] as Json[]).map((p) => idOf(p, version));
    expect(new Set(stateIds)).toEqual(new Set([...state].filter(([k]) => k !== `m.room.member|${bob}`).map(([, v]) => v)));
    const ids = await fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(joinId)}`);
    expect(new Set(ids.body['pdu_ids'])).toEqual(new Set(stateIds));
    expect(new Set((atJoin.body['auth_chain'] as Json[]).map((p) => idOf(p, version)))).toEqual(new Set(ids.body['auth_chain_ids']));
    for (const p of atJoin.body['pdus'] as Json[]) {
      if (version === '1') expect(p['event_id']).toBeDefined();
      else expect(p).not.toHaveProperty('event_id');
    }
  });

  it('GET /event_auth answers the auth chain of the event, not the event', async () => {
    const res = await fed('GET', `${V1}/event_auth/${enc(roomId)}/${enc(msgId)}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body)).toEqual(['auth_chain']);
    const ids = (res.body['auth_chain'] as Json[]).map((p) => idOf(p, version));
    expect(new Set(ids)).toEqual(new Set([state.get('m.room.create|'), state.get('m.room.power_levels|'), state.get(`m.room.member|${alice.userId}`)]));
    // Oldest first: the create event leads.
    expect(ids[0]).toBe(state.get('m.room.create|'));
  });
});

describe('history visibility for servers', () => {
  const bodyOf = async (id: string) => ((await getEvent(id)).body['pdus'][0] as Json)['content'];

  it("joined: events before any of the server's users joined are served redacted", async () => {
    const roomId = await createRoom({ visibility: 'joined' });
    const before = await rooms.send(alice, roomId, text('before'));
    await inviteRemote(a, roomId, alice.userId, bob);
    const invited = await rooms.send(alice, roomId, text('while invited'));
    const joinId = await joinRemote(a, b, roomId, bob);
    const after = await rooms.send(alice, roomId, text('after'));

    const redacted = await getEvent(before);
    expect(redacted.status).toBe(200);
    const pdu = redacted.body['pdus'][0] as Json;
    expect(pdu['content']).toEqual({});
    expect(pdu['type']).toBe('m.room.message');
    // The redacted form keeps the hashes and signatures: its id is still the event's.
    expect(idOf(pdu, '10')).toBe(before);
    expect(pdu['signatures'][a.serverName]).toBeDefined();
    expect(await bodyOf(invited)).toEqual({});
    expect(await bodyOf(joinId)).toEqual({ membership: 'join' });
    expect(await bodyOf(after)).toMatchObject({ body: 'after' });

    // /backfill and /get_missing_events redact the same events.
    const page = await backfill(roomId, [after], 20);
    expect(page.status).toBe(200);
    const byId = new Map((page.body['pdus'] as Json[]).map((p) => [idOf(p, '10'), p]));
    expect(byId.get(before)!['content']).toEqual({});
    expect(byId.get(invited)!['content']).toEqual({});
    expect(byId.get(after)!['content']).toMatchObject({ body: 'after' });
    const gme = await missing(roomId, { earliest_events: [], latest_events: [after], limit: 5 });
    const events = new Map((gme.body['events'] as Json[]).map((p) => [idOf(p, '10'), p]));
    expect(events.get(invited)!['content']).toEqual({});
    expect(events.get(joinId)!['content']).toEqual({ membership: 'join' });
  });

  it('invited: events from the invite on are visible, earlier ones redacted', async () => {
    const roomId = await createRoom({ visibility: 'invited' });
    const before = await rooms.send(alice, roomId, text('before'));
    const inviteId = await inviteRemote(a, roomId, alice.userId, bob);
    const invited = await rooms.send(alice, roomId, text('while invited'));
    await joinRemote(a, b, roomId, bob);
    const after = await rooms.send(alice, roomId, text('after'));
    expect(await bodyOf(before)).toEqual({});
    expect(await bodyOf(inviteId)).toMatchObject({ membership: 'invite' });
    expect(await bodyOf(invited)).toMatchObject({ body: 'while invited' });
    expect(await bodyOf(after)).toMatchObject({ body: 'after' });
  });

  it('joined: any user of the server counts, and only while joined', async () => {
    const roomId = await createRoom({ visibility: 'joined' });
    const carol = `@carol:${b.serverName}`;
    await joinRemote(a, b, roomId, carol);
    const whileCarol = await rooms.send(alice, roomId, text('carol is here'));
    await sendRemote(a, b, roomId, carol, { type: 'm.room.member', state_key: carol, content: { membership: 'leave' } });
    const nobody = await rooms.send(alice, roomId, text('no one of B'));
    await joinRemote(a, b, roomId, bob);
    expect(await bodyOf(whileCarol)).toMatchObject({ body: 'carol is here' });
    expect(await bodyOf(nobody)).toEqual({});
  });

  it('shared (and world_readable): everything is visible', async () => {
    for (const visibility of ['shared', 'world_readable']) {
      const roomId = await createRoom({ visibility });
      const before = await rooms.send(alice, roomId, text('before'));
      await joinRemote(a, b, roomId, bob);
      expect(await bodyOf(before)).toMatchObject({ body: 'before' });
    }
  });

  it('each event is judged by the state at it (a change to joined hides what follows it)', async () => {
    const roomId = await createRoom({ visibility: 'shared' });
    const shared = await rooms.send(alice, roomId, text('shared'));
    await rooms.setState(alice, roomId, 'm.room.history_visibility', { history_visibility: 'joined' });
    const hidden = await rooms.send(alice, roomId, text('joined only'));
    await joinRemote(a, b, roomId, bob);
    const seen = await rooms.send(alice, roomId, text('seen'));
    expect(await bodyOf(shared)).toMatchObject({ body: 'shared' });
    expect(await bodyOf(hidden)).toEqual({});
    expect(await bodyOf(seen)).toMatchObject({ body: 'seen' });
  });
});

describe('who may ask', () => {
  /** One signed request to each endpoint about this room and event. */
  const everyEndpoint = (roomId: string, id: string) => [
    getEvent(id),
    fed('GET', `${V1}/state/${enc(roomId)}?event_id=${enc(id)}`),
    fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(id)}`),
    fed('GET', `${V1}/event_auth/${enc(roomId)}/${enc(id)}`),
    backfill(roomId, [id], 10),
    missing(roomId, { earliest_events: [], latest_events: [id] }),
    fed('GET', `${V1}/timestamp_to_event/${enc(roomId)}?ts=0&dir=f`),
  ];

  it('a server with no user joined is refused by every endpoint (403 "Host not in room.")', async () => {
    const roomId = await createRoom();
    const msg = await rooms.send(alice, roomId, text('private'));
    for (const res of await Promise.all(everyEndpoint(roomId, msg))) expect(res).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Host not in room.' } });
    // Invited is not joined; a user who left is gone.
    await inviteRemote(a, roomId, alice.userId, bob);
    expect((await getEvent(msg)).status).toBe(403);
    await joinRemote(a, b, roomId, bob);
    expect((await getEvent(msg)).status).toBe(200);
    await sendRemote(a, b, roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'leave' } });
    expect((await getEvent(msg)).body).toEqual({ errcode: 'M_FORBIDDEN', error: 'Host not in room.' });
    // A room A does not know: the same answer, as Synapse's.
    const unknown = await fed('GET', `${V1}/state_ids/${enc('!nowhere:' + a.serverName)}?event_id=${enc(msg)}`);
    expect(unknown).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Host not in room.' } });
  });

  it('a server the room ACL denies is refused by every endpoint (403 "Server is banned from room")', async () => {
    const roomId = await createRoom();
    await joinRemote(a, b, roomId, bob);
    const msg = await rooms.send(alice, roomId, text('hi'));
    expect((await getEvent(msg)).status).toBe(200);
    // B is localhost:<port>; the ACL names hosts without ports.
    await rooms.setState(alice, roomId, 'm.room.server_acl', { allow: ['*'], deny: ['localhost'] });
    for (const res of await Promise.all(everyEndpoint(roomId, msg))) expect(res).toEqual({ status: 403, body: { errcode: 'M_FORBIDDEN', error: 'Server is banned from room' } });
    await rooms.setState(alice, roomId, 'm.room.server_acl', { allow: ['local*'], deny: ['evil.example'] });
    for (const res of await Promise.all(everyEndpoint(roomId, msg))) expect(res.status, JSON.stringify(res.body)).toBe(200);
    // No allow list allows no one.
    await rooms.setState(alice, roomId, 'm.room.server_acl', { deny: [] });
    expect((await getEvent(msg)).body).toEqual({ errcode: 'M_FORBIDDEN', error: 'Server is banned from room' });
  });

  it('unsigned requests are 401', async () => {
    const res = await fed('GET', `${V1}/event/${enc('$x')}`, { auth: null });
    expect(res.status).toBe(401);
    expect(res.body['errcode']).toBe('M_UNAUTHORIZED');
  });
});

describe('events that are not served', () => {
  let roomId: string;
  let msg: string;
  beforeAll(async () => {
    roomId = await createRoom();
    await joinRemote(a, b, roomId, bob);
    msg = await rooms.send(alice, roomId, text('hi'));
  });

  it('an unknown event is 404 M_NOT_FOUND, at every endpoint that names one', async () => {
    const unknown = `$unknown:${a.serverName}`;
    const res = await getEvent(unknown);
    expect(res.status).toBe(404);
    expect(res.body['errcode']).toBe('M_NOT_FOUND');
    for (const uri of [
      `${V1}/state/${enc(roomId)}?event_id=${enc(unknown)}`,
      `${V1}/state_ids/${enc(roomId)}?event_id=${enc(unknown)}`,
      `${V1}/event_auth/${enc(roomId)}/${enc(unknown)}`,
    ]) {
      expect(await fed('GET', uri)).toEqual({ status: 404, body: { errcode: 'M_NOT_FOUND', error: `Could not find event ${unknown}` } });
    }
  });

  it("an event of another room is not found through this room's endpoints", async () => {
    const other = await createRoom();
    await joinRemote(a, b, other, bob);
    const elsewhere = await rooms.send(alice, other, text('elsewhere'));
    expect((await fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(elsewhere)}`)).status).toBe(404);
    expect((await fed('GET', `${V1}/event_auth/${enc(roomId)}/${enc(elsewhere)}`)).status).toBe(404);
    expect((await backfill(roomId, [elsewhere], 10)).body['pdus']).toEqual([]);
    expect((await missing(roomId, { earliest_events: [], latest_events: [elsewhere] })).body).toEqual({ events: [] });
  });

  it('a rejected event is never served', async () => {
    // Bob has power 0: his power levels change is rejected by its auth events.
    const pdu = await remoteEvent(a, b, roomId, bob, { type: 'm.room.power_levels', state_key: '', content: { users: { [bob]: 100 } } });
    const stored = await persistRemote(a, roomId, pdu);
    expect(stored.rejected).toBeDefined();
    expect((await getEvent(stored.eventId)).status).toBe(404);
    expect((await fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(stored.eventId)}`)).status).toBe(404);
    // Walking back from it reaches its parents, never itself.
    const page = (await backfill(roomId, [stored.eventId], 10)).body['pdus'] as Json[];
    expect(page.length).toBeGreaterThan(0);
    expect(page.map((p) => idOf(p, '10'))).not.toContain(stored.eventId);
  });

  it('an outlier is served by id, but its state is not known', async () => {
    const pdu = await remoteEvent(a, b, roomId, bob, { type: 'm.room.message', content: text('outlier') as JsonObject });
    const stored = await persistRemote(a, roomId, pdu, { outlier: true });
    expect(stored.outlier).toBe(true);
    const res = await getEvent(stored.eventId);
    expect(res.status).toBe(200);
    expect(res.body['pdus'][0]['content']).toMatchObject({ body: 'outlier' });
    expect(await fed('GET', `${V1}/state_ids/${enc(roomId)}?event_id=${enc(stored.eventId)}`)).toEqual({
      status: 404,
      body: { errcode: 'M_NOT_FOUND', error: `State not known at event ${stored.eventId}` },
    });
    expect((await getEvent(msg)).status).toBe(200);
  });
});

describe('walking history', () => {
  let roomId: string;
  /** m[1..6], sent one after another: a straight line. */
  const m: string[] = [];
  const depth = new Map<string, number>();

  beforeAll(async () => {
    roomId = await createRoom();
    await joinRemote(a, b, roomId, bob);
    m.push('');
    for (let i = 1; i <= 6; i++) m.push(await rooms.send(alice, roomId, text(`m${i}`)));
    for (const id of m.slice(1)) depth.set(id, (await getEvent(id)).body['pdus'][0]['depth'] as number);
  });

  const ids = (pdus: Json[]) => pdus.map((p) => idOf(p, '10'));

  it('/backfill serves the v events and those before them, newest first, up to limit', async () => {
    const page = await backfill(roomId, [m[6]!], 3);
    expect(page.status).toBe(200);
    expect(Object.keys(page.body).sort()).toEqual(['origin', 'origin_server_ts', 'pdus']);
    expect(page.body['origin']).toBe(a.serverName);
    expect(ids(page.body['pdus'])).toEqual([m[6], m[5], m[4]]);
    expect(ids((await backfill(roomId, [m[6]!], 1)).body['pdus'])).toEqual([m[6]]);
    // Two starting points: the deepest events first, wherever they come from.
    expect(ids((await backfill(roomId, [m[3]!, m[6]!], 2)).body['pdus'])).toEqual([m[6], m[5]]);
    expect(ids((await backfill(roomId, [m[3]!, m[6]!], 4)).body['pdus'])).toEqual([m[6], m[5], m[4], m[3]]);
    // All the way back: ends with the create event, depths never grow.
    const all = (await backfill(roomId, [m[6]!], 100)).body['pdus'] as Json[];
    expect(all.at(-1)!['type']).toBe('m.room.create');
    for (let i = 1; i < all.length; i++) expect(all[i]!['depth']).toBeLessThanOrEqual(all[i - 1]!['depth']);
  });

  it('/get_missing_events walks back from latest_events to earliest_events, oldest first', async () => {
    const res = await missing(roomId, { earliest_events: [m[2]], latest_events: [m[6]], limit: 10 });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['events']);
    expect(ids(res.body['events'])).toEqual([m[3], m[4], m[5]]);
    // limit keeps the events nearest the latest ones.
    expect(ids((await missing(roomId, { earliest_events: [m[2]], latest_events: [m[6]], limit: 2 })).body['events'])).toEqual([m[4], m[5]]);
    // min_depth stops the walk.
    expect(ids((await missing(roomId, { earliest_events: [], latest_events: [m[6]], min_depth: depth.get(m[4]!) })).body['events'])).toEqual([m[4], m[5]]);
    // The default limit is 10.
    expect((await missing(roomId, { earliest_events: [], latest_events: [m[6]] })).body['events']).toHaveLength(10);
    expect((await missing(roomId, { earliest_events: [], latest_events: [m[6]], limit: 0 })).body).toEqual({ events: [] });
    // Nothing missing between an event and its parent.
    expect((await missing(roomId, { earliest_events: [m[5]], latest_events: [m[6]] })).body).toEqual({ events: [] });
  });

  it('/timestamp_to_event finds the first event after, or the last before, a time', async () => {
    const first = await fed('GET', `${V1}/timestamp_to_event/${enc(roomId)}?ts=0&dir=f`);
    expect(first.status).toBe(200);
    expect(Object.keys(first.body).sort()).toEqual(['event_id', 'origin_server_ts']);
    expect(first.body['event_id']).toBe((await clientState(roomId)).get('m.room.create|'));
    const last = await fed('GET', `${V1}/timestamp_to_event/${enc(roomId)}?ts=${Date.now() + 3_600_000}&dir=b`);
    expect(last.body['event_id']).toBe(m[6]);
    expect(typeof last.body['origin_server_ts']).toBe('number');
    const none = await fed('GET', `${V1}/timestamp_to_event/${enc(roomId)}?ts=0&dir=b`);
    expect(none).toEqual({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'Unable to find event from 0 in direction b' } });
  });

  it('limits are capped as Synapse caps them: 100 for /backfill, 20 for /get_missing_events', async () => {
    const big = await createRoom();
    await joinRemote(a, b, big, bob);
    const { pipeline } = a.test.server.ctx.services.rooms;
    await pipeline.roomTransaction(big, async (tx) => {
      const room = await pipeline.room(tx, big);
      for (let i = 0; i < 110; i++) await pipeline.persist(tx, room, alice.userId, { type: 'm.room.message', content: text(`bulk ${i}`) as JsonObject });
    });
    const last = await fed('GET', `${V1}/timestamp_to_event/${enc(big)}?ts=${Date.now() + 3_600_000}&dir=b`);
    const lastId = last.body['event_id'] as string;
    expect((await backfill(big, [lastId], 1000)).body['pdus']).toHaveLength(100);
    expect((await missing(big, { earliest_events: [], latest_events: [lastId], limit: 50 })).body['events']).toHaveLength(20);
  });
});

describe('bad parameters', () => {
  let roomId: string;
  let msg: string;
  beforeAll(async () => {
    roomId = await createRoom();
    await joinRemote(a, b, roomId, bob);
    msg = await rooms.send(alice, roomId, text('hi'));
  });

  it.each([
    ['/state without event_id', `/state/ROOM`, 'M_MISSING_PARAM', "Missing string query parameter 'event_id'"],
    ['/state_ids without event_id', `/state_ids/ROOM`, 'M_MISSING_PARAM', "Missing string query parameter 'event_id'"],
    ['/backfill without v', `/backfill/ROOM?limit=5`, 'M_MISSING_PARAM', "Missing string query parameter 'v'"],
    ['/backfill without limit', `/backfill/ROOM?v=EVENT`, 'M_MISSING_PARAM', 'Did not include limit param'],
    ['/backfill with limit 0', `/backfill/ROOM?v=EVENT&limit=0`, 'M_MISSING_PARAM', 'Did not include limit param'],
    ['/backfill with a limit that is no number', `/backfill/ROOM?v=EVENT&limit=ten`, 'M_INVALID_PARAM', 'Query parameter limit must be an integer'],
    ['/backfill with a negative limit', `/backfill/ROOM?v=EVENT&limit=-1`, 'M_INVALID_PARAM', 'Query parameter limit must be a positive integer.'],
    ['/timestamp_to_event without ts', `/timestamp_to_event/ROOM?dir=f`, 'M_MISSING_PARAM', 'Missing required integer query parameter ts'],
    ['/timestamp_to_event with a ts that is no number', `/timestamp_to_event/ROOM?ts=soon&dir=f`, 'M_INVALID_PARAM', 'Query parameter ts must be an integer'],
    ['/timestamp_to_event without dir', `/timestamp_to_event/ROOM?ts=0`, 'M_MISSING_PARAM', "Missing string query parameter 'dir'"],
    ['/timestamp_to_event with another dir', `/timestamp_to_event/ROOM?ts=0&dir=x`, 'M_INVALID_PARAM', "Query parameter 'dir' must be one of ['f', 'b']"],
  ])('%s is 400', async (_name, path, errcode, error) => {
    const res = await fed('GET', `${V1}${path.replace('ROOM', enc(roomId)).replace('EVENT', enc(msg))}`);
    expect(res).toEqual({ status: 400, body: { errcode, error } });
  });

  it('/get_missing_events refuses bodies of the wrong shape', async () => {
    const uri = `${V1}/get_missing_events/${enc(roomId)}`;
    for (const body of [
      { latest_events: msg },
      { latest_events: [1] },
      { latest_events: [msg], limit: 'ten' },
      { latest_events: [msg], min_depth: true },
      { latest_events: Array(1001).fill(msg) },
    ]) {
      const res = await missing(roomId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body['errcode']).toBe('M_BAD_JSON');
    }
    const notJson = await fed('POST', uri, { rawBody: '{nope' });
    expect(notJson.status).toBe(400);
    expect(notJson.body['errcode']).toBe('M_NOT_JSON');
    // Missing lists are empty lists, as Synapse reads them.
    expect(await missing(roomId, {})).toEqual({ status: 200, body: { events: [] } });
  });
});

/**
 * Filling gaps before received PDUs when the origin is hostile or broken,
 * against a real Axon and a recording fake origin (test/helpers/fake-remote.ts):
 * the fake's user is joined to an Axon room, the fake sends /send
 * transactions whose PDUs cite prev events Axon does not hold, and answers
 * get_missing_events, /state and /event as each test scripts it.
 *
 * As Synapse does: one get_missing_events per PDU with a gap (limit 10,
 * earliest_events = our forward extremities, latest_events = [the PDU]),
 * no recursion into the gaps of what it returns (those are stood in for by
 * the state at them), and a failed one falls back to the state. Every
 * assertion is on request counts from the fake's recording.
 */
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAndSignEvent } from '../../src/core/event-signing.js';
import { eventId as computeEventId } from '../../src/core/event-id.js';
import type { PDU } from '../../src/core/pdu.js';
import { requireRoomVersion } from '../../src/core/room-versions.js';
import { xMatrixAuthorization } from '../../src/core/x-matrix.js';
import { MISSING_EVENTS_LIMIT } from '../../src/services/federation/remote-events.js';
import { eventPlacements, getEvents } from '../../src/storage/events.js';
import { currentState } from '../../src/storage/state.js';
import { joinRemoteUser, startFakeRemote, waitUntil, type FakeRemote, type RecordedRequest, type ScriptedAnswer } from '../helpers/fake-remote.js';
import { startFederationServer, testCaAgent, type FederationServer } from '../helpers/federation.js';
import { roomHelpers } from '../helpers/rooms.js';
import { api, createUser, type TestUser } from '../helpers/users.js';

const V1 = '/_matrix/federation/v1';
const enc = encodeURIComponent;

let fake: FakeRemote;
let fed: FederationServer;
let alice: TestUser;
let agent: Agent;
let sender: string;
let txn = 0;

beforeAll(async () => {
  fake = await startFakeRemote();
  fed = await startFederationServer();
  alice = await createUser(fed.test, 'alice');
  agent = testCaAgent();
  sender = `@x:${fake.serverName}`;
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await fed?.close();
  await fake?.close();
});

const db = () => fed.test.server.ctx.database.db;
const h = roomHelpers(() => fed.test);

interface Ev {
  id: string;
  pdu: PDU;
}

/** A room of alice's on Axon with the fake's user joined. */
async function remoteRoom(): Promise<string> {
  const roomId = await h.createRoom(alice, { preset: 'public_chat', room_version: '11' });
  await joinRemoteUser(fed.test, fake, roomId, sender);
  return roomId;
}

/**
 * A message of the fake's user in `roomId`, citing `prevs` (Axon's forward
 * extremities when not given), signed by the fake (or not at all).
 */
async function message(roomId: string, body: string, prevs?: string[], o: { depthPlus?: number; unsigned?: boolean } = {}): Promise<Ev> {
  const pipeline = fed.test.server.ctx.services.rooms.pipeline;
  const room = await pipeline.room(db(), roomId);
  const rv = requireRoomVersion('11');
  const { pdu } = await pipeline.builder.build(db(), room, rv, sender, { type: 'm.room.message', content: { msgtype: 'm.text', body } }, Date.now());
  const { signatures: _s, hashes: _h, ...bare } = pdu;
  const draft = { ...bare, ...(prevs && { prev_events: prevs }), depth: pdu.depth + (o.depthPlus ?? 0) };
  const signed = hashAndSignEvent(draft, rv.id, fake.serverName, fake.key) as PDU;
  const out = o.unsigned ? ({ ...signed, signatures: {} } as PDU) : signed;
  return { id: computeEventId(out, rv.id), pdu: out };
}

/** A fresh id of an event nobody holds. */
let unknownN = 0;
function unknownId(): string {
  return `$unknown-${++unknownN}-${Math.random().toString(36).slice(2)}`;
}

/** PUT /send from the fake to Axon, signed by the fake. */
async function send(pdus: PDU[]): Promise<{ status: number; body: Record<string, any> }> {
  const uri = `${V1}/send/storm${++txn}-${Date.now()}`;
  const body = { origin: fake.serverName, origin_server_ts: Date.now(), pdus, edus: [] };
  const auth = xMatrixAuthorization({ method: 'PUT', uri, origin: fake.serverName, destination: fed.serverName, content: body }, fake.key);
  const res = await request(`${fed.url}${uri}`, {
    method: 'PUT',
    dispatcher: agent,
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

/** The room's current state on Axon as a /state answer (state and an empty auth chain: Axon holds it all). */
async function stateAnswer(roomId: string): Promise<ScriptedAnswer> {
  const rows = await currentState(db(), roomId);
  const events = await getEvents(
    db(),
    rows.map((r) => r.event_id),
  );
  return { status: 200, body: { pdus: [...events.values()].map((e) => e.json), auth_chain: [] } };
}

const isGme = (roomId: string) => (r: RecordedRequest) => r.method === 'POST' && r.path === `${V1}/get_missing_events/${roomId}`;
const isState = (roomId: string) => (r: RecordedRequest) => r.method === 'GET' && (r.path === `${V1}/state/${roomId}` || r.path === `${V1}/state_ids/${roomId}`);
const isEvent = (r: RecordedRequest) => r.method === 'GET' && r.path.startsWith(`${V1}/event/`);

/** Requests the fake received since `from`, matching `pred`. */
function since(from: number, pred: (r: RecordedRequest) => boolean): RecordedRequest[] {
  return fake.requests.slice(from).filter(pred);
}

/** Ids of these events that Axon holds as timeline events (in the DAG: not outliers, not rejected). */
async function inTimeline(ids: string[]): Promise<string[]> {
  const placed = await eventPlacements(db(), ids);
  return ids.filter((id) => {
    const p = placed.get(id);
    return p !== undefined && !p.outlier && p.rejected_reason === null;
  });
}

async function stillResponsive(): Promise<void> {
  const versions = await api(fed.test, 'GET', '/_matrix/client/versions');
  expect(versions.status).toBe(200);
  const whoami = await api(fed.test, 'GET', '/_matrix/client/v3/account/whoami', { token: alice.accessToken });
  expect(whoami.status).toBe(200);
}

/**
 * Scripts the fake for `roomId`: get_missing_events answered by `gap`
 * (by the PDU asked about), /state with the room's current state on Axon,
 * /event/{id} from `events` (404 for any other id).
 */
function script(roomId: string, gap: (latest: string, body: Record<string, any>) => ScriptedAnswer | Promise<ScriptedAnswer>, events = new Map<string, Ev>()) {
  fake.onRequest = async (r) => {
    if (isGme(roomId)(r)) {
      const body = r.body as Record<string, any>;
      return gap((body.latest_events as string[])[0]!, body);
    }
    if (isState(roomId)(r)) return stateAnswer(roomId);
    if (isEvent(r)) {
      const id = decodeURIComponent(r.path.slice(`${V1}/event/`.length));
      const ev = events.get(id);
      if (!ev) return { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no' } };
      return { status: 200, body: { origin: fake.serverName, origin_server_ts: Date.now(), pdus: [ev.pdu] } };
    }
    return undefined;
  };
}

describe('get_missing_events under a storm', () => {
  it('a /send of 50 PDUs each with an unknown prev: one get_missing_events per PDU (limit ≤ 10, latest = it), an endless chain is not followed', async () => {
    const roomId = await remoteRoom();
    // For each PDU P_i: prev H_i (unknown to Axon), whose prev G_i the fake answers /event for
    // with an event citing yet another unknown event: every answer points further back.
    const hidden = new Map<string, Ev>();
    const events = new Map<string, Ev>();
    const pdus: Ev[] = [];
    for (let i = 0; i < 50; i++) {
      const g = await message(roomId, `g${i}`, [unknownId()], { depthPlus: 1 });
      events.set(g.id, g);
      const hEv = await message(roomId, `h${i}`, [g.id], { depthPlus: 2 });
      const p = await message(roomId, `p${i}`, [hEv.id], { depthPlus: 3 });
      hidden.set(p.id, hEv);
      pdus.push(p);
    }
    script(
      roomId,
      (latest) => {
        const hEv = hidden.get(latest);
        return { status: 200, body: { events: hEv ? [hEv.pdu] : [] } };
      },
      events,
    );
    const from = fake.requests.length;
    const res = await send(pdus.map((p) => p.pdu));
    expect(res.status).toBe(200);
    for (const p of pdus) expect(res.body.pdus[p.id], p.id).toBeDefined();

    const gme = since(from, isGme(roomId));
    const state = since(from, isState(roomId));
    const event = since(from, isEvent);
    console.info(`storm of 50: get_missing_events ${gme.length}, state ${state.length}, event ${event.length}, all ${fake.requests.length - from}`);
    expect(gme.length).toBeLessThanOrEqual(50);
    const ids = new Set(pdus.map((p) => p.id));
    const asked = new Set<string>();
    for (const g of gme) {
      const body = g.body as { latest_events: string[]; limit: number; earliest_events: string[]; min_depth: number };
      expect(body.limit).toBeLessThanOrEqual(10);
      expect(body.latest_events).toHaveLength(1);
      expect(ids.has(body.latest_events[0]!)).toBe(true);
      expect(asked.has(body.latest_events[0]!)).toBe(false);
      asked.add(body.latest_events[0]!);
      expect(body.earliest_events.length).toBeGreaterThan(0);
      expect(typeof body.min_depth).toBe('number');
    }
    // The gap's own gap (G_i's unknown prev) is never asked for: one state fetch per hidden event, no more.
    expect(state.length).toBeLessThanOrEqual(50);
    expect(event.length).toBeLessThanOrEqual(50);
    // Nothing asked about G_i's unknown prevs.
    for (const g of gme) expect(hidden.has((g.body as { latest_events: string[] }).latest_events[0]!)).toBe(true);
    expect(await inTimeline(pdus.map((p) => p.id))).toHaveLength(50);
    await stillResponsive();
  }, 120_000);

  it('answers with events of another room, unsigned events, or more events than asked are not placed in the timeline', async () => {
    const roomId = await remoteRoom();
    const otherRoom = await remoteRoom();
    const wrongRoom: Ev[] = [];
    for (let i = 0; i < 3; i++) wrongRoom.push(await message(otherRoom, `elsewhere${i}`));
    const unsigned: Ev[] = [];
    for (let i = 0; i < 3; i++) unsigned.push(await message(roomId, `unsigned${i}`, undefined, { unsigned: true }));
    // 30 events that would each fit (all cite Axon's extremities), for a limit of 10.
    const many: Ev[] = [];
    for (let i = 0; i < 30; i++) many.push(await message(roomId, `many${i}`, undefined, { depthPlus: 1 + (i % 5) }));
    const hiddenId = unknownId();
    const p = await message(roomId, 'the pdu', [hiddenId], { depthPlus: 10 });
    script(roomId, () => ({ status: 200, body: { events: [...wrongRoom, ...unsigned, ...many].map((e) => e.pdu) } }));
    const from = fake.requests.length;
    const res = await send([p.pdu]);
    expect(res.status).toBe(200);
    expect(res.body.pdus[p.id]).toBeDefined();
    const gme = since(from, isGme(roomId));
    expect(gme).toHaveLength(1);
    console.info(`hostile answer: get_missing_events ${gme.length}, state ${since(from, isState(roomId)).length}, event ${since(from, isEvent).length}`);
    expect(await inTimeline(wrongRoom.map((e) => e.id))).toEqual([]);
    expect(
      (
        await eventPlacements(
          db(),
          wrongRoom.map((e) => e.id),
        )
      ).size,
    ).toBe(0);
    expect(await inTimeline(unsigned.map((e) => e.id))).toEqual([]);
    expect(
      (
        await eventPlacements(
          db(),
          unsigned.map((e) => e.id),
        )
      ).size,
    ).toBe(0);
    expect((await inTimeline(many.map((e) => e.id))).length).toBeLessThanOrEqual(MISSING_EVENTS_LIMIT);
    await stillResponsive();
  }, 60_000);

  it('an answer of 10 events each citing 5 unknown prevs stands in at most 20 of them by state, not 50', async () => {
    const roomId = await remoteRoom();
    const events = new Map<string, Ev>();
    const gapEvents: Ev[] = [];
    for (let i = 0; i < 10; i++) {
      const prevs: string[] = [];
      for (let j = 0; j < 5; j++) {
        const g = await message(roomId, `g${i}.${j}`, [unknownId()], { depthPlus: 1 });
        events.set(g.id, g);
        prevs.push(g.id);
      }
      const gapEvent = await message(roomId, `h${i}`, prevs, { depthPlus: 2 });
      gapEvents.push(gapEvent);
      events.set(gapEvent.id, gapEvent);
    }
    const p = await message(
      roomId,
      'the pdu',
      gapEvents.map((e) => e.id),
      { depthPlus: 3 },
    );
    script(roomId, () => ({ status: 200, body: { events: gapEvents.map((e) => e.pdu) } }), events);
    const from = fake.requests.length;
    const res = await send([p.pdu]);
    expect(res.status).toBe(200);
    // The gap events left out are stood in for by their state, so the PDU is placed.
    expect(res.body.pdus[p.id]).toEqual({});
    expect(await inTimeline([p.id])).toEqual([p.id]);
    const state = since(from, isState(roomId));
    console.info(`fan-out: get_missing_events ${since(from, isGme(roomId)).length}, state ${state.length}, event ${since(from, isEvent).length}`);
    expect(since(from, isGme(roomId))).toHaveLength(1);
    // The gap's events together stand in at most 20 prevs; the PDU itself at most its 10 prevs.
    expect(state.length).toBeLessThanOrEqual(20 + 10);
    await stillResponsive();
  }, 60_000);

  it('a failing get_missing_events falls back to the state at the prev: no 500, the PDU has a result', async () => {
    const roomId = await remoteRoom();
    const g = await message(roomId, 'g', undefined, { depthPlus: 0 });
    const p = await message(roomId, 'after a gap', [g.id], { depthPlus: 1 });
    script(roomId, () => ({ status: 500, body: { errcode: 'M_UNKNOWN', error: 'broken' } }), new Map([[g.id, g]]));
    const from = fake.requests.length;
    const res = await send([p.pdu]);
    expect(res.status).toBe(200);
    expect(res.body.pdus[p.id]).toEqual({});
    expect(since(from, isGme(roomId))).toHaveLength(1);
    expect(since(from, isState(roomId))).toHaveLength(1);
    expect(await inTimeline([p.id])).toEqual([p.id]);
    await stillResponsive();
  }, 60_000);

  it('a hanging get_missing_events times out into the state; later PDUs of the same origin do not each wait for it again', async () => {
    const roomId = await remoteRoom();
    const events = new Map<string, Ev>();
    const pdus: Ev[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await message(roomId, `g${i}`, undefined, { depthPlus: 0 });
      events.set(g.id, g);
      pdus.push(await message(roomId, `after a hang ${i}`, [g.id], { depthPlus: 1 }));
    }
    script(roomId, () => 'hang', events);
    const from = fake.requests.length;
    const pending = send(pdus.map((p) => p.pdu));
    await waitUntil(() => since(from, isGme(roomId)).length >= 1, 'the first get_missing_events');
    // While the origin's transaction waits, the server answers others.
    await stillResponsive();
    const res = await pending;
    expect(res.status).toBe(200);
    for (const p of pdus) expect(res.body.pdus[p.id], p.id).toEqual({});
    const gme = since(from, isGme(roomId)).length;
    console.info(`hang: get_missing_events ${gme}, state ${since(from, isState(roomId)).length}`);
    expect(gme).toBe(1);
    expect(since(from, isState(roomId))).toHaveLength(3);
    expect(await inTimeline(pdus.map((p) => p.id))).toHaveLength(3);
  }, 150_000);

  it('an origin that answers nothing: its PDUs fail with a reason after one wait per kind of request, and its next transaction is handled', async () => {
    // A fake of its own: the one above is backed off for get_missing_events now.
    const first = fake;
    fake = await startFakeRemote();
    sender = `@x:${fake.serverName}`;
    try {
      const roomId = await remoteRoom();
      const pdus: Ev[] = [];
      for (let i = 0; i < 3; i++) pdus.push(await message(roomId, `into the void ${i}`, [unknownId()], { depthPlus: 1 }));
      fake.onRequest = () => 'hang';
      const from = fake.requests.length;
      const res = await send(pdus.map((p) => p.pdu));
      expect(res.status).toBe(200);
      for (const p of pdus) expect(typeof res.body.pdus[p.id]?.error, p.id).toBe('string');
      const gme = since(from, isGme(roomId)).length;
      const event = since(from, isEvent).length;
      console.info(`all hang: get_missing_events ${gme}, state ${since(from, isState(roomId)).length}, event ${event}`);
      // One get_missing_events and one /event waited out; the later PDUs were not made to wait for them again.
      expect(gme).toBe(1);
      expect(event).toBe(1);
      expect(await inTimeline(pdus.map((p) => p.id))).toEqual([]);
      // The origin's queue is free: a PDU without a gap in its next transaction is placed.
      const ok = await message(roomId, 'no gap');
      const next = await send([ok.pdu]);
      expect(next.status).toBe(200);
      expect(next.body.pdus[ok.id]).toEqual({});
      expect(await inTimeline([ok.id])).toEqual([ok.id]);
      await stillResponsive();
    } finally {
      await fake.close();
      fake = first;
      sender = `@x:${fake.serverName}`;
    }
  }, 240_000);
});

/**
 * Federation between real Axons over HTTPS on the loopback (two servers, A
 * and B, `localhost:<port>` names, the test CA; test/helpers/federation.ts),
 * plus recording fake remotes for the fan-out. Prints figures only.
 * Run: npx tsx bench/federation.ts (FED_BIG_ROOM=10000 adds the
 * 10,000-member join, FED_ONLY=ac only parts (a) and (c), FED_INBOUND_PDUS the
 * size of (a); AXON_TEST_DB=embedded runs on PGlite).
 *
 * (a) inbound /send: PDUs/s verified and persisted on A from B into one
 *     room, in transactions of 50 PDUs, each PDU signed by B (a chain of
 *     messages, built and signed before the clock starts), and the RSS
 *     during it;
 * (b) fan-out: A sends to 10 joined destinations (fake remotes whose joins
 *     are persisted on A as received events); events/s from the first send
 *     to all 10 having all N events, (b1) sent one after another over the
 *     client API, (b2) N events committed at once (the sender alone);
 * (c) joining a big room: 1,000 members on A (joins persisted through A's
 *     event pipeline, signed by A, no accounts), a user on B joins over
 *     federation (make_join, send_join, verifying and storing the state and
 *     auth chain): time, PDUs verified per second, peak RSS;
 * (d) send → remote sync: bob on B long-polls /sync, alice on A sends; the
 *     time from the send request to bob's answer carrying it (p50/p95).
 *
 * Both servers and this script run in one process: every RSS figure is of
 * the whole process (A, B, their pools, the fake remotes and the clients).
 * rc_federation, rc_message and rc_joins are loosened so the figures are
 * of the work, not of the rate limiters.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do.
 */
import pg from 'pg';
import { request, type Agent } from 'undici';
import { eventId as computeEventId } from '../src/core/event-id.js';
import { hashAndSignEvent } from '../src/core/event-signing.js';
import type { PDU } from '../src/core/pdu.js';
import { xMatrixAuthorization } from '../src/core/x-matrix.js';
import { joinRemoteUser, startFakeRemote, type FakeRemote } from '../test/helpers/fake-remote.js';
import { startFederationServers, type FederationServer } from '../test/helpers/federation.js';
import { remoteEvent } from '../test/helpers/remote-member.js';
import { testCaAgent } from '../test/helpers/test-ca.js';
import { api, createUser, type TestUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const ROOM_VERSION = '11';
const INBOUND_PDUS = Number(process.env.FED_INBOUND_PDUS ?? 2000);
const TXN_SIZE = 50;
const DESTINATIONS = 10;
const FANOUT_CLIENT_EVENTS = 200;
const FANOUT_BULK_EVENTS = 1000;
const BIG_ROOMS = [1000, ...(process.env.FED_BIG_ROOM ? [Number(process.env.FED_BIG_ROOM)] : [])];
const LATENCY_MESSAGES = 100;
/** FED_ONLY=ac runs only (a) and (c). */
const ONLY = process.env.FED_ONLY ?? 'abcd';
const LOOSE = { per_second: 1_000_000, burst_count: 1_000_000 };
const YAML = {
  rc_message: LOOSE,
  rc_joins: { local: LOOSE, remote: LOOSE },
  rc_invites: { per_room: LOOSE, per_user: LOOSE },
  rc_federation: { window_size: 1000, sleep_limit: 1_000_000, sleep_delay: 0, reject_limit: 1_000_000, concurrent: 1000 },
};

const enc = encodeURIComponent;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Samples the process's RSS every 10 ms until stopped; the peak and the mean. */
function rssSampler(): { stop(): { peak: number; mean: number } } {
  let peak = process.memoryUsage().rss;
  let sum = 0;
  let n = 0;
  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    sum += rss;
    n++;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return { peak, mean: n ? sum / n : peak };
    },
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** SQL statements sent to PostgreSQL by anyone in this process (both servers; not counted on PGlite). */
let statements = 0;
const clientProto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
const originalQuery = clientProto.query;
/** FED_SQL=1: the statements of (a), counted by their text, printed after it. */
const byText = process.env.FED_SQL ? new Map<string, number>() : undefined;
clientProto.query = function (this: unknown, ...a: unknown[]) {
  statements++;
  if (byText) {
    const q = a[0];
    const text = typeof q === 'string' ? q : typeof q === 'object' && q !== null ? String((q as { text?: unknown }).text ?? '?') : '?';
    const key = text.replace(/\s+/g, ' ').slice(0, 160);
    byText.set(key, (byText.get(key) ?? 0) + 1);
  }
  return originalQuery.apply(this, a);
};
const perPdu = (q: number, n: number) => (q === 0 ? 'statements not counted on PGlite' : `${(q / n).toFixed(1)} SQL statements per PDU (both servers)`);

let agent: Agent;

/** A federation request from `from` to `to`, signed with `from`'s key. */
async function fed(from: FederationServer, to: FederationServer, method: 'PUT' | 'GET', uri: string, body?: unknown) {
  const auth = xMatrixAuthorization({ method, uri, origin: from.serverName, destination: to.serverName, content: body }, from.test.server.ctx.keys.current);
  const res = await request(`${to.url}${uri}`, {
    method,
    dispatcher: agent,
    headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function createRoom(s: FederationServer, u: TestUser, body: Record<string, unknown>): Promise<string> {
  const res = await api(s.test, 'POST', '/_matrix/client/v3/createRoom', { token: u.accessToken, body: { room_version: ROOM_VERSION, ...body } });
  if (res.status !== 200) throw new Error(`createRoom answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.room_id as string;
}

async function joinVia(s: FederationServer, u: TestUser, roomId: string, via: FederationServer): Promise<void> {
  const res = await api(s.test, 'POST', `/_matrix/client/v3/join/${enc(roomId)}?via=${enc(via.serverName)}`, { token: u.accessToken, body: {} });
  if (res.status !== 200) throw new Error(`join answered ${res.status} ${JSON.stringify(res.body)}`);
}

let txn = 0;
async function send(s: FederationServer, u: TestUser, roomId: string, body: string): Promise<string> {
  const res = await api(s.test, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/f${++txn}`, { token: u.accessToken, body: { msgtype: 'm.text', body } });
  if (res.status !== 200) throw new Error(`send answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.event_id as string;
}

async function eventsInRoom(s: FederationServer, roomId: string): Promise<number> {
  const db = s.test.server.ctx.database.db;
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('room_id', '=', roomId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** (a) B's user sends a chain of messages into A's room over /send, 50 PDUs a transaction. */
async function inbound(a: FederationServer, b: FederationServer, alice: TestUser, bob: TestUser): Promise<void> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat' });
  await joinVia(b, bob, roomId, a);
  // The first message as B would build it on A's state; the rest chained on it, each signed by B.
  const first = await remoteEvent(a, b, roomId, bob.userId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'inbound 0' } });
  const { hashes: _h, signatures: _s, ...template } = first;
  const key = b.test.server.ctx.keys.current;
  const pdus: PDU[] = [first];
  let prev = computeEventId(first, ROOM_VERSION);
  for (let i = 1; i < INBOUND_PDUS; i++) {
    const pdu = hashAndSignEvent(
      { ...template, content: { msgtype: 'm.text', body: `inbound ${i}` }, prev_events: [prev], depth: first.depth + i, origin_server_ts: Date.now() },
      ROOM_VERSION,
      b.serverName,
      key,
    ) as PDU;
    pdus.push(pdu);
    prev = computeEventId(pdu, ROOM_VERSION);
  }
  // One small transaction first, so A has fetched B's key before the clock starts.
  const warm = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/warm${Date.now()}`, { origin: b.serverName, origin_server_ts: Date.now(), pdus: [pdus[0]] });
  if (warm.status !== 200) throw new Error(`/send answered ${warm.status} ${JSON.stringify(warm.body)}`);
  const before = await eventsInRoom(a, roomId);
  const rss = rssSampler();
  const q0 = statements;
  byText?.clear();
  const start = performance.now();
  let errors = 0;
  for (let i = 1; i < pdus.length; i += TXN_SIZE) {
    const body = { origin: b.serverName, origin_server_ts: Date.now(), pdus: pdus.slice(i, i + TXN_SIZE) };
    const res = await fed(b, a, 'PUT', `/_matrix/federation/v1/send/in${Date.now()}_${i}`, body);
    if (res.status !== 200) throw new Error(`/send answered ${res.status} ${JSON.stringify(res.body)}`);
    errors += Object.values(res.body.pdus as Record<string, { error?: string }>).filter((r) => r.error !== undefined).length;
  }
  const ms = performance.now() - start;
  const q = statements - q0;
  const { peak, mean } = rss.stop();
  const stored = (await eventsInRoom(a, roomId)) - before;
  const n = pdus.length - 1;
  console.log(
    `(a) inbound /send, room v${ROOM_VERSION}, one origin, one room, ${n} PDUs in ${Math.ceil(n / TXN_SIZE)} transactions of ${TXN_SIZE}, one after another: ` +
      `${(n / (ms / 1000)).toFixed(0)} PDUs/s verified and persisted (${secs(ms)}; ${stored} stored, ${errors} refused; ${perPdu(q, n)}); ` +
      `RSS during it (whole process) mean ${mib(mean)}, peak ${mib(peak)}`,
  );
  if (byText) for (const [text, count] of [...byText].sort((x, y) => y[1] - x[1])) console.log(`  ${(count / n).toFixed(2)}/PDU  ${text}`);
}

/** (b) A sends to 10 fake remotes, each with a user joined to the room. */
async function fanout(a: FederationServer, alice: TestUser): Promise<void> {
  const remotes: FakeRemote[] = [];
  for (let i = 0; i < DESTINATIONS; i++) remotes.push(await startFakeRemote());
  try {
    const roomId = await createRoom(a, alice, { preset: 'public_chat' });
    for (const r of remotes) await joinRemoteUser(a.test, r, roomId, `@u:${r.serverName}`);
    const count = (r: FakeRemote, prefix: string) =>
      r.accepted().filter((p) => p['type'] === 'm.room.message' && String((p['content'] as { body?: unknown }).body).startsWith(prefix)).length;
    const all = (prefix: string, n: number) => remotes.every((r) => count(r, prefix) >= n);

    // (b1) over the client API, one send after another.
    const start = performance.now();
    for (let i = 0; i < FANOUT_CLIENT_EVENTS; i++) await send(a, alice, roomId, `fan1 ${i}`);
    const sent = performance.now() - start;
    await until(() => all('fan1 ', FANOUT_CLIENT_EVENTS), 'fan-out b1');
    const ms = performance.now() - start;
    const txns1 = remotes.reduce((n, r) => n + r.sends.length, 0);
    console.log(
      `(b1) fan-out, room v${ROOM_VERSION}, ${DESTINATIONS} destinations (fake remotes on the loopback), ${FANOUT_CLIENT_EVENTS} events sent one after another over the client API: ` +
        `all ${DESTINATIONS} had all of them ${secs(ms)} after the first send (the sends alone took ${secs(sent)}): ` +
        `${(FANOUT_CLIENT_EVENTS / (ms / 1000)).toFixed(0)} events/s to every destination, ${((FANOUT_CLIENT_EVENTS * DESTINATIONS) / (ms / 1000)).toFixed(0)} PDU deliveries/s, ` +
        `${txns1} transactions (including the joins' EDUs)`,
    );

    // (b2) N events committed at once: the sender alone.
    for (const r of remotes) r.sends.length = 0;
    const { pipeline } = a.test.server.ctx.services.rooms;
    await pipeline.roomTransaction(roomId, async (tx) => {
      for (let i = 0; i < FANOUT_BULK_EVENTS; i++) {
        await pipeline.persist(tx, await pipeline.room(tx, roomId), alice.userId, { type: 'm.room.message', content: { msgtype: 'm.text', body: `fan2 ${i}` } });
      }
    });
    const start2 = performance.now();
    await until(() => all('fan2 ', FANOUT_BULK_EVENTS), 'fan-out b2');
    const ms2 = performance.now() - start2;
    const txns2 = remotes.reduce((n, r) => n + r.sends.length, 0);
    console.log(
      `(b2) fan-out, ${FANOUT_BULK_EVENTS} events committed in one transaction, then sent to ${DESTINATIONS} destinations: ` +
        `all had all of them after ${secs(ms2)} (from the commit): ${(FANOUT_BULK_EVENTS / (ms2 / 1000)).toFixed(0)} events/s to every destination, ` +
        `${((FANOUT_BULK_EVENTS * DESTINATIONS) / (ms2 / 1000)).toFixed(0)} PDU deliveries/s, ${txns2} transactions`,
    );
  } finally {
    await Promise.all(remotes.map((r) => r.close()));
  }
}

/** (c) A room of `members` members on A; a user on B joins it over federation. */
async function bigJoin(a: FederationServer, b: FederationServer, alice: TestUser, members: number, joiner: TestUser): Promise<void> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat', name: `${members} members` });
  const { pipeline } = a.test.server.ctx.services.rooms;
  const buildStart = performance.now();
  const BATCH = 200;
  for (let done = 0; done < members - 1; done += BATCH) {
    await pipeline.roomTransaction(roomId, async (tx) => {
      for (let i = done; i < Math.min(done + BATCH, members - 1); i++) {
        const userId = `@m${members}_${i}:${a.serverName}`;
        await pipeline.persist(tx, await pipeline.room(tx, roomId), userId, { type: 'm.room.member', state_key: userId, content: { membership: 'join' } });
      }
    });
  }
  const buildMs = performance.now() - buildStart;
  const rssBefore = process.memoryUsage().rss;
  const rss = rssSampler();
  const q0 = statements;
  byText?.clear();
  const start = performance.now();
  await joinVia(b, joiner, roomId, a);
  const ms = performance.now() - start;
  const q = statements - q0;
  const { peak } = rss.stop();
  // What B holds of the room: the state and auth chain send_join answered (outliers), and the join.
  const received = (await eventsInRoom(b, roomId)) - 1;
  console.log(
    `(c) join over federation, room v${ROOM_VERSION} of ${members} members on A (built in ${secs(buildMs)}, joins persisted through A's pipeline): ` +
      `joined after ${secs(ms)}; ${received} PDUs of state and auth chain verified and stored on B: ${(received / (ms / 1000)).toFixed(0)} PDUs/s (${perPdu(q, received)}); ` +
      `RSS (whole process: A, B and this script) ${mib(rssBefore)} before, peak ${mib(peak)} during (+${mib(peak - rssBefore)})`,
  );
}

/** (d) bob on B long-polls /sync; alice on A sends; the time until bob's answer carries it. */
async function latency(a: FederationServer, b: FederationServer, alice: TestUser, bob: TestUser): Promise<void> {
  const roomId = await createRoom(a, alice, { preset: 'public_chat' });
  await joinVia(b, bob, roomId, a);
  const sync = async (params: Record<string, string>) => {
    const res = await api(b.test, 'GET', `/_matrix/client/v3/sync?${new URLSearchParams({ set_presence: 'offline', ...params })}`, { token: bob.accessToken });
    if (res.status !== 200) throw new Error(`sync answered ${res.status}`);
    return res.body as { next_batch: string; rooms?: { join?: Record<string, { timeline: { events: { content: { body?: string } }[] } }> } };
  };
  let since = (await sync({ filter: JSON.stringify({ room: { timeline: { limit: 1 } } }) })).next_batch;
  const notifier = b.test.server.ctx.services.notifier;
  const times: number[] = [];
  for (let i = 0; i < LATENCY_MESSAGES; i++) {
    const body = `latency ${i}`;
    let seen = false;
    const poll = (async () => {
      while (!seen) {
        const s = await sync({ since, timeout: '30000' });
        since = s.next_batch;
        if (s.rooms?.join?.[roomId]?.timeline.events.some((e) => e.content.body === body)) seen = true;
      }
      return performance.now();
    })();
    await until(() => notifier.waiters() > 0, 'the long-poll to wait');
    const start = performance.now();
    await send(a, alice, roomId, body);
    times.push((await poll) - start);
  }
  console.log(
    `(d) send on A → bob's long-polling /sync on B, room v${ROOM_VERSION}, ${LATENCY_MESSAGES} messages one after another: ` +
      `p50 ${percentile(times, 50).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms`,
  );
}

async function main(): Promise<void> {
  const t0 = performance.now();
  agent = testCaAgent();
  const [a, b] = await startFederationServers(2, { yaml: YAML });
  try {
    const kind = a!.test.server.ctx.database.kind;
    console.log(
      `node ${process.version}, ${process.platform}/${process.arch}; two Axons in this process over HTTPS on the loopback, on ${kind === 'embedded' ? 'PGlite' : 'PostgreSQL'}`,
    );
    console.log(`RSS after start: ${mib(process.memoryUsage().rss)}`);
    const alice = await createUser(a!.test, 'alice');
    const bob = await createUser(b!.test, 'bob');
    if (ONLY.includes('a')) await inbound(a!, b!, alice, bob);
    if (ONLY.includes('b')) await fanout(a!, alice);
    if (ONLY.includes('c')) for (const members of BIG_ROOMS) await bigJoin(a!, b!, alice, members, await createUser(b!.test, `joiner${members}`));
    if (ONLY.includes('d')) await latency(a!, b!, alice, await createUser(b!.test, 'bob2'));
    console.log(`total ${secs(performance.now() - t0)}`);
  } finally {
    await Promise.all([a?.close(), b?.close()]);
    await agent.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

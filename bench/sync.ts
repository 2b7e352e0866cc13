/**
 * /sync on the real server over HTTP, on PostgreSQL. Prints figures only.
 * Run: npx tsx bench/sync.ts (AXON_TEST_DB=embedded runs it on PGlite).
 *
 * (a) delivery latency: 100 clients (on a worker thread, their own event
 *     loop) long-poll /sync in one room; a sender
 *     posts messages one at a time; the time from the send request to each
 *     waiting client receiving the event (median, p99);
 * (b) initial sync of a user in 200 rooms (each with a few messages and a
 *     second member), cold and warm, and its size;
 * (c) messages per second sent into one room and spread over 100 rooms,
 *     with the 100 clients still long-polling, and how many /sync answers
 *     carried them (sooner answers carry fewer messages each and leave
 *     less CPU for the senders on this one machine, so read the two together);
 * and the process's RSS (server, database pool and this script) after each.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do.
 */
import { Worker } from 'node:worker_threads';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { api, createUser, type TestUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const CLIENTS = 100;
const LATENCY_MESSAGES = 40;
const ROOMS = 200;
const RATE_MESSAGES = 400;
const LOOSE = { per_second: 1_000_000, burst_count: 1_000_000 };

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const ms = (n: number) => `${n.toFixed(1)} ms`;
const enc = encodeURIComponent;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

type Json = Record<string, any>;

/** The long-polling clients: each syncs in a loop and reports when a "latency" message reaches it. */
const CLIENT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, tokens } = workerData;
let answered = 0;
parentPort.on('message', (m) => { if (m === 'answered') parentPort.postMessage({ answered }); });
async function sync(token, params) {
  const res = await fetch(url + '/_matrix/client/v3/sync?' + new URLSearchParams(params), { headers: { authorization: 'Bearer ' + token } });
  if (res.status !== 200) throw new Error('sync answered ' + res.status);
  return res.json();
}
for (const token of tokens) {
  (async () => {
    let since = (await sync(token, { filter: JSON.stringify({ room: { timeline: { limit: 1 } } }), set_presence: 'offline' })).next_batch;
    for (;;) {
      const s = await sync(token, { since, timeout: '30000', set_presence: 'offline' });
      answered++;
      const at = performance.timeOrigin + performance.now();
      for (const r of Object.values(s.rooms.join)) for (const e of r.timeline.events) {
        if (typeof e.content.body === 'string' && e.content.body.startsWith('latency')) parentPort.postMessage({ eventId: e.event_id, at });
      }
      since = s.next_batch;
    }
  })();
}
`;

async function sync(t: TestServer, u: TestUser, params: Record<string, string | number> = {}, signal?: AbortSignal): Promise<Json> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`${t.url}/_matrix/client/v3/sync?${q}`, { headers: { authorization: `Bearer ${u.accessToken}` }, signal });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`sync answered ${res.status} ${text.slice(0, 200)}`);
  return Object.assign(JSON.parse(text) as Json, { __bytes: text.length });
}

let txn = 0;
async function send(t: TestServer, u: TestUser, roomId: string, body: string): Promise<string> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/b${++txn}`, { token: u.accessToken, body: { msgtype: 'm.text', body } });
  if (res.status !== 200) throw new Error(`send answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.event_id as string;
}

async function createRoom(t: TestServer, u: TestUser, body: object): Promise<string> {
  const res = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: u.accessToken, body });
  if (res.status !== 200) throw new Error(`createRoom answered ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.room_id as string;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  const t = await startTestServer({
    yaml: { rc_message: LOOSE, rc_joins: { local: LOOSE, remote: LOOSE }, rc_invites: { per_room: LOOSE, per_user: LOOSE } },
  });
  try {
    const kind = t.server.ctx.database.kind;
    console.log(`server on ${kind === 'embedded' ? 'embedded PostgreSQL (PGlite)' : 'PostgreSQL'}`);
    console.log(`RSS after start: ${mib(process.memoryUsage().rss)}`);

    // ---- (a) delivery latency to 100 long-polling clients
    const sender = await createUser(t, 'sender');
    const hall = await createRoom(t, sender, { preset: 'public_chat', name: 'Hall' });
    const clients: TestUser[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const u = await createUser(t, `client${i}`);
      await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(hall)}/join`, { token: u.accessToken, body: {} });
      clients.push(u);
    }
    // Baseline for (c): the same room while nobody syncs.
    {
      const start = performance.now();
      for (let i = 0; i < 50; i++) await send(t, sender, hall, `quiet ${i}`);
      const secs = (performance.now() - start) / 1000;
      console.log(`(c) baseline: one room (${CLIENTS + 1} members, nobody syncing), one sender after another: ${(50 / secs).toFixed(0)} msgs/s`);
    }

    // The clients run on their own thread (their own event loop), as remote clients would.
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const received = new Map<string, number>();
    const worker = new Worker(CLIENT_WORKER, { eval: true, workerData: { url: t.url, tokens: clients.map((c) => c.accessToken) } });
    let onAnswered: ((n: number) => void) | undefined;
    worker.on('message', (m: { eventId: string; at: number } | { answered: number }) => {
      if ('answered' in m) return onAnswered?.(m.answered);
      const at = sentAt.get(m.eventId);
      if (at === undefined) return;
      latencies.push(m.at - at);
      received.set(m.eventId, (received.get(m.eventId) ?? 0) + 1);
    });
    const parked = async () => {
      for (let i = 0; i < 2000 && t.server.ctx.services.notifier.waiters() < CLIENTS; i++) await new Promise((r) => setTimeout(r, 5));
    };
    /** How many long-poll answers the clients have had so far. */
    const answered = () => new Promise<number>((resolve) => ((onAnswered = resolve), worker.postMessage('answered')));
    /** The long-poll answers during a phase: how many messages each carried to a client, on average, tells how the wake-ups batched. */
    const answers = (before: number, after: number, messages: number) =>
      `${after - before} /sync answers, ${((messages * CLIENTS) / Math.max(1, after - before)).toFixed(1)} messages per answer`;
    await parked();
    console.log(`(a) ${CLIENTS} clients long-polling (on a worker thread); RSS ${mib(process.memoryUsage().rss)}`);
    for (let i = 0; i < LATENCY_MESSAGES; i++) {
      await parked();
      const start = performance.timeOrigin + performance.now();
      const id = await send(t, sender, hall, `latency ${i}`);
      sentAt.set(id, start);
      // Let every client get it before the next one.
      for (let k = 0; k < 5000 && (received.get(id) ?? 0) < CLIENTS; k++) await new Promise((r) => setTimeout(r, 1));
    }
    console.log(
      `(a) delivery, send request to waiting /sync, ${LATENCY_MESSAGES} messages x ${CLIENTS} clients: ` +
        `median ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))} ` +
        `(${latencies.length} deliveries); RSS ${mib(process.memoryUsage().rss)}`,
    );

    // ---- (b) initial sync of a user in 200 rooms
    const busy = await createUser(t, 'busy');
    const friend = await createUser(t, 'friend');
    const setupStart = performance.now();
    const rooms: string[] = [];
    for (let i = 0; i < ROOMS; i++) {
      const r = await createRoom(t, busy, { preset: 'public_chat', name: `Room ${i}`, topic: `Topic ${i}` });
      await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(r)}/join`, { token: friend.accessToken, body: {} });
      for (let m = 0; m < 3; m++) await send(t, m % 2 ? busy : friend, r, `message ${m} in room ${i}`);
      rooms.push(r);
    }
    console.log(`(b) set up ${ROOMS} rooms (create, join, 3 messages each) in ${(performance.now() - setupStart).toFixed(0)} ms`);
    for (const label of ['first', 'second', 'third']) {
      const start = performance.now();
      const s = await sync(t, busy);
      const took = performance.now() - start;
      console.log(
        `(b) initial sync, ${label}: ${ms(took)}, ${Object.keys(s.rooms.join).length} rooms, ${(s.__bytes / 1024).toFixed(0)} KiB; RSS ${mib(process.memoryUsage().rss)}`,
      );
    }
    {
      const lazy = JSON.stringify({ room: { state: { lazy_load_members: true } } });
      const start = performance.now();
      const s = await sync(t, busy, { filter: lazy });
      console.log(`(b) initial sync with lazy-loaded members: ${ms(performance.now() - start)}, ${(s.__bytes / 1024).toFixed(0)} KiB`);
      const since = s.next_batch as string;
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const st = performance.now();
        await sync(t, busy, { since, filter: lazy });
        times.push(performance.now() - st);
      }
      console.log(`(b) incremental sync with nothing new (200 rooms): median ${ms(percentile(times, 50))}, p99 ${ms(percentile(times, 99))}`);
    }

    // ---- (c) messages per second, with the long-pollers connected
    {
      const before = await answered();
      const start = performance.now();
      for (let i = 0; i < RATE_MESSAGES / 4; i++) await send(t, sender, hall, `rate ${i}`);
      const secs = (performance.now() - start) / 1000;
      await parked();
      console.log(
        `(c) one room (${CLIENTS} members long-polling), one sender after another: ${(RATE_MESSAGES / 4 / secs).toFixed(0)} msgs/s ` +
          `(${answers(before, await answered(), RATE_MESSAGES / 4)}); RSS ${mib(process.memoryUsage().rss)}`,
      );
    }
    {
      const before = await answered();
      const start = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < RATE_MESSAGES) {
            const i = next++;
            await send(t, sender, hall, `burst ${i}`);
          }
        }),
      );
      const secs = (performance.now() - start) / 1000;
      await parked();
      const got = await answered();
      const untilParked = (performance.now() - start) / 1000;
      console.log(
        `(c) one room, 8 concurrent senders: ${(RATE_MESSAGES / secs).toFixed(0)} msgs/s, ${((got - before) / untilParked).toFixed(0)} /sync answers/s ` +
          `(${answers(before, got, RATE_MESSAGES)}); RSS ${mib(process.memoryUsage().rss)}`,
      );
    }
    {
      const spread = rooms.slice(0, 100);
      const start = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < RATE_MESSAGES) {
            const i = next++;
            await send(t, busy, spread[i % spread.length] as string, `spread ${i}`);
          }
        }),
      );
      const secs = (performance.now() - start) / 1000;
      console.log(`(c) spread over 100 rooms, 8 concurrent senders: ${(RATE_MESSAGES / secs).toFixed(0)} msgs/s; RSS ${mib(process.memoryUsage().rss)}`);
    }

    await worker.terminate();
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

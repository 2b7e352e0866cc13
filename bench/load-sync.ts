/**
 * Send → sync latency under a crowd, against the built server in its own
 * process (as it runs in production). Prints figures only.
 *
 *   npm run build && node dist/bench/load-sync.js            (PostgreSQL, then embedded)
 *   LOAD_DB=embedded LOAD_SENDS=2000 node dist/bench/load-sync.js
 *   LOAD_PROFILE=/tmp/prof …   (the server's CPU profile, for Chrome DevTools)
 *
 * 100 clients long-poll /sync (timeout 30 s), 25 in each of 4 rooms; 10
 * senders, each a member of all four rooms, send in turn to one room after
 * another, each waiting LOAD_THINK_MS (default 100) between its sends.
 * Every message carries its send time (integer µs: event content has no floats); each client records, for every
 * message it receives, the time from the send request to the /sync response
 * that brought it. Prints p50/p99/max over all deliveries, whether every
 * delivery arrived exactly once, sends per second, and the server's RSS
 * (from /proc) before, during and after.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { formatSigningKeyFile, generateSigningKey } from '../src/core/signing.js';
import { createTestDatabase, testDatabaseKind } from '../test/helpers/database.js';
import { freePort } from '../test/helpers/ports.js';
import { type Child, runMain } from '../test/helpers/process.js';

const POLLERS = 100;
const ROOMS = 4;
const SENDERS = 10;
const SENDS = Number(process.env.LOAD_SENDS ?? 2000);
const THINK_MS = Number(process.env.LOAD_THINK_MS ?? 100);
const enc = encodeURIComponent;
/** A timeline limit above what can pile up between two polls, so that no sync is `limited` (no gaps to page back through). */
const FILTER = enc(JSON.stringify({ room: { timeline: { limit: 200 } } }));

type Json = Record<string, any>;

const agent = new Agent({ connections: POLLERS + SENDERS + 10, keepAliveTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });

const progress = (line: string) => process.stderr.write(`  … ${line}\n`);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Connections refused or reset and retried (as a real client retries), reported with the figures. */
let reconnects = 0;

async function call(base: string, method: 'GET' | 'POST' | 'PUT', path: string, token?: string, body?: unknown): Promise<{ status: number; json: Json }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await request(`${base}${path}`, {
        method,
        dispatcher: agent,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      return { status: res.statusCode, json: text ? (JSON.parse(text) as Json) : {} };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt < 5 && (code === 'ECONNREFUSED' || code === 'ECONNRESET')) {
        reconnects++;
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
        continue;
      }
      throw new Error(`${method} ${path.split('?')[0]}: ${(err as Error).message}`);
    }
  }
}

async function register(base: string, name: string): Promise<string> {
  const body = { username: name, password: `pw-${name}-long-enough`, initial_device_display_name: 'load' };
  const first = await call(base, 'POST', '/_matrix/client/v3/register', undefined, body);
  const done =
    first.status === 200 ? first : await call(base, 'POST', '/_matrix/client/v3/register', undefined, { ...body, auth: { type: 'm.login.dummy', session: first.json.session } });
  if (done.status !== 200) throw new Error(`register ${name}: ${done.status} ${JSON.stringify(done.json)}`);
  return done.json.access_token as string;
}

async function startServer(kind: 'postgres' | 'embedded'): Promise<{ base: string; child: Child; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'axon-load-'));
  const port = await freePort();
  const keyPath = join(dir, 'k.key');
  writeFileSync(keyPath, formatSigningKeyFile([generateSigningKey()]));
  let drop: (() => Promise<void>) | undefined;
  let database: Json = { name: 'sqlite3', args: { database: join(dir, 'homeserver.db') } };
  if (kind === 'postgres') {
    const db = await createTestDatabase();
    drop = db.drop;
    database = { name: 'psycopg2', args: { user: 'postgres', host: '127.0.0.1', database: db.name, cp_min: 5, cp_max: 10 } };
  }
  const loose = { per_second: 1_000_000, burst_count: 1_000_000 };
  const cfg = join(dir, 'homeserver.yaml');
  writeFileSync(
    cfg,
    stringify({
      server_name: 'load.test',
      signing_key_path: keyPath,
      media_store_path: join(dir, 'media'),
      database,
      listeners: [{ port, type: 'http', bind_addresses: ['127.0.0.1'], resources: [{ names: ['client'] }] }],
      enable_registration: true,
      enable_registration_without_verification: true,
      bcrypt_rounds: 4,
      report_stats: false,
      rc_message: loose,
      rc_registration: loose,
      rc_login: { address: loose, account: loose, failed_attempts: loose },
      rc_joins: { local: loose, remote: loose },
      rc_invites: { per_room: loose, per_user: loose, per_issuer: loose },
      rc_joins_per_room: loose,
      rc_room_creation: loose,
    }),
  );
  // LOAD_PROFILE=dir writes the server's CPU profile there when it exits.
  const nodeArgs = process.env.LOAD_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LOAD_PROFILE}`] : [];
  const child = runMain(['-c', cfg], { cwd: dir, nodeArgs, env: { AXON_LOG_LEVEL: process.env.LOAD_LOG_LEVEL ?? 'warn', DATABASE_URL: '' } });
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`server exited: ${child.output()}`);
    try {
      if ((await request(`${base}/health`, { dispatcher: agent }).then((r) => r.body.text().then(() => r.statusCode))) === 200) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    base,
    child,
    cleanup: async () => {
      child.proc.kill('SIGTERM');
      await child.exited;
      // LOAD_LOG=file keeps the server's output (with LOAD_LOG_LEVEL=debug: every SQL statement and its time).
      if (process.env.LOAD_LOG) writeFileSync(process.env.LOAD_LOG, child.output());
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Poller {
  token: string;
  room: string;
  since: string;
  latencies: number[];
  seen: Set<string>;
  duplicates: number;
}

async function run(kind: 'postgres' | 'embedded'): Promise<void> {
  const { base, child, cleanup } = await startServer(kind);
  const pid = child.proc.pid ?? 0;
  try {
    const owner = await register(base, 'owner');
    const rooms: string[] = [];
    for (let r = 0; r < ROOMS; r++) {
      const res = await call(base, 'POST', '/_matrix/client/v3/createRoom', owner, { preset: 'public_chat', name: `load ${r}` });
      rooms.push(res.json.room_id as string);
    }
    const join = async (token: string, room: string) => {
      const res = await call(base, 'POST', `/_matrix/client/v3/rooms/${enc(room)}/join`, token, {});
      if (res.status !== 200) throw new Error(`join: ${res.status} ${JSON.stringify(res.json)}`);
    };
    const senders: string[] = [];
    for (let s = 0; s < SENDERS; s++) {
      const token = await register(base, `sender${s}`);
      for (const room of rooms) await join(token, room);
      senders.push(token);
    }
    const pollers: Poller[] = [];
    for (let p = 0; p < POLLERS; p++) {
      const token = await register(base, `poller${p}`);
      const room = rooms[p % ROOMS]!;
      await join(token, room);
      const initial = await call(base, 'GET', '/_matrix/client/v3/sync?timeout=0', token);
      pollers.push({ token, room, since: initial.json.next_batch as string, latencies: [], seen: new Set(), duplicates: 0 });
    }
    const rssBefore = rssMiB(pid);
    progress(`${kind}: ${POLLERS} pollers and ${SENDERS} senders ready; sending`);

    let sending = true;
    let sent = 0;
    const perRoom = rooms.map(() => 0); // messages sent to each room
    const expectedFor = (room: string) => perRoom[rooms.indexOf(room)] ?? 0;
    const poll = async (p: Poller) => {
      for (;;) {
        const res = await call(base, 'GET', `/_matrix/client/v3/sync?timeout=30000&filter=${FILTER}&since=${enc(p.since)}`, p.token);
        const now = performance.now();
        if (res.status !== 200) throw new Error(`sync: ${res.status} ${JSON.stringify(res.json)}`);
        p.since = res.json.next_batch as string;
        const events = (res.json.rooms?.join?.[p.room]?.timeline?.events ?? []) as Json[];
        for (const e of events) {
          const mark = e.content?.load as { id: string; us: number } | undefined;
          if (!mark) continue;
          if (p.seen.has(mark.id)) p.duplicates++;
          else {
            p.seen.add(mark.id);
            p.latencies.push(now - mark.us / 1000);
          }
        }
        if (!sending && p.seen.size >= expectedFor(p.room)) return;
      }
    };
    const polling = pollers.map((p) => poll(p));
    // A poller's failure ends the run with its error (not an unhandled rejection later).
    let pollFailure: unknown;
    for (const p of polling) p.catch((err: unknown) => (pollFailure ??= err));
    const rssSamples: number[] = [];
    const sampler = setInterval(() => rssSamples.push(rssMiB(pid)), 1000);

    const sendStart = performance.now();
    const sendTimes: number[] = [];
    await Promise.all(
      senders.map(async (token, s) => {
        for (let i = 0; ; i++) {
          const n = sent++;
          if (n >= SENDS) return;
          const r = n % ROOMS;
          const id = `s${s}-${i}`;
          perRoom[r]!++;
          const t = performance.now();
          const res = await call(base, 'PUT', `/_matrix/client/v3/rooms/${enc(rooms[r]!)}/send/m.room.message/${id}`, token, {
            msgtype: 'm.text',
            body: `load ${id}`,
            load: { id, us: Math.round(t * 1000) },
          });
          sendTimes.push(performance.now() - t);
          if (res.status !== 200) throw new Error(`send: ${res.status} ${JSON.stringify(res.json)}`);
          if (THINK_MS > 0) await new Promise((resolve) => setTimeout(resolve, THINK_MS));
        }
      }),
    );
    const sendSeconds = (performance.now() - sendStart) / 1000;
    if (pollFailure) throw pollFailure;
    progress(`${kind}: sent ${SENDS} in ${sendSeconds.toFixed(1)} s; waiting for deliveries`);
    sending = false;
    // Wait for every poller to have everything (bounded), then let them drain.
    const deadline = performance.now() + 60_000;
    while (pollers.some((p) => p.seen.size < expectedFor(p.room)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    clearInterval(sampler);
    // Wake the pollers still waiting, so that they see sending is over.
    for (const room of rooms) await call(base, 'PUT', `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/end`, owner, { msgtype: 'm.text', body: 'end' });
    await Promise.race([Promise.all(polling), new Promise((r) => setTimeout(r, 35_000))]);
    const rssAfter = rssMiB(pid);

    const all = pollers.flatMap((p) => p.latencies).sort((a, b) => a - b);
    const wanted = pollers.reduce((n, p) => n + expectedFor(p.room), 0);
    const duplicates = pollers.reduce((n, p) => n + p.duplicates, 0);
    const sendSorted = sendTimes.sort((a, b) => a - b);
    const f = (n: number) => `${n.toFixed(0)} ms`;
    process.stdout.write(
      `${kind.padEnd(9)} ${SENDS} sends (${(SENDS / sendSeconds).toFixed(1)}/s), ${all.length}/${wanted} deliveries, ${duplicates} duplicates, ${reconnects} connections retried\n` +
        `          send→sync p50 ${f(percentile(all, 50))}  p99 ${f(percentile(all, 99))}  max ${f(all[all.length - 1] ?? NaN)}` +
        `   send request p50 ${f(percentile(sendSorted, 50))}  p99 ${f(percentile(sendSorted, 99))}\n` +
        `          server RSS ${rssBefore.toFixed(0)} MiB before, max ${Math.max(...rssSamples).toFixed(0)} MiB during, ${rssAfter.toFixed(0)} MiB after\n`,
    );
  } catch (err) {
    process.stderr.write(`server exit ${child.proc.exitCode} signal ${child.proc.signalCode}; output (last lines):\n${child.output().split('\n').slice(-30).join('\n')}\n`);
    throw err;
  } finally {
    await cleanup();
  }
}

process.stdout.write(`send→sync under load: ${POLLERS} long-pollers in ${ROOMS} rooms of ${POLLERS / ROOMS}, ${SENDERS} senders (think ${THINK_MS} ms), node ${process.version}\n`);
const only = process.env.LOAD_DB;
if (only !== 'embedded') {
  if ((await testDatabaseKind()) === 'postgres') await run('postgres');
  else process.stdout.write('postgres  (no server at 127.0.0.1:5432; skipped)\n');
}
if (only !== 'postgres') await run('embedded');
await agent.close();

/**
 * Query plans of the hot paths on a big room. Builds, on a fresh PostgreSQL
 * database, a public room with 5,000 members and 100,000 events (through
 * the EventPipeline, so every event is a real signed PDU with its state
 * groups, edges and current state), plus a few hundred small rooms around
 * it. Then it drives the real server over HTTP as a client would (initial
 * and incremental /sync, sending, /messages backwards and forwards,
 * /context, state, members, receipts, typing, presence, the user
 * directory), records every SQL statement the server runs for each
 * request, and prints EXPLAIN (ANALYZE, BUFFERS) for each distinct one,
 * flagging sequential scans on large tables. It asserts nothing.
 *
 *   npx tsx bench/explain.ts [--members 5000] [--events 100000] [--small-rooms 300] [--background 2000] [--sends 30] [--quiet] [--keep]
 *
 * --random-page-cost X sets that planner cost on the database before the
 * scenarios run (1.1 is the usual value for SSDs; PostgreSQL's default is 4).
 *
 * --sends N: after the plans, times N sequential message sends into the big
 * room (each runs the push rules for every member and stores their
 * notifications in the send's transaction) and prints median, p90 and max.
 *
 * --background N first fills the tables with N other rooms (20 members and
 * 50 events each, plain SQL rows that nobody in the scenarios belongs to),
 * so that the big room is not the whole database and the planner sees
 * proportions closer to a real server's.
 *
 * --quiet prints only the summary (one line per statement) and the flags;
 * --keep leaves the database in place (its name is printed) to try indexes on.
 * Needs PostgreSQL at 127.0.0.1:5432 (or AXON_TEST_PG_URL), as the tests do.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { sql } from 'kysely';
import { authEventSelection } from '../src/core/auth/index.js';
import { eventId as computeEventId } from '../src/core/event-id.js';
import { hashAndSignEvent } from '../src/core/event-signing.js';
import type { JsonObject, PDU } from '../src/core/pdu.js';
import { requireRoomVersion } from '../src/core/room-versions.js';
import type { Requester } from '../src/services/auth.js';
import type { EventDraft } from '../src/services/rooms/event-pipeline.js';
import { txnScope } from '../src/services/rooms/room-service.js';
import { recordTxn } from '../src/storage/events.js';
import { forwardExtremities, getRoom } from '../src/storage/rooms.js';
import { createStateGroup, currentState } from '../src/storage/state.js';
import { testDatabaseKind } from '../test/helpers/database.js';
import { type TestServer, startTestServer } from '../test/helpers/server.js';

const { values: args } = parseArgs({
  options: {
    members: { type: 'string', default: '5000' },
    events: { type: 'string', default: '100000' },
    'small-rooms': { type: 'string', default: '300' },
    background: { type: 'string', default: '2000' },
    sends: { type: 'string', default: '30' },
    'random-page-cost': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const MEMBERS = Number(args.members);
const EVENTS = Number(args.events);
const SMALL_ROOMS = Number(args['small-rooms']);
const BACKGROUND_ROOMS = Number(args.background);
const QUIET = args.quiet ?? false;
const SENDS = Number(args.sends);
const SERVER = 'bench.local';
/** Tables with more rows than this are "large": a sequential scan on them is flagged. */
const LARGE = 10_000;

const out = (s = '') => process.stdout.write(`${s}\n`);
const uid = (i: number) => `@u${i}:${SERVER}`;

// ---------------------------------------------------------------------------
// Recording the SQL the server runs: every pg client query in this process.

interface Captured {
  text: string;
  values: unknown[];
}
let capture: Captured[] | undefined;
const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
const originalQuery = proto.query;
proto.query = function (this: unknown, ...a: unknown[]) {
  const [first, second] = a;
  if (capture) {
    if (typeof first === 'string') capture.push({ text: first, values: Array.isArray(second) ? second : [] });
    else if (first && typeof first === 'object' && typeof (first as { text?: unknown }).text === 'string') {
      const q = first as { text: string; values?: unknown[] };
      capture.push({ text: q.text, values: q.values ?? [] });
    }
  }
  return originalQuery.apply(this, a);
};

async function recorded<T>(fn: () => Promise<T>): Promise<{ result: T; queries: Captured[] }> {
  const queries: Captured[] = [];
  capture = queries;
  try {
    const result = await fn();
    return { result, queries };
  } finally {
    capture = undefined;
  }
}

// ---------------------------------------------------------------------------
// Building the data.

function requester(userId: string): Requester {
  return { userId, localpart: userId.slice(1).split(':')[0] ?? '', deviceId: 'BENCH', tokenId: 0, isGuest: false, isAdmin: false, shadowBanned: false };
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const r = await fn();
  out(`  ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/** Persists drafts into a room through the pipeline, `batch` events per transaction (the real path, ~10 statements an event). */
async function persistMany(t: TestServer, roomId: string, drafts: Iterable<{ sender: string; draft: EventDraft; txn?: string }>, batch = 1000): Promise<string[]> {
  const { rooms } = t.server.ctx.services;
  const db = t.server.ctx.database.db;
  const pipeline = rooms.pipeline;
  const ids: string[] = [];
  let pending: { sender: string; draft: EventDraft; txn?: string }[] = [];
  const flush = async () => {
    const chunk = pending;
    pending = [];
    await pipeline.inRoomQueue(roomId, () =>
      pipeline.transaction(async (tx) => {
        const room = await pipeline.room(tx, roomId);
        for (const { sender, draft, txn } of chunk) {
          const p = await pipeline.persist(tx, room, sender, draft);
          if (txn) await recordTxn(tx, { userId: sender, deviceId: 'BENCH', scope: txnScope.send(roomId, draft.type), txnId: txn }, p.eventId, Date.now());
          ids.push(p.eventId);
        }
      }),
    );
  };
  for (const d of drafts) {
    pending.push(d);
    if (pending.length >= batch) await flush();
  }
  if (pending.length > 0) await flush();
  return ids;
}

/**
 * Appends events to a room in bulk, building exactly what the pipeline
 * stores (signed PDUs citing the previous event and their auth events,
 * a state group per state event through storage's createStateGroup, edges,
 * current state, forward extremity) but inserting a thousand rows per
 * statement. The auth rules are not run: the drafts are known to pass.
 * The pipeline needs ~10 round trips an event, far too slow for 100,000.
 */
async function bulkAppend(t: TestServer, roomId: string, items: Iterable<{ sender: string; draft: EventDraft; txn?: string }>): Promise<number> {
  const db = t.server.ctx.database.db;
  const keys = t.server.ctx.keys;
  const room = await getRoom(db, roomId);
  if (!room) throw new Error('no room');
  const rv = requireRoomVersion(room.room_version);
  if (!rv.eventIdListsOnly) throw new Error('bulkAppend builds v3+ events only');
  const state = new Map((await currentState(db, roomId)).map((r) => [`${r.type}\u0000${r.state_key}`, r.event_id]));
  const ext = await forwardExtremities(db, roomId);
  let prev = ext.map((e) => e.event_id);
  let depth = ext.reduce((d, e) => Math.max(d, e.depth), 0);
  let group = room.current_state_group;
  let n = 0;
  type Row = { id: string; pdu: PDU; before: number | null; txn?: string; sender: string; auth: string[]; prev: string[] };
  let rows: Row[] = [];
  const flush = async () => {
    const chunk = rows;
    rows = [];
    if (chunk.length === 0) return;
    await db.transaction().execute(async (tx) => {
      const inserted = await tx
        .insertInto('events')
        .values(
          chunk.map((r) => ({
            event_id: r.id,
            room_id: roomId,
            type: r.pdu.type,
            state_key: r.pdu.state_key ?? null,
            sender: r.sender,
            depth: r.pdu.depth,
            origin_server_ts: r.pdu.origin_server_ts,
            json: sql`${JSON.stringify(r.pdu)}::jsonb`,
            rejected_reason: null,
            state_group_before: r.before,
            redacted_by: null,
          })),
        )
        .returning(['event_id', 'stream_ordering'])
        .execute();
      const so = new Map(inserted.map((x) => [x.event_id, x.stream_ordering]));
      await tx
        .insertInto('event_edges')
        .values(chunk.flatMap((r) => r.prev.map((p) => ({ event_id: r.id, prev_event_id: p }))))
        .execute();
      await tx
        .insertInto('event_auth_edges')
        .values(chunk.flatMap((r) => r.auth.map((a) => ({ event_id: r.id, auth_id: a }))))
        .execute();
      const txns = chunk.filter((r) => r.txn);
      if (txns.length > 0) {
        await tx
          .insertInto('event_txn_ids')
          .values(
            txns.map((r) => ({ user_id: r.sender, device_id: 'BENCH', txn_id: r.txn as string, scope: txnScope.send(roomId, r.pdu.type), event_id: r.id, created_ts: Date.now() })),
          )
          .execute();
      }
      // Current state: the last event per key in this chunk.
      const cs = new Map<string, Row>();
      for (const r of chunk) if (r.pdu.state_key !== undefined) cs.set(`${r.pdu.type}\u0000${r.pdu.state_key}`, r);
      if (cs.size > 0) {
        await tx
          .insertInto('current_state')
          .values(
            [...cs.values()].map((r) => ({
              room_id: roomId,
              type: r.pdu.type,
              state_key: r.pdu.state_key as string,
              event_id: r.id,
              membership: r.pdu.type === 'm.room.member' ? String(r.pdu.content['membership']) : null,
              stream_ordering: so.get(r.id) as number,
            })),
          )
          .onConflict((oc) =>
            oc.columns(['room_id', 'type', 'state_key']).doUpdateSet((eb) => ({
              event_id: eb.ref('excluded.event_id'),
              membership: eb.ref('excluded.membership'),
              stream_ordering: eb.ref('excluded.stream_ordering'),
            })),
          )
          .execute();
      }
      const last = chunk[chunk.length - 1] as Row;
      await tx.deleteFrom('forward_extremities').where('room_id', '=', roomId).execute();
      await tx.insertInto('forward_extremities').values({ room_id: roomId, event_id: last.id }).execute();
      if (group !== null) await tx.updateTable('rooms').set({ current_state_group: group }).where('room_id', '=', roomId).execute();
    });
  };
  for (const { sender, draft, txn } of items) {
    depth += 1;
    const base: PDU = { room_id: roomId, sender, origin_server_ts: Date.now(), type: draft.type, content: draft.content, prev_events: prev, auth_events: [], depth };
    if (draft.state_key !== undefined) base.state_key = draft.state_key;
    const auth = authEventSelection(rv, base)
      .map(([ty, k]) => state.get(`${ty}\u0000${k}`))
      .filter((x): x is string => x !== undefined);
    base.auth_events = auth;
    const pdu = hashAndSignEvent(base, rv.id, SERVER, keys.current) as PDU;
    const id = computeEventId(pdu, rv.id);
    const before = group;
    if (draft.state_key !== undefined) {
      group = await createStateGroup(db, roomId, group, [{ type: draft.type, state_key: draft.state_key, event_id: id }]);
      state.set(`${draft.type}\u0000${draft.state_key}`, id);
    }
    rows.push({ id, pdu, before, txn, sender, auth, prev });
    prev = [id];
    n++;
    if (rows.length >= 1000) await flush();
  }
  await flush();
  return n;
}

function* joins(from: number, to: number): Generator<{ sender: string; draft: EventDraft }> {
  for (let i = from; i < to; i++) yield { sender: uid(i), draft: { type: 'm.room.member', state_key: uid(i), content: { membership: 'join', displayname: `User ${i}` } } };
}

function* messages(n: number, members: number, tag: string): Generator<{ sender: string; draft: EventDraft; txn?: string }> {
  for (let i = 0; i < n; i++) {
    const s = (i * 7919) % members;
    const content: JsonObject = { msgtype: 'm.text', body: `${tag} message ${i} ${'lorem ipsum '.repeat(i % 8)}` };
    // Now and then a state change, so state groups keep growing as in a living room.
    if (i % 5000 === 4999) yield { sender: uid(0), draft: { type: 'm.room.topic', state_key: '', content: { topic: `Topic ${i}` } } };
    else yield { sender: uid(s), draft: { type: 'm.room.message', content }, txn: i % 50 === 0 ? `${tag}-txn-${i}` : undefined };
  }
}

/** Other rooms' rows, made in SQL: tables of a realistic size around the big room (see --background). */
async function background(t: TestServer, rooms: number): Promise<void> {
  if (rooms <= 0) return;
  const db = t.server.ctx.database.db;
  const MEMBERS_PER = 20;
  const EVENTS_PER = 50;
  await db.transaction().execute(async (tx) => {
    await sql`INSERT INTO rooms (room_id, room_version, creator, is_public, current_state_group, created_ts)
      SELECT '!bg' || r || ':bench.local', '10', '@bg' || r || ':bench.local', false, NULL, 0 FROM generate_series(1, ${rooms}) r`.execute(tx);
    await sql`INSERT INTO events (event_id, room_id, type, state_key, sender, depth, origin_server_ts, json, rejected_reason, state_group_before, redacted_by)
      SELECT '$bg' || r || '_' || k, '!bg' || r || ':bench.local',
             CASE WHEN k <= ${MEMBERS_PER} THEN 'm.room.member' ELSE 'm.room.message' END,
             CASE WHEN k <= ${MEMBERS_PER} THEN '@bg' || ((r * 31 + k) % 20000) || ':bench.local' END,
             '@bg' || ((r * 31 + k) % 20000) || ':bench.local', k, 1000000 + k,
             jsonb_build_object('type', CASE WHEN k <= ${MEMBERS_PER} THEN 'm.room.member' ELSE 'm.room.message' END,
                                'content', CASE WHEN k <= ${MEMBERS_PER} THEN jsonb_build_object('membership', 'join')
                                                ELSE jsonb_build_object('msgtype', 'm.text', 'body', 'background ' || k) END),
             NULL, NULL, NULL
      FROM generate_series(1, ${rooms}) r, generate_series(1, ${EVENTS_PER}) k
      ORDER BY r, k`.execute(tx);
    await sql`INSERT INTO state_groups (room_id, prev_group, chain_depth) SELECT '!bg' || r || ':bench.local', NULL, 0 FROM generate_series(1, ${rooms}) r`.execute(tx);
    await sql`INSERT INTO state_groups_state (state_group, type, state_key, event_id)
      SELECT g.id, e.type, e.state_key, e.event_id FROM state_groups g JOIN events e ON e.room_id = g.room_id
      WHERE g.room_id LIKE '!bg%' AND e.state_key IS NOT NULL`.execute(tx);
    await sql`INSERT INTO current_state (room_id, type, state_key, event_id, membership, stream_ordering)
      SELECT e.room_id, e.type, e.state_key, e.event_id, 'join', e.stream_ordering FROM events e
      WHERE e.room_id LIKE '!bg%' AND e.state_key IS NOT NULL
      ON CONFLICT DO NOTHING`.execute(tx);
    await sql`UPDATE rooms r SET current_state_group = g.id FROM state_groups g WHERE g.room_id = r.room_id AND r.room_id LIKE '!bg%'`.execute(tx);
    await sql`INSERT INTO forward_extremities (room_id, event_id) SELECT '!bg' || r || ':bench.local', '$bg' || r || '_' || ${EVENTS_PER} FROM generate_series(1, ${rooms}) r`.execute(
      tx,
    );
  });
}

async function build(t: TestServer): Promise<{ bigRoom: string; smallRooms: string[] }> {
  const db = t.server.ctx.database.db;
  const { rooms } = t.server.ctx.services;
  await timed(`${BACKGROUND_ROOMS} background rooms (${BACKGROUND_ROOMS * 50} events) in SQL`, () => background(t, BACKGROUND_ROOMS));
  out(`Building: ${MEMBERS} users, a room with ${MEMBERS} members and ${EVENTS} events, ${SMALL_ROOMS} small rooms`);
  await timed('users and profiles', async () => {
    for (let i = 0; i < MEMBERS; i += 1000) {
      const ids = Array.from({ length: Math.min(1000, MEMBERS - i) }, (_, k) => i + k);
      await db
        .insertInto('users')
        .values(ids.map((k) => ({ user_id: uid(k), localpart: `u${k}`, password_hash: null, user_type: null, appservice_id: null })))
        .execute();
      await db
        .insertInto('profiles')
        .values(ids.map((k) => ({ user_id: uid(k), displayname: `User ${k}`, avatar_url: k % 3 === 0 ? `mxc://${SERVER}/a${k}` : null })))
        .execute();
    }
  });
  const bigRoom = (await rooms.createRoom(requester(uid(0)), { preset: 'public_chat', name: 'Big room' })).roomId;
  // The first joins and the last messages go through the pipeline itself; the bulk in between is built alike.
  const viaPipeline = Math.min(50, MEMBERS - 1);
  await timed(`${viaPipeline} joins through the pipeline`, () => persistMany(t, bigRoom, joins(1, 1 + viaPipeline), 100));
  await timed(`${MEMBERS - 1 - viaPipeline} joins in bulk`, () => bulkAppend(t, bigRoom, joins(1 + viaPipeline, MEMBERS)));
  const have = Number(
    (
      await db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('room_id', '=', bigRoom)
        .executeTakeFirstOrThrow()
    ).n,
  );
  const tail = Math.min(200, Math.max(0, EVENTS - have));
  await timed(`${EVENTS - have - tail} messages in bulk`, () => bulkAppend(t, bigRoom, messages(EVENTS - have - tail, MEMBERS, 'big')));
  await timed(`${tail} messages through the pipeline`, () => persistMany(t, bigRoom, messages(tail, MEMBERS, 'tail'), 100));

  const smallRooms: string[] = [];
  await timed(`${SMALL_ROOMS} small rooms through the pipeline`, async () => {
    for (let r = 0; r < SMALL_ROOMS; r++) {
      const owner = r % 50; // the first 50 users are in many rooms
      const others = [...new Set([(r * 13 + 1) % MEMBERS, (r * 17 + 2) % MEMBERS])].filter((u) => u !== owner);
      const roomId = (await rooms.createRoom(requester(uid(owner)), { preset: 'private_chat', name: `Small ${r}`, invite: others.map(uid) })).roomId;
      await persistMany(t, roomId, [
        ...others.map((u) => ({ sender: uid(u), draft: { type: 'm.room.member', state_key: uid(u), content: { membership: 'join' } } as EventDraft })),
        ...Array.from({ length: 5 }, (_, i) => ({ sender: uid(owner), draft: { type: 'm.room.message', content: { msgtype: 'm.text', body: `small ${r}.${i}` } } as EventDraft })),
      ]);
      smallRooms.push(roomId);
    }
  });
  await timed('ANALYZE', async () => {
    await sql`ANALYZE`.execute(db);
  });
  return { bigRoom, smallRooms };
}

// ---------------------------------------------------------------------------
// Plans.

interface Finding {
  scenario: string;
  sql: string;
  ms: number;
  seqScans: string[];
  plan: string[];
}

const findings: Finding[] = [];
const seen = new Set<string>();
let tableRows = new Map<string, number>();

async function loadTableSizes(pool: pg.Pool): Promise<void> {
  const r = await pool.query<{ relname: string; n: string }>(
    `SELECT relname, reltuples::bigint AS n FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace`,
  );
  tableRows = new Map(r.rows.map((x) => [x.relname, Number(x.n)]));
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();
const isExplainable = (text: string) => /^\s*(with|select|insert|update|delete)\b/i.test(text);

async function explainAll(pool: pg.Pool, scenario: string, queries: Captured[]): Promise<void> {
  for (const q of queries) {
    if (!isExplainable(q.text)) continue;
    const key = oneLine(q.text);
    if (seen.has(`${scenario}\u0000${key}`)) continue;
    seen.add(`${scenario}\u0000${key}`);
    const client = await pool.connect();
    try {
      if (args['random-page-cost'] !== undefined) await client.query(`SET random_page_cost = ${Number(args['random-page-cost'])}`);
      // Writes are measured and then undone.
      await client.query('BEGIN');
      const res = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, q.values);
      await client.query('ROLLBACK');
      const plan = res.rows.map((r) => r['QUERY PLAN']);
      const ms = Number(/Execution Time: ([\d.]+) ms/.exec(plan.join('\n'))?.[1] ?? NaN);
      const seqScans = [...plan.join('\n').matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1] as string).filter((tbl) => (tableRows.get(tbl) ?? 0) > LARGE);
      findings.push({ scenario, sql: key, ms, seqScans: [...new Set(seqScans)], plan });
    } catch (err) {
      // A write that cannot run twice (a duplicate key): the plan without running it.
      await client.query('ROLLBACK').catch(() => undefined);
      let plan = [`(could not run: ${(err as Error).message})`];
      try {
        const res = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${q.text}`, q.values);
        plan = [...plan, ...res.rows.map((r) => r['QUERY PLAN'])];
      } catch {
        // keep the message
      }
      const seqScans = [...plan.join('\n').matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1] as string).filter((tbl) => (tableRows.get(tbl) ?? 0) > LARGE);
      findings.push({ scenario, sql: key, ms: NaN, seqScans: [...new Set(seqScans)], plan });
    } finally {
      client.release();
    }
  }
}

async function call(t: TestServer, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { raw: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

async function main(): Promise<void> {
  if ((await testDatabaseKind()) !== 'postgres') {
    out('bench/explain.ts needs PostgreSQL (127.0.0.1:5432 or AXON_TEST_PG_URL); not reachable, nothing to do.');
    return;
  }
  const t = await startTestServer({
    serverName: SERVER,
    yaml: {
      rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
      rc_user_directory: { per_second: 1000, burst_count: 1000 },
      rc_joins: { local: { per_second: 1000, burst_count: 1000 }, remote: { per_second: 1000, burst_count: 1000 } },
    },
  });
  const dbCfg = t.config.database as { database?: string; host?: string; port?: number; user?: string };
  const pool = new pg.Pool({ host: dbCfg.host, port: dbCfg.port, user: dbCfg.user, database: dbCfg.database, max: 2 });
  pool.on('error', () => undefined); // an idle connection closed by --random-page-cost
  try {
    const t0 = performance.now();
    const { bigRoom, smallRooms } = await build(t);
    out(`  built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await loadTableSizes(pool);
    if (args['random-page-cost'] !== undefined) {
      const cost = Number(args['random-page-cost']);
      if (!(cost > 0)) throw new Error('--random-page-cost wants a positive number');
      // New connections get it; the server's idle ones are closed (its pool drops them and opens new ones).
      await pool.query(`ALTER DATABASE ${pg.escapeIdentifier(String(dbCfg.database))} SET random_page_cost = ${cost}`);
      await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      // Give the pools time to see their idle connections close (they drop them and connect anew).
      await new Promise((r) => setTimeout(r, 1000));
      out(`random_page_cost = ${cost}`);
    }
    out(
      `\nTable sizes: ${[...tableRows]
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}\n`,
    );

    const db = t.server.ctx.database.db;
    const { auth } = t.server.ctx.services;
    const session = async (i: number) => (await auth.createSession(db, { userId: uid(i), displayName: 'bench' })).access_token;
    const busy = await session(1); // in the big room and in many small ones
    const quiet = await session(MEMBERS - 1); // in the big room only
    const enc = encodeURIComponent;
    const big = enc(bigRoom);
    const small = enc(smallRooms[1] ?? bigRoom);

    const scenarios: [string, () => Promise<unknown>][] = [];
    const add = (name: string, fn: () => Promise<unknown>) => scenarios.push([name, fn]);
    let nextBatch = '';
    let lastEvent = '';
    let endToken = '';
    add('initial /sync (member of the big room and small rooms)', async () => {
      const r = await call(t, 'GET', '/_matrix/client/v3/sync?timeout=0', busy);
      nextBatch = String(r.json['next_batch'] ?? '');
      return r;
    });
    add('initial /sync with lazy-loaded members', () =>
      call(t, 'GET', `/_matrix/client/v3/sync?timeout=0&filter=${enc(JSON.stringify({ room: { state: { lazy_load_members: true }, timeline: { limit: 20 } } }))}`, quiet),
    );
    const firstTxn = `bench-${Date.now()}`;
    add('send a message (big room)', async () => {
      const r = await call(t, 'PUT', `/_matrix/client/v3/rooms/${big}/send/m.room.message/${firstTxn}`, busy, { msgtype: 'm.text', body: 'hello' });
      lastEvent = String(r.json['event_id'] ?? '');
      return r;
    });
    add('send again with the same txn id (idempotent lookup)', () =>
      call(t, 'PUT', `/_matrix/client/v3/rooms/${big}/send/m.room.message/${firstTxn}`, busy, { msgtype: 'm.text', body: 'hello' }),
    );
    const owner = await session(0);
    add('send a state event (big room topic)', () => call(t, 'PUT', `/_matrix/client/v3/rooms/${big}/state/m.room.topic`, owner, { topic: 'bench' }));
    add('send a message (small room)', () =>
      call(t, 'PUT', `/_matrix/client/v3/rooms/${small}/send/m.room.message/bench-s-${Date.now()}`, busy, { msgtype: 'm.text', body: 'hi' }),
    );
    add('incremental /sync', () => call(t, 'GET', `/_matrix/client/v3/sync?timeout=0&since=${enc(nextBatch)}`, busy));
    add('/messages backwards from the end', async () => {
      const r = await call(t, 'GET', `/_matrix/client/v3/rooms/${big}/messages?dir=b&limit=20`, busy);
      endToken = String(r.json['end'] ?? '');
      return r;
    });
    add('/messages backwards, next page', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/messages?dir=b&limit=20&from=${enc(endToken)}`, busy));
    add('/messages forwards from a page token', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/messages?dir=f&limit=20&from=${enc(endToken)}`, busy));
    add('/messages with a filter (senders)', () =>
      call(t, 'GET', `/_matrix/client/v3/rooms/${big}/messages?dir=b&limit=20&filter=${enc(JSON.stringify({ senders: [uid(7)] }))}`, busy),
    );
    add('/context around an event', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/context/${enc(lastEvent)}?limit=10`, busy));
    add('GET one event', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/event/${enc(lastEvent)}`, busy));
    add('GET /state (big room)', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/state`, busy));
    add('GET /joined_members (big room)', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/joined_members`, busy));
    add('GET /members (big room)', () => call(t, 'GET', `/_matrix/client/v3/rooms/${big}/members`, busy));
    add('GET /joined_rooms', () => call(t, 'GET', '/_matrix/client/v3/joined_rooms', busy));
    add('read receipt', () => call(t, 'POST', `/_matrix/client/v3/rooms/${big}/receipt/m.read/${enc(lastEvent)}`, busy, {}));
    add('typing', () => call(t, 'PUT', `/_matrix/client/v3/rooms/${big}/typing/${enc(uid(1))}`, busy, { typing: true, timeout: 10000 }));
    add('presence PUT (wakes the big room)', () => call(t, 'PUT', `/_matrix/client/v3/presence/${enc(uid(1))}/status`, busy, { presence: 'online', status_msg: 'bench' }));
    add('presence GET of another member', () => call(t, 'GET', `/_matrix/client/v3/presence/${enc(uid(2))}/status`, busy));
    add('presence for sync (since, 5000 users)', async () => {
      const p = t.server.ctx.services.presence;
      return p.since(
        Array.from({ length: MEMBERS }, (_, i) => uid(i)),
        0,
      );
    });
    add('user directory search', () => call(t, 'POST', '/_matrix/client/v3/user_directory/search', busy, { search_term: 'user 12', limit: 10 }));
    add('user directory search (one letter)', () => call(t, 'POST', '/_matrix/client/v3/user_directory/search', quiet, { search_term: 'u' }));
    add('incremental /sync after all that', () => call(t, 'GET', `/_matrix/client/v3/sync?timeout=0&since=${enc(nextBatch)}`, busy));

    out('Scenarios (HTTP status, wall time, statements):');
    const perScenario: [string, Captured[]][] = [];
    for (const [name, fn] of scenarios) {
      const t1 = performance.now();
      const { result, queries } = await recorded(fn);
      const status = (result as { status?: number } | undefined)?.status;
      out(`  ${name}: ${status ?? 'ok'}, ${(performance.now() - t1).toFixed(0)} ms, ${queries.length} statements`);
      perScenario.push([name, queries]);
    }
    for (const [name, queries] of perScenario) await explainAll(pool, name, queries);

    // Sends into the big room, timed one by one: each stores a notification row for every other local member.
    const sendTimes: number[] = [];
    for (let n = 0; n < SENDS; n++) {
      const t1 = performance.now();
      const r = await call(t, 'PUT', `/_matrix/client/v3/rooms/${big}/send/m.room.message/timed-${n}-${Date.now()}`, busy, { msgtype: 'm.text', body: `timed ${n}` });
      if (r.status !== 200) throw new Error(`timed send answered ${r.status}`);
      sendTimes.push(performance.now() - t1);
    }
    sendTimes.sort((a, b) => a - b);
    const at = (q: number) => (sendTimes[Math.min(sendTimes.length - 1, Math.floor(q * sendTimes.length))] ?? NaN).toFixed(0);
    if (SENDS > 0) out(`\n${SENDS} sequential sends into the ${MEMBERS}-member room: median ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms`);

    let scenario = '';
    if (!QUIET) {
      for (const f of findings) {
        if (f.scenario !== scenario) {
          scenario = f.scenario;
          out(`\n=== ${scenario} ===`);
        }
        out(`\n-- ${f.sql.length > 400 ? `${f.sql.slice(0, 400)}…` : f.sql}`);
        for (const line of f.plan) out(`   ${line}`);
        for (const s of f.seqScans) out(`   !!! SEQUENTIAL SCAN on large table ${s} (${tableRows.get(s)} rows)`);
      }
    }
    out('\nSummary (execution ms, statement):');
    for (const f of findings)
      out(`  ${Number.isNaN(f.ms) ? '   ?' : f.ms.toFixed(2).padStart(8)}  ${f.seqScans.length ? `SEQ SCAN(${f.seqScans.join(',')}) ` : ''}${f.sql.slice(0, 150)}`);
    const flagged = findings.filter((f) => f.seqScans.length > 0);
    out(`\n${findings.length} distinct statements explained; ${flagged.length} with a sequential scan on a large table.`);
    for (const f of flagged) out(`  !!! [${f.scenario}] ${f.seqScans.join(', ')}: ${f.sql.slice(0, 200)}`);
  } finally {
    await pool.end();
    if (args.keep) {
      await t.server.close();
      out(`\nKept the database ${dbCfg.database} (drop it with: DROP DATABASE ${dbCfg.database})`);
    } else {
      await t.close();
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});

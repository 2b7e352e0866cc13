/**
 * /messages in a long room: builds a 100,000-event room, then times GET
 * /messages pages over HTTP near the end, in the middle and near the start
 * of the history, and prints the plan PostgreSQL picks for the page query
 * deep in the room.
 *
 * The room is built straight into storage (the rows the pipeline writes for
 * a message: the event, its edge, the forward extremity; 1,000 events per
 * transaction), which takes a minute or two; `--pipeline` builds it through
 * the event pipeline instead (signed, auth-checked PDUs), which is several
 * times slower.
 *
 * Run: npx tsx bench/messages.ts [events] [--pipeline]. Prints figures only. Needs
 * PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), as the
 * integration tests do; AXON_TEST_DB=embedded runs it on PGlite instead.
 */
import { sql } from 'kysely';
import { insertEvent } from '../src/storage/events.js';
import { advanceExtremities, forwardExtremities, insertEdges } from '../src/storage/rooms.js';
import { explainTimelinePage, timelinePage } from '../src/storage/timeline.js';
import { startTestServer } from '../test/helpers/server.js';
import { api, createUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';

const PIPELINE = process.argv.includes('--pipeline');
const EVENTS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 100_000);
const BATCH = 1000;
const RUNS = 30;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const t = await startTestServer({ yaml: { rc_message: { per_second: 100_000, burst_count: 100_000 } } });
  try {
    const { rooms } = t.server.ctx.services;
    const db = t.server.ctx.database.db;
    console.log(`node ${process.version}, ${t.server.ctx.database.kind === 'embedded' ? 'embedded PostgreSQL (PGlite)' : 'PostgreSQL'}`);
    const alice = await createUser(t, 'alice');
    const created = await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: alice.accessToken, body: { preset: 'public_chat' } });
    const roomId = created.body.room_id as string;

    const buildStart = performance.now();
    const room = await rooms.pipeline.room(db, roomId);
    const [last] = await forwardExtremities(db, roomId);
    let prev = last!.event_id;
    let depth = Number(last!.depth);
    for (let done = 0; done < EVENTS; done += BATCH) {
      await rooms.pipeline.inRoomQueue(roomId, () =>
        rooms.pipeline.transaction(async (tx) => {
          for (let i = done; i < Math.min(done + BATCH, EVENTS); i++) {
            const content = { msgtype: 'm.text', body: `message ${i}` };
            if (PIPELINE) {
              await rooms.pipeline.persist(tx, room, alice.userId, { type: 'm.room.message', content });
              continue;
            }
            // Straight into storage: the rows the pipeline writes for a message, without signing or auth.
            depth += 1;
            const eventId = `$bench${i}_${depth}:test.local`;
            const pdu = { room_id: roomId, sender: alice.userId, origin_server_ts: Date.now(), type: 'm.room.message', content, prev_events: [prev], auth_events: [], depth };
            await insertEvent(tx, {
              eventId,
              roomId,
              type: pdu.type,
              stateKey: null,
              sender: alice.userId,
              depth,
              ts: pdu.origin_server_ts,
              json: pdu,
              stateGroupBefore: room.current_state_group,
              stateGroupAfter: room.current_state_group,
            });
            await insertEdges(tx, eventId, [prev], []);
            await advanceExtremities(tx, roomId, eventId, [prev]);
            prev = eventId;
          }
        }),
      );
      if ((done + BATCH) % 20_000 === 0) console.log(`  ${done + BATCH} events, ${((performance.now() - buildStart) / 1000).toFixed(0)} s`);
    }
    const buildSeconds = (performance.now() - buildStart) / 1000;
    console.log(`built ${EVENTS} events in ${buildSeconds.toFixed(1)} s (${(EVENTS / buildSeconds).toFixed(0)} events/s ${PIPELINE ? 'through the pipeline' : 'into storage'})`);
    await sql`ANALYZE events`.execute(db);

    // Tokens at three depths: near the end, the middle, near the start.
    const rows = await db.selectFrom('events').select(['depth', 'stream_ordering']).where('room_id', '=', roomId).orderBy('depth', 'desc').limit(1).executeTakeFirstOrThrow();
    const top = Number(rows.depth);
    const topStream = Number(rows.stream_ordering);
    const points: [string, string | undefined, { depth: number; stream: number }][] = [
      ['end (no from)', undefined, { depth: top, stream: topStream }],
      ['middle', `t${Math.floor(top / 2)}_${topStream - Math.floor(top / 2)}`, { depth: Math.floor(top / 2), stream: topStream - Math.floor(top / 2) }],
      ['near the start', `t200_${topStream - top + 200}`, { depth: 200, stream: topStream - top + 200 }],
    ];
    const path = (from: string | undefined, limit: number) =>
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=${limit}${from ? `&from=${encodeURIComponent(from)}` : ''}`;
    for (const limit of [10, 100]) {
      for (const [name, from] of points) {
        for (let i = 0; i < 3; i++) await api(t, 'GET', path(from, limit), { token: alice.accessToken }); // warm-up
        const times: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const start = performance.now();
          const res = await api(t, 'GET', path(from, limit), { token: alice.accessToken });
          times.push(performance.now() - start);
          if (res.status !== 200 || (res.body.chunk as unknown[]).length !== limit) throw new Error(`unexpected answer ${res.status}`);
        }
        console.log(`/messages dir=b limit=${limit}, ${name}: p50 ${percentile(times, 50).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms`);
      }
    }
    // The page query alone, without HTTP, auth, visibility and serialization.
    for (const [name, , pos] of points) {
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const start = performance.now();
        await timelinePage(db, roomId, { dir: 'b', from: pos, limit: 11 });
        times.push(performance.now() - start);
      }
      console.log(`page query alone (limit 11), ${name}: p50 ${percentile(times, 50).toFixed(2)} ms, p95 ${percentile(times, 95).toFixed(2)} ms`);
    }
    const deep = points[2]![2];
    console.log(`plan of the page query near the start of the room (from t${deep.depth}_${deep.stream}, limit 11):`);
    for (const line of await explainTimelinePage(db, roomId, { dir: 'b', from: deep, limit: 11 })) console.log(`  ${line}`);
  } finally {
    await t.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

/**
 * Push rules and notification counts. Prints figures only.
 * Run: npx tsx bench/push.ts (AXON_TEST_DB=embedded runs it on PGlite).
 *
 * (a) the evaluator alone: default rulesets run per second for a plain
 *     message and for one that mentions the user;
 * (b) sends into one room (sequential, over HTTP) with 1, 50 and 200 local
 *     members: every send runs the rules for every member but the sender
 *     and stores their notifications in the send's transaction; then 200
 *     members again with the evaluation replaced by a no-op, for comparison;
 * (c) unread counts for a user in 100 rooms with unread messages (what an
 *     initial /sync asks), one batched call.
 */
import { performance } from 'node:perf_hooks';
import type { JsonObject } from '../src/core/pdu.js';
import { PushEvaluator } from '../src/services/push/evaluator.js';
import { buildRuleset } from '../src/services/push/rules.js';
import { startTestServer, type TestServer } from '../test/helpers/server.js';
import { api, createUser, type TestUser } from '../test/helpers/users.js';

process.env.AXON_TEST_DB ??= 'postgres';
const enc = encodeURIComponent;
const LOOSE = { per_second: 1_000_000, burst_count: 1_000_000 };

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function evaluatorBench(): void {
  const users = Array.from({ length: 1000 }, (_, i) => `@user${i}:example.org`);
  const rulesets = users.map((u) => buildRuleset(u, [], []));
  const ctx = { memberCount: 1000, senderPowerLevel: 0, notificationLevels: { room: 50 } };
  const plain: JsonObject = {
    type: 'm.room.message',
    sender: '@bob:example.org',
    room_id: '!r:example.org',
    content: { msgtype: 'm.text', body: 'hello there, how is everyone doing today?' },
  };
  const mention: JsonObject = { ...plain, content: { msgtype: 'm.text', body: 'user7: look', 'm.mentions': { user_ids: ['@user7:example.org'] } } };
  for (const [name, ev] of [
    ['plain message', plain],
    ['m.mentions message', mention],
  ] as const) {
    const rounds = 50;
    const start = performance.now();
    for (let r = 0; r < rounds; r++) {
      const e = new PushEvaluator(ev, ctx);
      for (let i = 0; i < users.length; i++) e.run(rulesets[i]!, users[i]!, `User ${i}`);
    }
    const s = (performance.now() - start) / 1000;
    console.log(`(a) evaluator, ${name}: ${Math.round((rounds * users.length) / s).toLocaleString('en')} user evaluations/s`);
  }
}

async function send(t: TestServer, u: TestUser, roomId: string, n: number): Promise<void> {
  const res = await api(t, 'PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/p${n}`, { token: u.accessToken, body: { msgtype: 'm.text', body: `message ${n}` } });
  if (res.status !== 200) throw new Error(`send answered ${res.status}`);
}

async function join(t: TestServer, u: TestUser, roomId: string): Promise<void> {
  const res = await api(t, 'POST', `/_matrix/client/v3/rooms/${enc(roomId)}/join`, { token: u.accessToken, body: {} });
  if (res.status !== 200) throw new Error(`join answered ${res.status} ${JSON.stringify(res.body)}`);
}

async function main(): Promise<void> {
  evaluatorBench();
  const t = await startTestServer({ yaml: { rc_message: LOOSE, rc_joins: { local: LOOSE, remote: LOOSE } } });
  try {
    const users: TestUser[] = [];
    for (let i = 0; i < 200; i++) users.push(await createUser(t, `member${i}`));
    const sender = users[0]!;
    let n = 0;
    const push = t.server.ctx.services.push;
    const realHook = push.onPersisted.bind(push);
    const runs: [number, boolean][] = [
      [1, true],
      [50, true],
      [200, true],
      [200, false],
    ];
    for (const [members, withPush] of runs) {
      // For comparison, the last run replaces the evaluation with a no-op.
      push.onPersisted = withPush ? realHook : async () => undefined;
      const roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: sender.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
      for (const u of users.slice(1, members)) await join(t, u, roomId);
      for (let i = 0; i < 10; i++) await send(t, sender, roomId, ++n); // warm caches
      const times: number[] = [];
      const count = 200;
      const start = performance.now();
      for (let i = 0; i < count; i++) {
        const s = performance.now();
        await send(t, sender, roomId, ++n);
        times.push(performance.now() - s);
      }
      const total = (performance.now() - start) / 1000;
      console.log(
        `(b) ${members} local member(s)${withPush ? '' : ', push evaluation off'}: ${Math.round(count / total)} sends/s, median ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms`,
      );
    }

    push.onPersisted = realHook;
    const reader = users[1]!;
    const rooms: string[] = [];
    for (let i = 0; i < 100; i++) {
      const roomId = (await api(t, 'POST', '/_matrix/client/v3/createRoom', { token: sender.accessToken, body: { preset: 'public_chat' } })).body.room_id as string;
      await join(t, reader, roomId);
      for (let j = 0; j < 5; j++) await send(t, sender, roomId, ++n);
      rooms.push(roomId);
    }
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      const c = await push.unreadCountsForRooms(reader.userId, rooms);
      times.push(performance.now() - s);
      if (c.get(rooms[0]!)?.notification_count !== 5) throw new Error(`unexpected count ${JSON.stringify(c.get(rooms[0]!))}`);
    }
    console.log(`(c) unread counts, 100 rooms x 5 unread: median ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms`);
    console.log(`RSS ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB`);
  } finally {
    await t.close();
  }
}

await main();

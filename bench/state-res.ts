/**
 * State resolution benchmark: a fork of a 1,000-member and a 10,000-member
 * room, resolved under v2 (room version 11) and v2.1 (room version 12).
 *
 * The room (real reference-hash ids, auth events per the selection rules,
 * every event auth-checked as it is built) has a history of power levels
 * changes and invites; then it forks. One side: Alice changes the power
 * levels, new people join, members leave, Alice kicks some, the topic
 * changes. The other side: Bob (a moderator) changes the power levels, other
 * people join, other members leave, Bob bans some, the name changes. That is
 * a few hundred conflicted members and a power levels fork.
 *
 * Run: npx tsx bench/state-res.ts. Prints figures only.
 */
import { performance } from 'node:perf_hooks';
import { resolveState } from '../src/core/state-res/index.js';
import { ALICE, BOB, powerContent, standardRoom, type Branch, type Room } from '../test/core/fixtures/state-res.js';

interface Fork {
  room: Room;
  a: Branch;
  b: Branch;
  events: number;
}

function user(i: number): string {
  return `@user${i}:server${i % 37}.example`;
}

function build(version: string, members: number): Fork {
  const { room, main } = standardRoom(version, { members: [BOB], levels: { [BOB]: 50 }, idMode: 'hash' });
  const levels: Record<string, number> = { [BOB]: 50 };
  for (let i = 0; i < members; i++) {
    if (i % 10 === 0) main.invite(`invite-${i}`, ALICE, user(i));
    main.join(`join-${i}`, user(i));
    // A power levels change every 500 joins: a mainline of some length.
    if (i % 500 === 499) {
      levels[user(i)] = 10;
      main.powerLevels(`pl-${i}`, ALICE, powerContent(room, ALICE, levels));
    }
  }
  const a = main.fork();
  const b = main.fork();
  const conflicts = Math.min(150, Math.floor(members / 6));
  a.powerLevels('pl-a', ALICE, powerContent(room, ALICE, { ...levels, [user(1)]: 20 }));
  b.powerLevels('pl-b', BOB, powerContent(room, ALICE, { ...levels, [user(2)]: 30 }));
  for (let i = 0; i < conflicts; i++) {
    a.join(`a-join-${i}`, `@a${i}:elsewhere.example`);
    b.join(`b-join-${i}`, `@b${i}:other.example`);
  }
  for (let i = 0; i < conflicts / 3; i++) {
    a.leave(`a-leave-${i}`, user(10 + i * 2));
    b.leave(`b-leave-${i}`, user(11 + i * 2));
  }
  for (let i = 0; i < conflicts / 6; i++) {
    a.kick(`a-kick-${i}`, ALICE, user(members - 1 - i * 2));
    b.ban(`b-ban-${i}`, BOB, user(members - 2 - i * 2));
  }
  a.topic('a-topic', ALICE, 'from a');
  b.roomName('b-name', BOB, 'from b');
  return { room, a, b, events: Object.keys(room.events).length };
}

function conflictedKeys(x: Branch, y: Branch): number {
  let n = 0;
  for (const [k, v] of x.state) if (y.state.get(k) !== v) n++;
  for (const k of y.state.keys()) if (!x.state.has(k)) n++;
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
}

const rows: string[] = [];
for (const members of [1_000, 10_000]) {
  for (const version of ['11', '12']) {
    const t0 = performance.now();
    const fork = build(version, members);
    const buildMs = performance.now() - t0;
    const states = [fork.a.entries(), fork.b.entries()];
    const times: number[] = [];
    let size = 0;
    // The first run is cold (JIT, first look at every event); report it too.
    for (let i = 0; i < 7; i++) {
      const s = performance.now();
      size = resolveState(version, states, fork.room.events).length;
      times.push(performance.now() - s);
    }
    rows.push(
      `room v${version.padEnd(3)} ${String(members).padStart(6)} members, ${String(states[0]!.length).padStart(6)}/${String(states[1]!.length).padStart(6)} state entries, ` +
        `${String(conflictedKeys(fork.a, fork.b)).padStart(4)} conflicted keys, ${String(fork.events).padStart(6)} events: ` +
        `resolveState cold ${times[0]!.toFixed(1)} ms, warm median ${median(times.slice(1)).toFixed(1)} ms ` +
        `(-> ${size} entries; building the room took ${(buildMs / 1000).toFixed(1)} s)`,
    );
    console.log(rows[rows.length - 1]);
  }
}
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);

/**
 * Properties of resolveState over randomly grown room DAGs: the answer does
 * not depend on the order of the state sets nor of the entries within them,
 * repeating a state set changes nothing, agreed entries survive, and the
 * output is a well-formed state map of events we were given.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/core/pdu.js';
import { resolveState } from '../../src/core/state-res/index.js';
import { ALICE, BOB, CHARLIE, DAVE, EVE, powerContent, standardRoom, type Branch, type Entry, type EventSpec, type IdMode, type Room } from './fixtures/state-res.js';

const USERS = [ALICE, BOB, CHARLIE, DAVE, EVE];
const KINDS = ['topic', 'name', 'pl', 'join', 'leave', 'ban', 'kick', 'invite', 'jr', 'fork'] as const;
const LEVELS = [0, 25, 50, 100];
const RULES = ['public', 'invite'];

interface Action {
  branch: number;
  kind: (typeof KINDS)[number];
  actor: number;
  target: number;
  level: number;
  /** Reuse one fixed timestamp, so the event id tie-break gets exercised. */
  sameTs: boolean;
}

const actionArb: fc.Arbitrary<Action> = fc.record({
  branch: fc.nat(7),
  kind: fc.constantFrom(...KINDS),
  // Mostly the people with power, so that most actions are allowed.
  actor: fc.constantFrom(0, 0, 0, 1, 1, 2, 3, 4),
  target: fc.nat(USERS.length - 1),
  level: fc.nat(LEVELS.length - 1),
  sameTs: fc.boolean(),
});

/** Grows a room from `actions`, skipping every action its branch's state does not allow. */
function grow(version: string, idMode: IdMode, actions: readonly Action[]): { room: Room; branches: Branch[] } {
  const { room, main } = standardRoom(version, { members: [BOB, CHARLIE], levels: { [BOB]: 50 }, idMode });
  const branches = [main.fork(), main.fork()];
  let n = 0;
  for (const a of actions) {
    const b = branches[a.branch % branches.length]!;
    if (a.kind === 'fork') {
      if (branches.length < 4) branches.push(b.fork());
      continue;
    }
    const actor = USERS[a.actor]!;
    const target = USERS[a.target]!;
    const spec = specFor(room, b, a, actor, target);
    if (spec === undefined || !b.allows(spec)) continue;
    b.send({ ...spec, name: `e${n++}`, ts: a.sameTs ? 1_600_000_000_000 : undefined });
  }
  return { room, branches };
}

function specFor(room: Room, b: Branch, a: Action, actor: string, target: string): Omit<EventSpec, 'name'> | undefined {
  const member = (membership: string, sender: string): Omit<EventSpec, 'name'> => ({
    type: 'm.room.member',
    stateKey: target,
    sender,
    content: { membership },
  });
  switch (a.kind) {
    case 'topic':
      return { type: 'm.room.topic', stateKey: '', sender: actor, content: { topic: `by ${actor}` } };
    case 'name':
      return { type: 'm.room.name', stateKey: '', sender: actor, content: { name: `by ${actor}` } };
    case 'jr':
      return { type: 'm.room.join_rules', stateKey: '', sender: actor, content: { join_rule: RULES[a.level % 2]! } };
    case 'join':
      return { ...member('join', target), sender: target };
    case 'leave':
      return { ...member('leave', target), sender: target };
    case 'kick':
      return member('leave', actor);
    case 'ban':
      return member('ban', actor);
    case 'invite':
      return member('invite', actor);
    case 'pl': {
      const currentId = b.state.get('m.room.power_levels\u0000');
      const current = currentId === undefined ? undefined : room.events[currentId]!.content['users'];
      const users: Record<string, number> = {};
      if (typeof current === 'object' && current !== null && !Array.isArray(current)) {
        for (const [u, l] of Object.entries(current as JsonObject)) if (typeof l === 'number') users[u] = l;
      }
      users[target] = LEVELS[a.level]!;
      return { type: 'm.room.power_levels', stateKey: '', sender: actor, content: powerContent(room, ALICE, users) };
    }
    default:
      return undefined;
  }
}

/** A deterministic shuffle (mulberry32). */
function shuffled<T>(xs: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const key = (e: Entry): string => `${e[0]}\u0000${e[1]}`;

const CASES: [version: string, idMode: IdMode][] = [
  ['1', 'named'],
  ['2', 'named'],
  ['10', 'named'],
  ['10', 'hash'],
  ['11', 'named'],
  ['12', 'named'],
  ['12', 'hash'],
];

describe.each(CASES)('room version %s (%s ids)', (version, idMode) => {
  const scenario = fc.record({
    actions: fc.array(actionArb, { minLength: 5, maxLength: 60, size: 'medium' }),
    seed: fc.integer(),
  });

  it('does not depend on the order of the state sets nor of their entries', () => {
    fc.assert(
      fc.property(scenario, ({ actions, seed }) => {
        const { room, branches } = grow(version, idMode, actions);
        const states = branches.map((b) => b.entries());
        const expected = resolveState(version, states, room.events);
        const permuted = shuffled(states, seed).map((s, i) => shuffled(s, seed ^ ((i + 1) * 7919)));
        expect(resolveState(version, permuted, room.events)).toEqual(expected);
      }),
      { numRuns: 120 },
    );
  });

  it('is unchanged by repeating a state set, and resolves one state set to itself', () => {
    fc.assert(
      fc.property(scenario, ({ actions, seed }) => {
        const { room, branches } = grow(version, idMode, actions);
        const states = branches.map((b) => b.entries());
        const expected = resolveState(version, states, room.events);
        const repeated = [...states, states[Math.abs(seed) % states.length]!];
        expect(resolveState(version, repeated, room.events)).toEqual(expected);
        const one = states[0]!;
        expect(resolveState(version, [one], room.events)).toEqual([...one].sort((x, y) => (key(x) < key(y) ? -1 : 1)));
      }),
      { numRuns: 60 },
    );
  });

  it('gives a well-formed state map that keeps the agreed entries', () => {
    fc.assert(
      fc.property(scenario, ({ actions }) => {
        const { room, branches } = grow(version, idMode, actions);
        const states = branches.map((b) => b.entries());
        const out = resolveState(version, states, room.events);
        // One entry per key, sorted, each naming an event of that type and state key.
        const keys = out.map(key);
        expect(new Set(keys).size).toBe(keys.length);
        expect([...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(keys);
        for (const [t, s, id] of out) {
          const e = room.events[id];
          expect(e?.type).toBe(t);
          expect(e?.state_key).toBe(s);
        }
        // Entries every state agrees on are in the result unchanged (v1:
        // entries no state contradicts).
        const resolved = new Map(out.map((e) => [key(e), e[2]]));
        const values = new Map<string, Set<string>>();
        const present = new Map<string, number>();
        for (const st of states) {
          for (const e of st) {
            const k = key(e);
            values.set(k, (values.get(k) ?? new Set()).add(e[2]));
            present.set(k, (present.get(k) ?? 0) + 1);
          }
        }
        for (const [k, ids] of values) {
          const agreed = ids.size === 1 && (version === '1' || present.get(k) === states.length);
          if (agreed) expect(resolved.get(k)).toBe([...ids][0]);
        }
        // The create event is never lost.
        expect(resolved.get('m.room.create\u0000')).toBe(room.id('create'));
      }),
      { numRuns: 80 },
    );
  });
});

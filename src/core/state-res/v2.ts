/**
 * State resolution v2 (room versions 2-11) and its revision v2.1 (room
 * version 12, MSC4297), as content/rooms/fragments/v2-state-res.md and
 * content/rooms/v12.md define them.
 *
 * v2.1 differs in two places only: the full conflicted set also holds the
 * *conflicted state subgraph* (every event on an auth path between two
 * conflicted state events), and the first round of iterative auth checks
 * starts from an empty state map instead of the unconflicted state map.
 */
import { isPowerEvent } from '../auth/index.js';
import { stateMapKey, type StateMapKey } from '../pdu.js';
import type { Context, StateView } from './context.js';
import { compareCodePoints } from '../canonical-json.js';
import { NONE, postOrder } from './graph.js';
import { IndexHeap } from './heap.js';
import { Marks } from './marks.js';
import { conflictedValues, findSlot, isUnconflicted, type Split, type StateEntry } from './split.js';

const EMPTY: readonly number[] = Object.freeze([]);

/** Returns the resolved state as `[type, state_key, event_id]` entries (unordered). */
export function resolveV2(ctx: Context, stateSets: readonly (readonly StateEntry[])[], split: Split, revision21: boolean): [string, string, string][] {
  const g = ctx.graph;
  const { slots, setCount } = split;

  // --- Unconflicted state map and conflicted state set -------------------
  const slotConflicted = new Uint8Array(slots.length);
  const conflicted: number[] = [];
  const inConflicted = new Marks();
  for (let s = 0; s < slots.length; s++) {
    const slot = slots[s]!;
    if (isUnconflicted(slot, setCount, false)) continue;
    slotConflicted[s] = 1;
    for (const id of conflictedValues(slot)) {
      const i = g.require(id, 'conflicted state event');
      if (inConflicted.get(i) === 0) {
        inConflicted.set(i, 1);
        conflicted.push(i);
      }
    }
  }

  // --- Auth difference ----------------------------------------------------
  // With C'_i the auth chain of S_i together with S_i's own events, an event
  // is in the difference when it is in some C'_i but not all. Everything the
  // unconflicted events reach (themselves included) is in every C'_i, so
  // walk that once (U) and, per state map, walk only from its conflicted
  // events, stopping at U.
  const inU = new Marks(g.size * 2);
  {
    const stack: number[] = [];
    for (let s = 0; s < slots.length; s++) {
      if (slotConflicted[s] === 1) continue;
      const i = g.lookup(slots[s]!.first);
      if (i !== NONE && inU.get(i) === 0) {
        inU.set(i, 1);
        stack.push(i);
      }
    }
    while (stack.length > 0) {
      for (const a of g.auth(stack.pop()!)) {
        if (inU.get(a) === 0) {
          inU.set(a, 1);
          stack.push(a);
        }
      }
    }
  }
  const lastSeenBy = new Marks();
  const seenCount = new Marks();
  const reached: number[] = [];
  for (let set = 0; set < setCount; set++) {
    const entries = stateSets[set]!;
    const slotOf = split.slotOfEntry[set]!;
    const stack: number[] = [];
    const tag = set + 1;
    const enter = (i: number): void => {
      if (inU.get(i) === 1 || lastSeenBy.get(i) === tag) return;
      lastSeenBy.set(i, tag);
      const c = seenCount.get(i);
      if (c === 0) reached.push(i);
      seenCount.set(i, c + 1);
      stack.push(i);
    };
    for (let k = 0; k < entries.length; k++) {
      if (slotConflicted[slotOf[k]!] !== 1) continue;
      enter(g.require(entries[k]![2], 'conflicted state event'));
      while (stack.length > 0) for (const a of g.auth(stack.pop()!)) enter(a);
    }
  }

  // --- Full conflicted set -----------------------------------------------
  const inFull = new Marks();
  const full: number[] = [];
  const addFull = (i: number): void => {
    if (inFull.get(i) === 0) {
      inFull.set(i, 1);
      full.push(i);
    }
  };
  for (const i of conflicted) addFull(i);
  for (const i of reached) if (seenCount.get(i) < setCount) addFull(i);
  if (revision21) {
    // Conflicted state subgraph: events reachable from a conflicted event
    // that themselves reach a conflicted event.
    const reachesConflicted = new Marks();
    postOrder(g, conflicted, (n) => {
      let r = inConflicted.get(n) === 1;
      for (const a of g.auth(n)) {
        if (r) break;
        r = reachesConflicted.get(a) === 1;
      }
      if (r) {
        reachesConflicted.set(n, 1);
        addFull(n);
      }
    });
  }

  // --- Step 1: power events and their auth chains within the full set ----
  const powerRoots: number[] = [];
  for (const i of full) if (isPowerEvent(g.pdus[i]!)) powerRoots.push(i);
  // Walking from the power events, every event met is in the auth chain of
  // one of them (or is one), so it belongs to X iff it is in the full
  // conflicted set. For the ordering, each event of X needs the events of X
  // it (transitively) cites; `below(n)` holds the nearest ones.
  const inX = new Marks();
  const xList: number[] = [];
  const below: (readonly number[] | undefined)[] = [];
  postOrder(g, powerRoots, (n) => {
    if (inFull.get(n) === 1) {
      inX.set(n, 1);
      xList.push(n);
    }
    let acc: readonly number[] = EMPTY;
    let merged: Set<number> | undefined;
    for (const a of g.auth(n)) {
      const contrib: readonly number[] = inX.get(a) === 1 ? [a] : (below[a] ?? EMPTY);
      if (contrib.length === 0) continue;
      if (acc.length === 0) acc = contrib;
      else {
        merged ??= new Set(acc);
        for (const c of contrib) merged.add(c);
      }
    }
    below[n] = merged === undefined ? acc : [...merged];
  });
  const powerOrder = reverseTopologicalPowerOrder(ctx, xList, (x) => below[x] ?? EMPTY);

  // --- Step 2: iterative auth checks from the unconflicted (v2) or empty (v2.1) state
  const changes = new Map<StateMapKey, number>();
  const base = revision21
    ? (): number => NONE
    : (type: string, stateKey: string): number => {
        const s = findSlot(split, type, stateKey);
        return s === undefined || slotConflicted[s] === 1 ? NONE : g.lookup(slots[s]!.first);
      };
  const state: StateView = {
    get: (type, stateKey) => changes.get(stateMapKey(type, stateKey)) ?? base(type, stateKey),
    set: (type, stateKey, event) => void changes.set(stateMapKey(type, stateKey), event),
  };
  ctx.iterativeAuthChecks(powerOrder, state);

  // --- Step 3: mainline ordering of the rest ------------------------------
  const rest: number[] = [];
  for (const i of full) if (inX.get(i) === 0) rest.push(i);
  const restOrder = mainlineOrder(ctx, rest, state.get('m.room.power_levels', ''));

  // --- Step 4: iterative auth checks on the partially resolved state ------
  ctx.iterativeAuthChecks(restOrder, state);

  // --- Step 5: the unconflicted state map wins --------------------------
  const out: [string, string, string][] = [];
  for (let s = 0; s < slots.length; s++) {
    const slot = slots[s]!;
    if (slotConflicted[s] === 0) {
      out.push([slot.type, slot.stateKey, slot.first]);
    } else {
      const r = changes.get(stateMapKey(slot.type, slot.stateKey));
      if (r !== undefined) out.push([slot.type, slot.stateKey, g.ids[r]!]);
    }
  }
  for (const r of changes.values()) {
    const e = g.pdus[r]!;
    if (findSlot(split, e.type, e.state_key!) !== undefined) continue;
    out.push([e.type, e.state_key!, g.ids[r]!]);
  }
  return out;
}

/**
 * Kahn's algorithm over `events`, each after every event of the set it
 * cites, choosing at each step the smallest candidate: higher sender power
 * level first, then lower `origin_server_ts`, then lower event id.
 */
export function reverseTopologicalPowerOrder(ctx: Context, events: readonly number[], citesInSet: (n: number) => readonly number[]): number[] {
  const g = ctx.graph;
  const power = new Map<number, number>();
  const ts = new Map<number, number>();
  for (const n of events) {
    power.set(n, ctx.senderPowerLevel(n));
    ts.set(n, timestamp(g.pdus[n]!.origin_server_ts));
  }
  const less = (a: number, b: number): boolean => {
    const pa = power.get(a)!;
    const pb = power.get(b)!;
    if (pa !== pb) return pa > pb;
    const ta = ts.get(a)!;
    const tb = ts.get(b)!;
    if (ta !== tb) return ta < tb;
    return compareCodePoints(g.ids[a]!, g.ids[b]!) < 0;
  };
  const waiting = new Map<number, number>();
  const citedBy = new Map<number, number[]>();
  const heap = new IndexHeap(less);
  for (const n of events) {
    const cites = citesInSet(n);
    waiting.set(n, cites.length);
    for (const c of cites) {
      const list = citedBy.get(c);
      if (list === undefined) citedBy.set(c, [n]);
      else list.push(n);
    }
    if (cites.length === 0) heap.push(n);
  }
  const order: number[] = [];
  while (heap.size > 0) {
    const n = heap.pop();
    order.push(n);
    const dependants = citedBy.get(n);
    if (dependants === undefined) continue;
    for (const d of dependants) {
      const w = waiting.get(d)! - 1;
      waiting.set(d, w);
      if (w === 0) heap.push(d);
    }
  }
  return order;
}

/**
 * Orders `events` by their mainline position against the power levels event
 * `powerLevels` (NONE: no mainline, every position is ∞): a position further
 * from `powerLevels` (earlier) first, then lower `origin_server_ts`, then
 * lower event id.
 */
export function mainlineOrder(ctx: Context, events: readonly number[], powerLevels: number): number[] {
  const g = ctx.graph;
  // Position i of each mainline event, P0 = powerLevels at 0.
  const mainline = new Map<number, number>();
  for (let p = powerLevels, i = 0; p !== NONE && !mainline.has(p); p = g.powerLevelsAuth(p), i++) {
    mainline.set(p, i);
  }
  // The position found when walking from a power levels event (inclusive),
  // memoised for every power levels event on a walk.
  const memo = new Map<number, number>();
  const walk: number[] = [];
  const positionFrom = (start: number): number => {
    let result = Infinity;
    walk.length = 0;
    for (let p = start; p !== NONE; p = g.powerLevelsAuth(p)) {
      const m = mainline.get(p) ?? memo.get(p);
      if (m !== undefined) {
        result = m;
        break;
      }
      if (walk.includes(p)) break; // a cycle: no mainline event on it
      walk.push(p);
    }
    for (const p of walk) memo.set(p, result);
    return result;
  };
  const keyed = events.map((n) => ({
    n,
    position: positionFrom(g.powerLevelsAuth(n)),
    ts: timestamp(g.pdus[n]!.origin_server_ts),
    id: g.ids[n]!,
  }));
  keyed.sort((a, b) => {
    if (a.position !== b.position) return a.position > b.position ? -1 : 1;
    if (a.ts !== b.ts) return a.ts - b.ts;
    return compareCodePoints(a.id, b.id);
  });
  return keyed.map((k) => k.n);
}

function timestamp(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * The original state resolution algorithm (room version 1), as
 * content/rooms/v1.md "State resolution" defines it.
 *
 * R starts as the union of the states without the conflicting keys (a key
 * only some states hold is not a conflict). Conflicts are then settled in
 * passes: `m.room.power_levels`, `m.room.join_rules`, `m.room.member`, then
 * every other key. Within the join rules and member passes each key is
 * settled against R as the previous pass left it, so the answer does not
 * depend on the order keys are visited in.
 */
import { createHash } from 'node:crypto';
import { checkAuthAgainstState } from '../auth/index.js';
import { stateMapKey, type StateMapKey } from '../pdu.js';
import type { Context } from './context.js';
import { NONE } from './graph.js';
import { conflictedValues, findSlot, type KeySlot, type Split } from './split.js';

export function resolveV1(ctx: Context, split: Split): [string, string, string][] {
  const g = ctx.graph;
  const { slots } = split;
  const sha1 = new Map<number, string>();
  const sha1Of = (i: number): string => {
    let h = sha1.get(i);
    if (h === undefined) {
      h = createHash('sha1').update(g.ids[i]!, 'utf8').digest('hex');
      sha1.set(i, h);
    }
    return h;
  };
  const depthOf = (i: number): number => {
    const d = g.pdus[i]!.depth;
    return typeof d === 'number' && Number.isFinite(d) ? d : 0;
  };
  // Ascending depth, then descending sha1(event_id).
  const byDepthAscSha1Desc = (a: number, b: number): number => {
    const d = depthOf(a) - depthOf(b);
    if (d !== 0) return d;
    const ha = sha1Of(a);
    const hb = sha1Of(b);
    return ha < hb ? 1 : ha > hb ? -1 : 0;
  };

  const resolved = new Map<StateMapKey, number>();
  const r = (key: StateMapKey, type: string, stateKey: string): number => {
    const done = resolved.get(key);
    if (done !== undefined) return done;
    const s = findSlot(split, type, stateKey);
    if (s === undefined) return NONE;
    const slot = slots[s]!;
    return slot.values === undefined ? g.lookup(slot.first) : NONE;
  };
  const allowedIn = (event: number, state: (key: StateMapKey, type: string, stateKey: string) => number): boolean =>
    checkAuthAgainstState(
      ctx.rv,
      g.pdus[event]!,
      (type, stateKey) => {
        const e = state(stateMapKey(type, stateKey), type, stateKey);
        return e === NONE ? undefined : g.pdus[e];
      },
      ctx.options.auth,
    ).allowed;

  const candidates = (slot: KeySlot): number[] => conflictedValues(slot).map((id) => g.require(id, 'conflicted state event'));

  /**
   * A power levels, join rules or member conflict: in ascending depth,
   * descending sha1 order, take the first event, then each next one while
   * it is allowed in R (updated with the last one taken).
   */
  const settleAuthConflict = (slot: KeySlot): number => {
    const key = stateMapKey(slot.type, slot.stateKey);
    const list = candidates(slot).sort(byDepthAscSha1Desc);
    let current = list[0]!;
    const state = (k: StateMapKey, t: string, sk: string): number => (k === key ? current : r(k, t, sk));
    for (let i = 1; i < list.length; i++) {
      if (!allowedIn(list[i]!, state)) break;
      current = list[i]!;
    }
    return current;
  };

  const conflictedSlots = slots.filter((s) => s.values !== undefined);
  const pass = (filter: (slot: KeySlot) => boolean, settle: (slot: KeySlot) => number): void => {
    const settled: [StateMapKey, number][] = [];
    for (const slot of conflictedSlots) {
      if (filter(slot)) settled.push([stateMapKey(slot.type, slot.stateKey), settle(slot)]);
    }
    for (const [key, e] of settled) resolved.set(key, e);
  };
  pass((s) => s.type === 'm.room.power_levels' && s.stateKey === '', settleAuthConflict);
  pass((s) => s.type === 'm.room.join_rules', settleAuthConflict);
  pass((s) => s.type === 'm.room.member', settleAuthConflict);
  // Everything else: the event with the highest depth and lowest sha1 that
  // is allowed in R. The spec does not say what happens when none is;
  // like Synapse and Dendrite, take the last one in that order.
  pass(
    (s) => !resolved.has(stateMapKey(s.type, s.stateKey)),
    (slot) => {
      const list = candidates(slot).sort((a, b) => byDepthAscSha1Desc(b, a));
      for (const e of list) if (allowedIn(e, r)) return e;
      return list[list.length - 1]!;
    },
  );

  const out: [string, string, string][] = [];
  for (const slot of slots) {
    if (slot.values === undefined) {
      out.push([slot.type, slot.stateKey, slot.first]);
    } else {
      const e = resolved.get(stateMapKey(slot.type, slot.stateKey))!;
      out.push([slot.type, slot.stateKey, g.ids[e]!]);
    }
  }
  return out;
}

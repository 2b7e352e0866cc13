/**
 * Dividing the input state maps into agreed and conflicted keys, in one pass
 * over the entries.
 */
import { StateResolutionError } from './graph.js';

/** One input entry: `[type, state_key, event_id]`. */
export type StateEntry = readonly [type: string, stateKey: string, eventId: string];

export interface KeySlot {
  readonly type: string;
  readonly stateKey: string;
  /** The event id the first state map holding this key has for it. */
  readonly first: string;
  /** How many state maps hold the key. */
  present: number;
  /** How many state maps hold the key with `first` as its value. */
  agree: number;
  /** Every distinct event id any state map has for the key (only filled once a second value is seen). */
  values: string[] | undefined;
  /** The last state map (by position) that held the key; catches a key given twice in one map. */
  lastSet: number;
}

export interface Split {
  readonly setCount: number;
  readonly slots: KeySlot[];
  /** type → state key → slot (nested rather than one map on joined keys: no string building per entry). */
  readonly byType: Map<string, Map<string, number>>;
  /** Per state map, the slot of each of its entries (same order as the entries). */
  readonly slotOfEntry: Int32Array[];
}

export function splitStates(stateSets: readonly (readonly StateEntry[])[]): Split {
  const byType = new Map<string, Map<string, number>>();
  const slots: KeySlot[] = [];
  const slotOfEntry: Int32Array[] = [];
  for (let s = 0; s < stateSets.length; s++) {
    const set = stateSets[s]!;
    const slotsHere = new Int32Array(set.length);
    for (let k = 0; k < set.length; k++) {
      const entry = set[k]!;
      const [type, stateKey, id] = entry;
      if (typeof type !== 'string' || typeof stateKey !== 'string' || typeof id !== 'string') {
        throw new StateResolutionError(`state map ${s} entry ${k} is not [type, state_key, event_id] strings`);
      }
      let byStateKey = byType.get(type);
      if (byStateKey === undefined) {
        byStateKey = new Map();
        byType.set(type, byStateKey);
      }
      let slotIndex = byStateKey.get(stateKey);
      if (slotIndex === undefined) {
        slotIndex = slots.length;
        byStateKey.set(stateKey, slotIndex);
        slots.push({ type, stateKey, first: id, present: 1, agree: 1, values: undefined, lastSet: s });
      } else {
        const slot = slots[slotIndex]!;
        if (slot.lastSet === s) {
          throw new StateResolutionError(`state map ${s} has (${type}, ${stateKey}) more than once`);
        }
        slot.lastSet = s;
        slot.present++;
        if (id === slot.first) {
          slot.agree++;
        } else if (slot.values === undefined) {
          slot.values = [slot.first, id];
        } else if (!slot.values.includes(id)) {
          slot.values.push(id);
        }
      }
      slotsHere[k] = slotIndex;
    }
    slotOfEntry.push(slotsHere);
  }
  return { setCount: stateSets.length, slots, byType, slotOfEntry };
}

/** The slot of `(type, stateKey)`, or undefined if no state map holds it. */
export function findSlot(split: Split, type: string, stateKey: string): number | undefined {
  return split.byType.get(type)?.get(stateKey);
}

/**
 * v2's definition: a key is unconflicted when every state map holds it with
 * the same value; v1's: when no two state maps give it different values
 * (a key some maps lack is not a conflict).
 */
export function isUnconflicted(slot: KeySlot, setCount: number, v1: boolean): boolean {
  return v1 ? slot.values === undefined : slot.agree === setCount;
}

/** The distinct event ids of a conflicted key. */
export function conflictedValues(slot: KeySlot): readonly string[] {
  return slot.values ?? [slot.first];
}

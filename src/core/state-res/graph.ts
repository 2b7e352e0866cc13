/**
 * The auth-event graph state resolution walks, with event ids interned to
 * small integers so every per-event fact lives in a plain array.
 *
 * Events are taken lazily from the caller's `events` record: only what the
 * algorithm reaches is interned. An id missing from the record (or whose
 * value is not event-shaped) interns as NONE; `auth()` leaves such
 * references out, the way an implementation that cannot fetch an auth event
 * treats it as absent.
 */
import { referencedIds, type PDU } from '../pdu.js';
import { compareCodePoints } from '../canonical-json.js';

/** No event (an id we do not hold, or "not found"). */
export const NONE = -1;

const EMPTY: readonly number[] = Object.freeze([]);

/** Thrown for input the algorithm cannot work with (e.g. a conflicted event we do not hold). */
export class StateResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateResolutionError';
  }
}

function isEventShaped(v: unknown): v is PDU {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<Record<keyof PDU, unknown>>;
  return typeof e.type === 'string' && typeof e.sender === 'string' && Array.isArray(e.auth_events) && typeof e.content === 'object' && e.content !== null;
}

export class EventGraph {
  private readonly index = new Map<string, number>();
  /** Interned index → event id. */
  readonly ids: string[] = [];
  /** Interned index → event. */
  readonly pdus: PDU[] = [];
  private readonly authOf: (readonly number[] | undefined)[] = [];
  /** Interned index → index of the `m.room.power_levels` event among its auth events; -2 = not yet looked up. */
  private readonly plAuth: number[] = [];

  constructor(private readonly source: Readonly<Record<string, object>>) {}

  get size(): number {
    return this.ids.length;
  }

  /** The index of an event id, interning it on first sight; NONE if we do not hold it. */
  lookup(id: string): number {
    const known = this.index.get(id);
    if (known !== undefined) return known;
    // No hasOwn: an inherited property (`constructor`, `__proto__`) is never event-shaped.
    const raw: unknown = this.source[id];
    if (!isEventShaped(raw)) {
      this.index.set(id, NONE);
      return NONE;
    }
    const i = this.ids.length;
    this.ids.push(id);
    this.pdus.push(raw);
    this.authOf.push(undefined);
    this.plAuth.push(-2);
    this.index.set(id, i);
    return i;
  }

  /** Like lookup, but throws if we do not hold the event. */
  require(id: string, why: string): number {
    const i = this.lookup(id);
    if (i === NONE) throw new StateResolutionError(`${why} ${id} is not in the events given`);
    return i;
  }

  /** Interned indices of the event's auth events that we hold, each once. */
  auth(i: number): readonly number[] {
    const cached = this.authOf[i];
    if (cached !== undefined) return cached;
    const refs = this.pdus[i]!.auth_events;
    let out: number[] | undefined;
    if (refs.length > 0) {
      out = [];
      for (const id of referencedIds(refs)) {
        if (typeof id !== 'string') continue;
        const a = this.lookup(id);
        if (a !== NONE && a !== i && !out.includes(a)) out.push(a);
      }
    }
    const result = out === undefined || out.length === 0 ? EMPTY : out;
    this.authOf[i] = result;
    return result;
  }

  /** The auth event of type `type` with state key `stateKey`, or NONE. */
  authOfType(i: number, type: string, stateKey: string): number {
    for (const a of this.auth(i)) {
      const e = this.pdus[a]!;
      if (e.type === type && e.state_key === stateKey) return a;
    }
    return NONE;
  }

  /** The `m.room.power_levels` event among the event's auth events, or NONE. */
  powerLevelsAuth(i: number): number {
    const cached = this.plAuth[i]!;
    if (cached !== -2) return cached;
    const pl = this.authOfType(i, 'm.room.power_levels', '');
    this.plAuth[i] = pl;
    return pl;
  }
}

/**
 * Calls `visit` once for every event reachable from `roots` over auth edges
 * (roots included), an event's auth events before the event itself, without
 * recursion (auth chains can be thousands of events deep). `expand(n)`
 * returning false visits `n` without following its auth events. A cycle
 * (impossible with hashed ids, conceivable with v1/v2 ids) is cut at the
 * edge that closes it.
 */
export function postOrder(graph: EventGraph, roots: Iterable<number>, visit: (n: number) => void, expand?: (n: number) => boolean): void {
  // 0 = unseen, 1 = its auth events are being walked, 2 = visited.
  let marks = new Int8Array(Math.max(64, graph.size));
  const get = (i: number): number => (i < marks.length ? marks[i]! : 0);
  const set = (i: number, v: number): void => {
    if (i >= marks.length) {
      const next = new Int8Array(Math.max(i + 1, marks.length * 2, graph.size));
      next.set(marks);
      marks = next;
    }
    marks[i] = v;
  };
  const stack: number[] = [];
  for (const root of roots) {
    if (get(root) !== 0) continue;
    stack.push(root);
    while (stack.length > 0) {
      const n = stack[stack.length - 1]!;
      const s = get(n);
      if (s === 0) {
        set(n, 1);
        if (expand === undefined || expand(n)) {
          for (const a of graph.auth(n)) if (get(a) === 0) stack.push(a);
        }
      } else {
        stack.pop();
        if (s === 1) {
          set(n, 2);
          visit(n);
        }
      }
    }
  }
}

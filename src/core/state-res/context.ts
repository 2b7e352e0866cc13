/**
 * What every step of a resolution shares: the room version, the graph, which
 * events the caller knows to be rejected, and the way to find an event's
 * create event and its sender's power level.
 */
import { checkAuthAgainstState, isSelectedAuthEvent, userPowerLevel, type AuthCheckOptions } from '../auth/index.js';
import type { PDU } from '../pdu.js';
import type { RoomVersion } from '../room-versions.js';
import { EventGraph, NONE } from './graph.js';
import { Marks } from './marks.js';

export interface ResolveStateOptions {
  /**
   * Whether the server rejected an event (when it received it). A rejected
   * event is never admitted to the resolved state by the iterative auth
   * checks, and a rejected auth event is never used to authorise another.
   * Without it, no event counts as rejected.
   */
  isRejected?: (eventId: string) => boolean;
  /** Passed to the auth rules (e.g. how to check a `join_authorised_via_users_server` signature). */
  auth?: AuthCheckOptions;
}

/** A room state being built: a base layer (read-only) and the changes on top. */
export interface StateView {
  get(type: string, stateKey: string): number;
  set(type: string, stateKey: string, event: number): void;
}

export class Context {
  private readonly rejectedMemo = new Marks();
  private readonly createByRoom = new Map<string, number>();
  private readonly createCopies = new Map<number, PDU>();

  constructor(
    readonly rv: RoomVersion,
    readonly graph: EventGraph,
    readonly options: ResolveStateOptions,
  ) {}

  /**
   * The event as the auth rules should see it. In v3-v11 a create event
   * carries no `event_id` (its id is its reference hash), which the rule
   * letting the creator join right after it needs; we know the id, so the
   * rules get a copy that has it.
   */
  forAuth(i: number): PDU {
    const pdu = this.graph.pdus[i]!;
    if (pdu.type !== 'm.room.create' || pdu.event_id !== undefined || this.rv.eventIdFormat === 'v1' || this.rv.roomIdFromCreateEvent) {
      return pdu;
    }
    let copy = this.createCopies.get(i);
    if (copy === undefined) {
      copy = { ...pdu, event_id: this.graph.ids[i]! };
      this.createCopies.set(i, copy);
    }
    return copy;
  }

  isRejected(i: number): boolean {
    const test = this.options.isRejected;
    if (test === undefined) return false;
    let m = this.rejectedMemo.get(i);
    if (m === 0) {
      m = test(this.graph.ids[i]!) ? 1 : 2;
      this.rejectedMemo.set(i, m);
    }
    return m === 1;
  }

  /**
   * The create event an event is authorised under: the one in its auth
   * events, or (v12+, where events do not cite it) the one the room id names.
   */
  createFor(i: number): number {
    const pdu = this.graph.pdus[i]!;
    if (this.rv.roomIdFromCreateEvent) {
      if (pdu.type === 'm.room.create') return i;
      const roomId = pdu.room_id;
      if (typeof roomId !== 'string') return NONE;
      let c = this.createByRoom.get(roomId);
      if (c === undefined) {
        c = roomId.startsWith('!') ? this.graph.lookup(`$${roomId.slice(1)}`) : NONE;
        if (c !== NONE && this.graph.pdus[c]!.type !== 'm.room.create') c = NONE;
        this.createByRoom.set(roomId, c);
      }
      return c;
    }
    return this.graph.authOfType(i, 'm.room.create', '');
  }

  /** The sender's power level "when looking at the event's auth events". */
  senderPowerLevel(i: number): number {
    const g = this.graph;
    const pl = g.powerLevelsAuth(i);
    const create = this.createFor(i);
    return userPowerLevel(this.rv, g.pdus[i]!.sender, pl === NONE ? undefined : g.pdus[pl], create === NONE ? undefined : g.pdus[create]);
  }

  /**
   * The iterative auth checks: each state event in `order` is checked
   * against `state` and, if allowed, written into it. A key the auth rules
   * need (one of the event's auth events selection) comes from `state` if
   * present and not rejected, else from the event's own `auth_events`
   * unless rejected. Events the caller reports rejected are skipped.
   */
  iterativeAuthChecks(order: readonly number[], state: StateView): void {
    const g = this.graph;
    const rv = this.rv;
    for (const n of order) {
      if (this.isRejected(n)) continue;
      const event = g.pdus[n]!;
      if (typeof event.state_key !== 'string') continue;
      const getState = (type: string, stateKey: string): PDU | undefined => {
        if (isSelectedAuthEvent(rv, event, type, stateKey)) {
          const current = state.get(type, stateKey);
          if (current !== NONE && !this.isRejected(current)) return this.forAuth(current);
        }
        const a = g.authOfType(n, type, stateKey);
        if (a !== NONE && !this.isRejected(a)) return this.forAuth(a);
        if (type === 'm.room.create' && stateKey === '' && rv.roomIdFromCreateEvent) {
          const c = this.createFor(n);
          if (c !== NONE && !this.isRejected(c)) return this.forAuth(c);
        }
        return undefined;
      };
      if (checkAuthAgainstState(rv, event, getState, this.options.auth).allowed) {
        state.set(event.type, event.state_key, n);
      }
    }
  }
}

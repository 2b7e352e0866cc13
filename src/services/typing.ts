/**
 * Typing notifications: who is typing in which room, in memory, each entry
 * expiring after its timeout (30 s by default, at most 120 s as Synapse
 * caps it). Every change (start, stop, expiry, leaving the room) takes a
 * new position on the typing stream and wakes the room's members' syncs.
 *
 * Positions start from the clock at boot, not from 0, so a sync token
 * issued before a restart stays below every position issued after it
 * (unless this process saw more changes than milliseconds elapsed).
 */
import { serverNameOf } from '../core/event-format.js';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PDU } from '../core/pdu.js';
import { forbidden } from '../matrix-error.js';
import type { Schema } from '../storage/schema.js';
import { currentState, roomMembers } from '../storage/state.js';
import type { Notifier } from './notifier.js';
import { withSubsystemLogger } from '../logger.js';

export const DEFAULT_TYPING_TIMEOUT_MS = 30_000;
export const MAX_TYPING_TIMEOUT_MS = 120_000;

interface Typer {
  until: number;
  timer: NodeJS.Timeout;
}

interface RoomTyping {
  users: Map<string, Typer>;
  /** Position of the room's latest change. */
  changed: number;
}

export interface TypingServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  logger?: Logger;
}

/** Told of each change of a local user's typing, for other servers (the federation sender's m.typing). */
export type LocalTypingListener = (roomId: string, userId: string, typing: boolean) => void;

export class TypingService {
  private pos = Date.now();
  private readonly rooms = new Map<string, RoomTyping>();
  private readonly listeners: LocalTypingListener[] = [];

  /** Adds a listener told of every typing request of a local user. */
  onLocalTyping(listener: LocalTypingListener): void {
    this.listeners.push(listener);
  }

  constructor(private readonly d: TypingServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.typing');
  }

  /** The newest typing stream position. */
  position(): number {
    return this.pos;
  }

  /** Users typing in the room now. */
  forRoom(roomId: string): string[] {
    const r = this.rooms.get(roomId);
    if (!r) return [];
    const now = Date.now();
    return [...r.users].filter(([, t]) => t.until > now).map(([u]) => u);
  }

  /** When a user's typing in the room runs out (ms since the epoch), or undefined when not typing. */
  expiresAt(roomId: string, userId: string): number | undefined {
    return this.rooms.get(roomId)?.users.get(userId)?.until;
  }

  /** Rooms whose typing list changed after position `pos`. */
  changedRoomsSince(pos: number): string[] {
    const out: string[] = [];
    for (const [roomId, r] of this.rooms) if (r.changed > pos) out.push(roomId);
    return out;
  }

  /**
   * PUT /rooms/{roomId}/typing/{userId}: only for oneself, only in a room
   * one has joined. `timeoutMs` applies when starting (capped).
   */
  async setTyping(requesterId: string, roomId: string, userId: string, typing: boolean, timeoutMs?: number): Promise<void> {
    if (requesterId !== userId) throw forbidden("Cannot set another user's typing state");
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    if (row?.membership !== 'join') throw forbidden(`User ${userId} not in room ${roomId}`);
    if (typing) this.start(roomId, userId, Math.min(Math.max(timeoutMs ?? DEFAULT_TYPING_TIMEOUT_MS, 0), MAX_TYPING_TIMEOUT_MS));
    else this.stop(roomId, userId);
    for (const l of this.listeners) l(roomId, userId, typing);
  }

  /** Another server's `m.typing` EDU: its user, joined to the room, starts or stops typing (for at most 30 s unless refreshed). */
  async remote(origin: string, roomId: string, userId: string, typing: boolean): Promise<void> {
    if (serverNameOf(userId) !== origin) return;
    const [row] = await currentState(this.d.db, roomId, [['m.room.member', userId]]);
    if (row?.membership !== 'join') return;
    if (typing) this.start(roomId, userId, DEFAULT_TYPING_TIMEOUT_MS);
    else this.stop(roomId, userId);
  }

  /** Event pipeline hook: a user who is no longer joined stops typing. */
  onPersisted(roomId: string, pdu: PDU): void {
    if (pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && pdu.content['membership'] !== 'join') this.stop(roomId, pdu.state_key);
  }

  /** Stops a user's typing (they left the room, or stopped). */
  stop(roomId: string, userId: string): void {
    const r = this.rooms.get(roomId);
    const t = r?.users.get(userId);
    if (!r || !t) return;
    clearTimeout(t.timer);
    r.users.delete(userId);
    this.changed(roomId, r);
  }

  private start(roomId: string, userId: string, timeoutMs: number): void {
    let r = this.rooms.get(roomId);
    if (!r) this.rooms.set(roomId, (r = { users: new Map(), changed: 0 }));
    const existing = r.users.get(userId);
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => this.stop(roomId, userId), timeoutMs);
    timer.unref();
    r.users.set(userId, { until: Date.now() + timeoutMs, timer });
    // Still typing: a refresh, not a change anyone needs to hear about.
    if (!existing) this.changed(roomId, r);
  }

  private changed(roomId: string, r: RoomTyping): void {
    r.changed = ++this.pos;
    void roomMembers(this.d.db, roomId, ['join'])
      .then((members) => this.d.notifier.notifyUsers(members.map((m) => m.user_id)))
      .catch((err: Error) => this.d.logger?.debug({ err: err.message, room: roomId }, 'could not wake members after a typing change'));
  }

  /** Clears every timer (on shutdown). */
  close(): void {
    for (const r of this.rooms.values()) for (const t of r.users.values()) clearTimeout(t.timer);
    this.rooms.clear();
  }
}

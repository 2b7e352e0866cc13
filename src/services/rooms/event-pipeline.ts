/**
 * The way this server's own events are written: a draft is built into a
 * signed PDU (event-builder.ts) and persisted (event-persister.ts) in a
 * transaction of `transaction()`, whose committed hooks wake whoever must
 * know. Events of one room are created one at a time (a per-room queue), so
 * each local event is built on the state its predecessor left.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { JsonObject, PDU } from '../../core/pdu.js';
import { serverNameOf } from '../../core/event-format.js';
import { requireRoomVersion, type RoomVersion } from '../../core/room-versions.js';
import { MatrixError } from '../../matrix-error.js';
import type { Db, Tx } from '../../storage/db.js';
import { getRoom, type RoomRow } from '../../storage/rooms.js';
import type { Schema } from '../../storage/schema.js';
import type { ServerKeys } from '../server-keys.js';
import { EventBuilder } from './event-builder.js';
import type { EventDraft } from './event-draft.js';
import { EventPersister, type CommittedHook, type PersistedEvent, type PersistHook } from './event-persister.js';

export type { EventDraft } from './event-draft.js';
export type { PersistedEvent, PersistHook, CommittedHook } from './event-persister.js';

/**
 * Has another server co-sign an invite of its user (federation's /invite),
 * returning the event with its signature added; throws MatrixError when
 * that server refuses or cannot be reached.
 */
export type InviteCosigner = (db: Db, room: RoomRow, rv: RoomVersion, pdu: PDU) => Promise<PDU>;

export class EventPipeline {
  private readonly queues = new Map<string, Promise<unknown>>();
  private cosigner: InviteCosigner | undefined;
  readonly builder: EventBuilder;
  readonly persister: EventPersister;

  constructor(
    db: Kysely<Schema>,
    private readonly serverName: string,
    keys: ServerKeys,
    logger?: Logger,
  ) {
    this.builder = new EventBuilder(serverName, keys);
    this.persister = new EventPersister(db, logger);
  }

  /** Sets who has another server co-sign an invite of its user (the federation invites service). */
  setInviteCosigner(cosigner: InviteCosigner): void {
    this.cosigner = cosigner;
  }

  /** Adds a hook run inside the transaction for every live persisted event (see PersistHook). */
  addPersistHook(hook: PersistHook): void {
    this.persister.addPersistHook(hook);
  }

  /** Adds a hook run after each commit with the events it persisted (see CommittedHook). */
  onCommitted(hook: CommittedHook): void {
    this.persister.onCommitted(hook);
  }

  /** One transaction in which events may be persisted; the committed hooks run after it commits. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.persister.transaction(fn);
  }

  /**
   * `transaction()` with the room's queue held while it runs: the committed
   * hooks (waking syncs) run once the queue is free for the room's next event.
   */
  roomTransaction<T>(roomId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.persister.transaction(fn, (run) => this.inRoomQueue(roomId, run));
  }

  /**
   * Runs `fn` with the room's queue held: calls for one room run one after
   * another, calls for different rooms run side by side.
   */
  async inRoomQueue<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(roomId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.queues.set(roomId, chained);
    await prev.catch(() => undefined);
    try {
      return await fn();
    } finally {
      release();
      if (this.queues.get(roomId) === chained) this.queues.delete(roomId);
    }
  }

  /**
   * Builds, signs, auth-checks and stores one local event in `tx` (a
   * transaction of `transaction()`). The caller holds the room's queue.
   */
  async persist(tx: Tx, room: RoomRow, sender: string, draft: EventDraft, now = Date.now(), prebuilt?: PDU): Promise<PersistedEvent> {
    const rv = requireRoomVersion(room.room_version);
    // A prebuilt event is a create event: it has no prev events, and the room no extremities yet.
    const built = prebuilt ? { pdu: prebuilt, citesAllExtremities: true } : await this.builder.build(tx, room, rv, sender, draft, now);
    const pdu = this.isRemoteInvite(built.pdu) ? await this.cosign(tx, room, rv, built.pdu) : built.pdu;
    return this.persister.persist(tx, room, pdu, { local: true, citesAllExtremities: built.citesAllExtremities });
  }

  /**
   * An invite of another server's user, outside any transaction: built on
   * the current state, checked, co-signed by that server (which may take its
   * time, so no database connection is held meanwhile), then stored in a
   * transaction of its own. The caller holds the room's queue, so nothing
   * else is built on the room in between.
   */
  async persistRemoteInvite(db: Kysely<Schema>, roomId: string, sender: string, draft: EventDraft, now = Date.now()): Promise<PersistedEvent> {
    const room = await this.room(db, roomId);
    const rv = requireRoomVersion(room.room_version);
    const built = await this.builder.build(db, room, rv, sender, draft, now);
    const pdu = await this.cosign(db, room, rv, built.pdu);
    return this.persister.transaction(async (tx) => this.persister.persist(tx, await this.room(tx, roomId), pdu, { local: true, citesAllExtremities: built.citesAllExtremities }));
  }

  /** Whether a member event is an invite of another server's user (co-signed by that server before it is stored). */
  isRemoteInviteOf(target: string, membership: string): boolean {
    const server = serverNameOf(target);
    return membership === 'invite' && server !== undefined && server !== this.serverName;
  }

  private async cosign(db: Db, room: RoomRow, rv: RoomVersion, pdu: PDU): Promise<PDU> {
    if (!this.cosigner) throw new MatrixError(403, 'M_FORBIDDEN', 'This server cannot invite users of other servers');
    // The rules are asked first, so another server never hears of an invite we would refuse.
    const refused = await this.persister.checkAgainstCurrentState(db, room, pdu);
    if (refused !== undefined) throw new MatrixError(403, 'M_FORBIDDEN', refused);
    return this.cosigner(db, room, rv, pdu);
  }

  private isRemoteInvite(pdu: PDU): boolean {
    return pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' && this.isRemoteInviteOf(pdu.state_key, String(pdu.content['membership']));
  }

  /** Loads the room or answers 404 M_NOT_FOUND. */
  async room(db: Db, roomId: string): Promise<RoomRow> {
    const room = await getRoom(db, roomId);
    if (!room) throw new MatrixError(404, 'M_NOT_FOUND', 'Unknown room');
    return room;
  }

  buildCreateEvent(rv: RoomVersion, roomId: string | undefined, sender: string, content: JsonObject, now = Date.now()): PDU {
    return this.builder.buildCreateEvent(rv, roomId, sender, content, now);
  }
}

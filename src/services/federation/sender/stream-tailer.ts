/**
 * Tails the events stream for the federation sender. The stored position
 * (`federation_stream_position`) is the last stream ordering whose fan-out
 * is queued. A poke (after any commit) reads this server's live events
 * above it, up to the settled events position (nothing below it can still
 * commit, see streams/positions.ts), in batches of `BATCH`; for each event
 * the destinations are the servers with a joined member in the room's
 * current state (one query per room and batch), plus, for a member event,
 * the server of its state_key (so a kicked, banned or departed user's
 * server hears of it), less our own and any outside
 * federation_domain_whitelist. The outbox rows and the new position are
 * written in one transaction, so a crash loses or repeats nothing; at start
 * the tailer catches up from the stored position. A batch that queues
 * nothing (events in rooms with no other server, the usual case on a server
 * that federates little) moves the position in memory only, written with
 * the next batch that queues something, after `PERSIST_EVERY` orderings,
 * and at close: after a crash those few events are looked at again.
 */
import type { Kysely } from 'kysely';
import { serverNameOf } from '../../../core/event-format.js';
import type { Logger } from 'pino';
import { lockStreamPosition, localEventsBetween, queuePdus, setStreamPosition, streamPosition, type OutgoingEventRow, type QueuedPdu } from '../../../storage/federation-queue.js';
import { joinedServers } from '../../../storage/memberships.js';
import type { Schema } from '../../../storage/schema.js';
import type { StreamPositions } from '../../streams/positions.js';

/** Events read per step. */
export const TAIL_BATCH = 100;
/** When the settled position was held back by a writer, look again this soon. */
const HELD_RETRY_MS = 100;
/** After a database failure, try again this much later. */
const ERROR_RETRY_MS = 5_000;
/** A position moved by batches that queued nothing is written once it is this far ahead of the stored one. */
export const PERSIST_EVERY = 1000;

export interface TailerDeps {
  db: Kysely<Schema>;
  serverName: string;
  positions: StreamPositions;
  /** Whether federation_domain_whitelist lets us send there. */
  allows(destination: string): boolean;
  logger: Logger;
  /** After a commit that queued PDUs, with their destinations. */
  onQueued(destinations: ReadonlySet<string>): void;
}

export class StreamTailer {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** How far fan-out is done (in memory), and what the database holds. */
  private position: { done: number; stored: number } | undefined;

  constructor(private readonly d: TailerDeps) {}

  /** Something committed: queue its fan-out (coalesced with a run in progress). */
  poke(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops; waits for the step in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    const p = this.position;
    if (p && p.done > p.stored) {
      await this.d.db
        .transaction()
        .execute(async (tx) => {
          if ((await lockStreamPosition(tx)) === p.stored) await setStreamPosition(tx, p.done);
        })
        .catch((err: unknown) => this.d.logger.warn({ err }, 'federation sender: could not store the stream position'));
    }
  }

  /** The stream ordering up to which fan-out is queued (undefined before the first run). */
  get queuedThrough(): number | undefined {
    return this.position?.done;
  }

  /** Waits until the run in progress (if any) is done (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private later(ms: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poke();
    }, ms);
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        while (!this.closed && (await this.step())) {
          // another batch
        }
      } catch (err) {
        if (this.closed) return;
        this.d.logger.error({ err }, 'federation sender: queueing events failed');
        this.later(ERROR_RETRY_MS);
        return;
      }
    } while (this.again && !this.closed);
  }

  /** Queues one batch; false when caught up. */
  private async step(): Promise<boolean> {
    const upTo = (await this.d.positions.current()).events;
    if (this.d.positions.held) this.later(HELD_RETRY_MS);
    if (!this.position) {
      const stored = await streamPosition(this.d.db);
      this.position = { done: stored, stored };
    }
    const from = this.position.done;
    if (upTo <= from) return false;
    const events = await localEventsBetween(this.d.db, { after: from, upTo, serverName: this.d.serverName, limit: TAIL_BATCH });
    const full = events.length === TAIL_BATCH;
    const next = full ? events[events.length - 1]!.stream_ordering : upTo;
    const pdus = await this.fanOut(events);
    if (this.closed) return false;
    const { stored } = this.position;
    if (pdus.length === 0 && next - stored < PERSIST_EVERY) {
      this.position = { done: next, stored };
      return true;
    }
    const moved = await this.d.db.transaction().execute(async (tx) => {
      // Another process moved it: read it again.
      if ((await lockStreamPosition(tx)) !== stored) return false;
      await queuePdus(tx, pdus);
      await setStreamPosition(tx, next);
      return true;
    });
    if (!moved) {
      this.position = undefined;
      return true;
    }
    this.position = { done: next, stored: next };
    if (pdus.length > 0) this.d.onQueued(new Set(pdus.map((p) => p.destination)));
    return true;
  }

  private async fanOut(events: readonly OutgoingEventRow[]): Promise<QueuedPdu[]> {
    const servers = new Map<string, string[]>();
    for (const e of events) {
      if (!servers.has(e.room_id)) servers.set(e.room_id, await joinedServers(this.d.db, e.room_id));
    }
    const out: QueuedPdu[] = [];
    for (const e of events) {
      const dests = new Set(servers.get(e.room_id));
      if (e.type === 'm.room.member' && e.state_key !== null) {
        const server = serverNameOf(e.state_key);
        if (server !== undefined) dests.add(server);
      }
      for (const destination of [...dests].sort()) {
        if (destination === '' || destination === this.d.serverName || !this.d.allows(destination)) continue;
        out.push({ destination, roomId: e.room_id, eventId: e.event_id, streamOrdering: e.stream_ordering });
      }
    }
    return out;
  }
}

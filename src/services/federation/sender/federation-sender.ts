/**
 * The outbound federation sender: our events and EDUs reach the other
 * servers of their rooms, durably and in order, one transaction in flight
 * per destination.
 *
 * - `poke()` (after every commit) lets the StreamTailer queue the fan-out
 *   of new local events into each destination's outbox (the database).
 * - `queueEdu` / `queueEduForRoom` put EDUs in the same outboxes (durable,
 *   so to-device messages survive a restart; a `key` replaces the unsent
 *   EDU of the same destination, type and key, e.g. typing per room+user).
 * - A DestinationQueue per destination with work sends transactions and
 *   keeps the retry state; queues are made on demand and forgotten when
 *   idle, so memory holds only destinations with something to do.
 * - The destinations admin API reads the retry state here and
 *   `resetConnection` clears a backoff and wakes the queue.
 * - `send_federation: false` turns all sending off (nothing is queued).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { clearBackoff, destinationRooms, getDestination, listDestinations, type DestinationOrderBy, type DestinationRow } from '../../../storage/federation-destinations.js';
import { destinationsWithWork, queueEdu } from '../../../storage/federation-queue.js';
import { joinedServers } from '../../../storage/memberships.js';
import type { Schema } from '../../../storage/schema.js';
import type { StreamPositions } from '../../streams/positions.js';
import type { FederationClient } from '../federation-client.js';
import { DestinationQueue } from './destination-queue.js';
import type { SenderSettings } from './settings.js';
import { StreamTailer } from './stream-tailer.js';

export type { DestinationOrderBy, DestinationRow } from '../../../storage/federation-destinations.js';
export { DESTINATION_ORDER_BY } from '../../../storage/federation-destinations.js';

export interface FederationSenderDeps {
  db: Kysely<Schema>;
  serverName: string;
  client: Pick<FederationClient, 'request' | 'allowsDestination'>;
  positions: StreamPositions;
  settings: SenderSettings;
  logger: Logger;
  now?: () => number;
}

export type ResetConnectionResult = 'reset' | 'unknown' | 'not_backing_off';

export class FederationSender {
  private readonly queues = new Map<string, DestinationQueue>();
  private readonly tailer: StreamTailer;
  private readonly now: () => number;
  private started = false;
  private closed = false;

  constructor(private readonly d: FederationSenderDeps) {
    this.now = d.now ?? Date.now;
    this.tailer = new StreamTailer({
      db: d.db,
      serverName: d.serverName,
      positions: d.positions,
      allows: (dest) => this.allows(dest),
      logger: d.logger,
      onQueued: (dests) => {
        for (const dest of dests) this.queue(dest).wake();
      },
    });
  }

  get enabled(): boolean {
    return this.d.settings.enabled;
  }

  /** Catches up: the events committed since the stored position, and every destination with rows waiting. */
  async start(): Promise<void> {
    if (!this.enabled || this.started || this.closed) return;
    this.started = true;
    for (const dest of await destinationsWithWork(this.d.db)) this.queue(dest).wake();
    this.tailer.poke();
  }

  /** New events may have committed. */
  poke(): void {
    if (this.started && !this.closed) this.tailer.poke();
  }

  /** The events stream ordering up to which fan-out is queued (tests, diagnostics). */
  queuedThrough(): number | undefined {
    return this.tailer.queuedThrough;
  }

  /** Queues an EDU for one server (durably); see the file's comment for `key`. */
  async queueEdu(destination: string, eduType: string, content: Record<string, unknown>, opts: { key?: string } = {}): Promise<void> {
    if (!this.enabled || this.closed || !this.allows(destination)) return;
    await queueEdu(this.d.db, { destination, eduType, key: opts.key ?? null, content });
    if (this.started) this.queue(destination).wake();
  }

  /** Queues an EDU for every other server with a joined member in the room. */
  async queueEduForRoom(roomId: string, eduType: string, content: Record<string, unknown>, key?: string): Promise<void> {
    if (!this.enabled || this.closed) return;
    const servers = (await joinedServers(this.d.db, roomId)).sort();
    for (const dest of servers) await this.queueEdu(dest, eduType, content, key === undefined ? {} : { key });
  }

  // ---- the destinations admin API

  listDestinations(o: { from: number; limit: number; filter?: string; orderBy: DestinationOrderBy; dir: 'f' | 'b' }): Promise<{ rows: DestinationRow[]; total: number }> {
    return listDestinations(this.d.db, o);
  }

  getDestination(destination: string): Promise<DestinationRow | undefined> {
    return getDestination(this.d.db, destination);
  }

  /** The destination's rooms, or undefined for an unknown destination. */
  async destinationRooms(o: {
    destination: string;
    from: number;
    limit: number;
    dir: 'f' | 'b';
  }): Promise<{ rows: { room_id: string; stream_ordering: number }[]; total: number } | undefined> {
    if (!(await getDestination(this.d.db, o.destination))) return undefined;
    return destinationRooms(this.d.db, o);
  }

  /** Clears the destination's backoff and tries it now (Synapse refuses when it is not backing off). */
  async resetConnection(destination: string): Promise<ResetConnectionResult> {
    const row = await getDestination(this.d.db, destination);
    if (!row) return 'unknown';
    if (!row.retry_last_ts) return 'not_backing_off';
    await clearBackoff(this.d.db, destination);
    if (this.started && !this.closed) this.queue(destination).reset();
    return 'reset';
  }

  /** Stops the tailer, the timers and the requests in flight (aborted), and waits for the loops to end. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.tailer.close(), ...[...this.queues.values()].map((q) => q.close())]);
    this.queues.clear();
  }

  private allows(destination: string): boolean {
    return destination !== this.d.serverName && this.d.client.allowsDestination(destination);
  }

  private queue(destination: string): DestinationQueue {
    let q = this.queues.get(destination);
    if (!q) {
      q = new DestinationQueue(
        {
          db: this.d.db,
          serverName: this.d.serverName,
          client: this.d.client,
          settings: this.d.settings,
          logger: this.d.logger,
          now: this.now,
          onIdle: (done) => {
            if (this.queues.get(done.destination) === done) this.queues.delete(done.destination);
          },
        },
        destination,
      );
      this.queues.set(destination, q);
    }
    return q;
  }
}

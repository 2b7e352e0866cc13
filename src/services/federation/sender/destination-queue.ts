/**
 * One destination's sending loop: one transaction in flight at a time.
 *
 * - A transaction takes the oldest unsent outbox rows (at most 50 PDUs and
 *   100 EDUs) under a new txn id, recorded on the destination and on the
 *   rows, so a retry sends the same transaction under the same id (a
 *   remote that had processed it answers from its cache and nothing is
 *   doubled or lost). The rows are deleted once the remote answers 200.
 * - On a failure (network, TLS, any non-2xx) the retry state is recorded
 *   (backoff.ts) and nothing is sent until it runs out; a wake during the
 *   backoff does not cut it short, reset_connection does.
 * - Catch-up: once the destination has failed (and until its next
 *   success, whatever reset_connection clears), before each attempt, a room with more than 50 unsent PDUs keeps only its
 *   newest 10; the remote fills the gap with /get_missing_events.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { getDestination, recordFailure } from '../../../storage/federation-destinations.js';
import { completeTransaction, takeTransaction, transactionEdus, transactionPdus, trimBacklog } from '../../../storage/federation-queue.js';
import type { Schema } from '../../../storage/schema.js';
import type { FederationClient } from '../federation-client.js';
import { backoffRemaining, nextRetryInterval } from './backoff.js';
import type { SenderSettings } from './settings.js';

export const MAX_PDUS_PER_TXN = 50;
export const MAX_EDUS_PER_TXN = 100;
/** A room with more unsent PDUs than this for a failing destination is trimmed… */
export const CATCH_UP_THRESHOLD = 50;
/** …to its newest this many. */
export const CATCH_UP_KEEP = 10;
/** How long a /send may take. */
const SEND_TIMEOUT_MS = 60_000;
/** After a database failure in the loop, try again this much later. */
const ERROR_RETRY_MS = 5_000;
/** setTimeout's limit (a longer backoff wakes early, finds time left and waits again). */
const MAX_TIMER_MS = 2_147_483_647;

export interface DestinationQueueDeps {
  db: Kysely<Schema>;
  serverName: string;
  client: Pick<FederationClient, 'request'>;
  settings: SenderSettings;
  logger: Logger;
  now: () => number;
  /** The loop has stopped with no timer pending (the queue may be forgotten). */
  onIdle(queue: DestinationQueue): void;
}

export class DestinationQueue {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: AbortController | undefined;
  private closed = false;

  constructor(
    private readonly d: DestinationQueueDeps,
    readonly destination: string,
  ) {}

  /** Whether a backoff timer is pending. */
  get backingOff(): boolean {
    return this.timer !== undefined;
  }

  /** Something was queued: send it, unless backing off (the timer will). */
  wake(): void {
    if (this.closed || this.timer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (!this.timer && !this.closed) this.d.onIdle(this);
    });
  }

  /** The backoff was cleared (reset_connection): try now. */
  reset(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.wake();
  }

  /** Stops the timer and aborts the request in flight; waits for the loop to end. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
    await this.running;
  }

  /** Resolves when the loop is not running (tests). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private later(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.wake();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        while (!this.closed && (await this.step())) {
          // the next transaction
        }
      } catch (err) {
        if (this.closed) return;
        this.d.logger.error({ err, destination: this.destination }, 'federation sender: destination queue failed');
        this.later(ERROR_RETRY_MS);
        return;
      }
    } while (this.again && !this.closed && !this.timer);
  }

  /** Sends one transaction; false when there is nothing to send or the destination is backing off. */
  private async step(): Promise<boolean> {
    const { db } = this.d;
    const row = await getDestination(db, this.destination);
    if (!row) return false;
    const wait = backoffRemaining(row, this.d.now());
    if (wait > 0) {
      this.later(wait);
      return false;
    }
    if (row.catching_up) {
      const dropped = await db.transaction().execute((tx) => trimBacklog(tx, this.destination, CATCH_UP_THRESHOLD, CATCH_UP_KEEP));
      if (dropped > 0) this.d.logger.info({ destination: this.destination, dropped }, 'federation sender: catching up, older PDUs dropped');
    }
    let txnId = row.txn_id;
    if (txnId === null) {
      const fresh = `${this.d.now()}-${randomBytes(6).toString('hex')}`;
      const took = await db
        .transaction()
        .execute((tx) => takeTransaction(tx, { destination: this.destination, txnId: fresh, maxPdus: MAX_PDUS_PER_TXN, maxEdus: MAX_EDUS_PER_TXN }));
      if (!took) return false;
      txnId = fresh;
    }
    const [pdus, edus] = [await transactionPdus(db, this.destination, txnId), await transactionEdus(db, this.destination, txnId)];
    const lastStreamOrdering = pdus.reduce<number | null>((m, p) => (m === null || p.stream_ordering > m ? p.stream_ordering : m), null);
    if (pdus.length > 0 || edus.length > 0) {
      const sent = await this.send(txnId, row.retry_interval, {
        origin: this.d.serverName,
        origin_server_ts: this.d.now(),
        pdus: pdus.map((p) => p.json),
        edus: edus.map((e) => ({ edu_type: e.edu_type, content: e.content })),
      });
      if (!sent) return false;
    }
    await db.transaction().execute((tx) => completeTransaction(tx, { destination: this.destination, txnId, lastStreamOrdering }));
    return true;
  }

  /** PUTs the transaction; on failure records the backoff and schedules the retry. */
  private async send(txnId: string, currentInterval: number | null, body: Record<string, unknown>): Promise<boolean> {
    const abort = new AbortController();
    this.inFlight = abort;
    try {
      const request = this.d.client.request<{ pdus?: Record<string, { error?: string }> }>({
        destination: this.destination,
        method: 'PUT',
        path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
        body,
        timeoutMs: SEND_TIMEOUT_MS,
        signal: abort.signal,
      });
      // Name resolution does not take the signal: on close, stop waiting for it at once.
      const aborted = new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(new Error('shutting down')), { once: true }));
      request.catch(() => undefined);
      const res = await Promise.race([request, aborted]);
      const results = res.json?.pdus;
      if (results && typeof results === 'object') {
        for (const [eventId, r] of Object.entries(results)) {
          if (r && typeof r === 'object' && typeof r.error === 'string') {
            this.d.logger.info({ destination: this.destination, eventId, error: r.error }, 'federation sender: the destination refused a PDU');
          }
        }
      }
      return true;
    } catch (err) {
      if (this.closed) return false;
      const interval = nextRetryInterval(currentInterval, this.d.settings);
      await recordFailure(this.d.db, this.destination, this.d.now(), interval);
      this.d.logger.warn({ destination: this.destination, txnId, retryInMs: interval, reason: (err as Error).message }, 'federation sender: sending failed, backing off');
      this.later(interval);
      return false;
    } finally {
      this.inFlight = undefined;
    }
  }
}

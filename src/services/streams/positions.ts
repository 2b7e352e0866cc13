/**
 * The positions a /sync may report as `next_batch` for the database
 * streams (events, account data, to-device messages, device-list changes;
 * storage/sync.ts DB_STREAMS). A position may only be handed out once
 * every position below it is settled: stream positions are taken from a
 * sequence when a row is inserted, so two transactions can commit out of
 * order (a send in room A takes 10, a send in room B takes 11 and commits
 * first). Reporting 11 before 10 is visible would skip 10 for good.
 *
 * So, for each stream, the newest settled position is kept:
 * - Usually every position above it up to the newest committed one is
 *   present (count equals distance), and that newest one becomes settled:
 *   one small index query, no locks.
 * - When positions are missing (still being written, rolled back, or an
 *   account-data row overwritten), a SHARE lock on the tables waits for the
 *   transactions writing them, and the maxima read then are settled. The
 *   wait is bounded (it holds new writers back while it lasts); when it
 *   runs out, positions advance only to the first missing one, `held` is
 *   set so waiting syncs poll again shortly, and the lock is not tried
 *   again for a second, so a long transaction does not stall other writers.
 *
 * Concurrent callers share one computation, and a caller arriving while
 * one runs gets the next one (started after it asked), so a sync woken by a
 * commit always sees that commit. Positions live in the database, so they
 * survive a restart.
 */
import type { Kysely } from 'kysely';
import type { Schema } from '../../storage/schema.js';
import type { WriteEpoch } from '../../storage/write-epoch.js';
import { SharedRun } from './shared-run.js';
import { contiguousUpTo, DB_STREAM_NAMES, type DbPositions, settledStreamMax, streamHighWater } from '../../storage/sync.js';

export type { DbPositions } from '../../storage/sync.js';

/** How long one computation may wait for writers before giving up. */
const LOCK_TIMEOUT_MS = 300;
/** After a wait ran out, how long before the lock is tried again. */
const LOCK_BACKOFF_MS = 1000;

export class StreamPositions {
  private settled: DbPositions | undefined;
  private readonly run = new SharedRun(() => this.compute());
  private lockAfter = 0;
  /** The last computation could not settle every committed position (writers still running). */
  held = false;
  /** The last settled positions and the write count when their computation started. */
  private fresh: { epoch: number; positions: DbPositions } | undefined;

  /**
   * `writes`, when given, is the database's count of committed writes: while
   * it has not moved since the last computation started, that computation's
   * positions are still the current ones and no query is made (most syncs
   * between two sends then cost none).
   */
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly writes?: WriteEpoch,
  ) {}

  current(): Promise<DbPositions> {
    const fresh = this.fresh;
    if (fresh && this.writes && fresh.epoch === this.writes.value && !this.held) return Promise.resolve({ ...fresh.positions });
    return this.run.get();
  }

  private async compute(): Promise<DbPositions> {
    const epoch = this.writes?.value ?? 0;
    const positions = await this.settle();
    if (!this.held) this.fresh = { epoch, positions: { ...positions } };
    return positions;
  }

  private async settle(): Promise<DbPositions> {
    if (!this.settled) {
      // First use: wait (as long as it takes) for writers once.
      for (let timeout = 1000; ; timeout = Math.min(timeout * 2, 30_000)) {
        const s = await settledStreamMax(this.db, timeout);
        if (s) {
          this.settled = s;
          this.held = false;
          return s;
        }
      }
    }
    const base = this.settled;
    const hw = await streamHighWater(this.db, base);
    const next = { ...base };
    const gaps = DB_STREAM_NAMES.filter((n) => {
      const h = hw[n];
      if (h.max === null) return false;
      if (h.count === h.max - base[n]) {
        next[n] = h.max;
        return false;
      }
      return true;
    });
    this.held = false;
    if (gaps.length > 0) {
      const s = Date.now() >= this.lockAfter ? await settledStreamMax(this.db, LOCK_TIMEOUT_MS) : undefined;
      if (s) {
        // Rows can be deleted (to-device messages of a removed device), so a maximum never moves a position back.
        for (const n of DB_STREAM_NAMES) next[n] = Math.max(next[n], s[n]);
      } else {
        if (Date.now() >= this.lockAfter) this.lockAfter = Date.now() + LOCK_BACKOFF_MS;
        for (const n of gaps) next[n] = await contiguousUpTo(this.db, n, base[n]);
        this.held = true;
      }
    }
    this.settled = next;
    return next;
  }
}

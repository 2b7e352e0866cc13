/**
 * A counter of the writes this process has committed, kept by wrapping the
 * pool kysely runs every statement through: it moves on after a statement
 * outside a transaction changed rows, and after the COMMIT of a transaction
 * in which one did.
 *
 * What it is for: something computed from the database (the stream
 * positions every /sync reads first) is still current while the counter has
 * not moved since the computation started, so it need not be read again.
 * Only this process's writes are seen; Axon is the one process writing its
 * database (no workers), and the other commands write through its HTTP API.
 */
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

export class WriteEpoch {
  value = 0;
}

const BEGINS = /^\s*(begin|start\s+transaction)\b/i;
const COMMITS = /^\s*(commit|end)\b/i;
const ROLLS_BACK = /^\s*(rollback|abort)\s*;?\s*$/i;
/** Statements that change no row: reads, savepoints, session settings, locks. */
const CHANGES_NOTHING = /^\s*(select|savepoint|release|rollback|set|show|lock|explain)\b/i;
/** A data-modifying CTE can sit under a SELECT that returns no row: count it whatever its row count. */
const MAY_HIDE_WRITES = /^\s*with\b/i;

/** `pool`, with every committed change counted on `epoch`. */
export function countWrites(pool: PostgresPool, epoch: WriteEpoch): PostgresPool {
  return {
    connect: async () => {
      const client = await pool.connect();
      let inTransaction = false;
      let wrote = false;
      const changed = (sql: string, rowCount: unknown) => {
        if (MAY_HIDE_WRITES.test(sql)) return true;
        return rowCount === undefined || rowCount === null || Number(rowCount) > 0;
      };
      const counted: PostgresPoolClient = {
        query: (async (sql: string, parameters: readonly unknown[]) => {
          if (BEGINS.test(sql)) {
            inTransaction = true;
            wrote = false;
          }
          const ends = COMMITS.test(sql) || ROLLS_BACK.test(sql);
          try {
            const res = (await client.query(sql, parameters)) as PostgresQueryResult<unknown>;
            if (COMMITS.test(sql) && wrote) epoch.value++;
            else if (!ends && !BEGINS.test(sql) && !CHANGES_NOTHING.test(sql) && changed(sql, res.rowCount)) {
              if (inTransaction) wrote = true;
              else epoch.value++;
            }
            return res;
          } catch (err) {
            // A failed statement changed nothing, unless the connection broke as it committed: count that to be safe.
            if (COMMITS.test(sql) ? wrote : !inTransaction && !CHANGES_NOTHING.test(sql)) epoch.value++;
            throw err;
          } finally {
            if (ends) inTransaction = false;
          }
        }) as PostgresPoolClient['query'],
        release: (destroy?: boolean) => client.release(destroy),
      };
      return counted;
    },
    end: () => pool.end(),
  };
}

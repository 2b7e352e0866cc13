/**
 * Presents an embedded PostgreSQL (PGlite) as the small pool interface that
 * kysely's PostgresDialect drives, so the embedded default and a real server
 * run the very same queries.
 *
 * PGlite is one connection; a transaction must own it from BEGIN to COMMIT,
 * so `connect()` hands the single client out to one caller at a time.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';

const MUTATING = /^\s*(insert|update|delete|merge)\b/i;

export class PGlitePool implements PostgresPool {
  private busy = false;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly pg: PGlite) {}

  async connect(): Promise<PostgresPoolClient> {
    if (this.busy) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.busy = true;
    let released = false;
    const client: PostgresPoolClient = {
      query: (async (sql: string, parameters: readonly unknown[]) => {
        const res = await this.pg.query<Record<string, unknown>>(sql, parameters as unknown[]);
        const command = (MUTATING.exec(sql)?.[1]?.toUpperCase() ?? 'SELECT') as PostgresQueryResult<unknown>['command'];
        return { command, rowCount: res.affectedRows ?? res.rows.length, rows: res.rows };
      }) as PostgresPoolClient['query'],
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiters.shift();
        if (next) next();
        else this.busy = false;
      },
    };
    return client;
  }

  async end(): Promise<void> {
    await this.pg.close();
  }
}

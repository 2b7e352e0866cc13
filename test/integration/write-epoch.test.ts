/**
 * The count of committed writes (storage/write-epoch.ts) and the stream
 * positions that every /sync reads through it: reused while nothing was
 * written, read again after any write commits (on PostgreSQL or embedded,
 * as AXON_TEST_DB says).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { StreamPositions } from '../../src/services/streams/positions.js';
import { putAccountData } from '../../src/storage/account-data.js';
import type { Database } from '../../src/storage/database.js';
import { type OpenedTestDatabase, openMigratedTestDatabase, testDatabaseKind } from '../helpers/database.js';

let database: Database;
let pgUrl: string | undefined;
const kind = await testDatabaseKind();
let opened: OpenedTestDatabase | undefined;

beforeAll(async () => {
  opened = await openMigratedTestDatabase();
  database = opened.database;
  pgUrl = opened.url;
});

afterAll(async () => {
  await opened?.close();
});

async function moved(fn: () => Promise<unknown>): Promise<number> {
  const before = database.writes.value;
  await fn().catch(() => undefined);
  return database.writes.value - before;
}

describe('the write count', () => {
  it('does not move for reads, nor for writes that change no row', async () => {
    const db = database.db;
    expect(await moved(() => db.selectFrom('server_meta').selectAll().execute())).toBe(0);
    expect(await moved(() => sql`  SELECT 1`.execute(db))).toBe(0);
    expect(await moved(() => db.deleteFrom('server_meta').where('key', '=', 'no such key').execute())).toBe(0);
    expect(await moved(() => db.updateTable('server_meta').set({ value: 'x' }).where('key', '=', 'no such key').execute())).toBe(0);
  });

  it('moves after a statement that changed rows, and after every commit', async () => {
    const db = database.db;
    expect(await moved(() => db.insertInto('server_meta').values({ key: 'epoch-test', value: 'a', updated_ts: 1 }).execute())).toBeGreaterThan(0);
    expect(await moved(() => db.deleteFrom('server_meta').where('key', '=', 'epoch-test').execute())).toBeGreaterThan(0);
    // A transaction that wrote: counted at its commit, whatever came before.
    let inside = 0;
    const total = await moved(() =>
      db.transaction().execute(async (tx) => {
        await tx.insertInto('server_meta').values({ key: 'epoch-tx', value: 'b', updated_ts: 1 }).execute();
        inside = database.writes.value;
      }),
    );
    expect(total).toBeGreaterThan(0);
    expect(database.writes.value).toBeGreaterThan(inside);
    // A failed write is counted too (it may have broken as it committed).
    expect(await moved(() => db.insertInto('server_meta').values({ key: 'epoch-tx', value: 'dup', updated_ts: 1 }).execute())).toBe(1);
  });

  it('does not move for a transaction that only read or locked, nor for one rolled back', async () => {
    const db = database.db;
    expect(
      await moved(() =>
        db.transaction().execute(async (tx) => {
          await sql`LOCK TABLE server_meta IN SHARE MODE`.execute(tx);
          await tx.selectFrom('server_meta').selectAll().execute();
        }),
      ),
    ).toBe(0);
    expect(
      await moved(() =>
        db.transaction().execute(async (tx) => {
          await tx.insertInto('server_meta').values({ key: 'epoch-rolled-back', value: 'c', updated_ts: 1 }).execute();
          throw new Error('roll it back');
        }),
      ),
    ).toBe(0);
    expect(await db.selectFrom('server_meta').select('key').where('key', '=', 'epoch-rolled-back').execute()).toEqual([]);
  });

  it('counts a data-modifying CTE even when its SELECT returns nothing', async () => {
    const db = database.db;
    const n = await moved(() =>
      sql`WITH ins AS (INSERT INTO server_meta (key, value, updated_ts) VALUES ('epoch-cte', 'd', 1) RETURNING key) SELECT key FROM ins WHERE false`.execute(db),
    );
    expect(n).toBe(1);
  });
});

describe('stream positions through the write count', () => {
  it('are reused while nothing was written and read again once a write has committed', async () => {
    const positions = new StreamPositions(database.db, database.writes);
    const first = await positions.current();
    await putAccountData(database.db, '@epoch:test', '', 'm.epoch.one', { n: 1 });
    const second = await positions.current();
    expect(second.accountData).toBeGreaterThan(first.accountData);
    expect(second.events).toBe(first.events);
    expect(await positions.current()).toEqual(second);
  });

  it.runIf(kind === 'postgres')('make no query while the count stands: a write it cannot see stays unseen until one it can', async () => {
    const positions = new StreamPositions(database.db, database.writes);
    const first = await positions.current();
    // A write on a connection of its own (as another process would make) is not counted...
    const other = new pg.Client({ connectionString: pgUrl });
    await other.connect();
    try {
      await other.query(
        `INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES ('@other:test', '', 'm.epoch.other', '{}', nextval('account_data_stream_seq'))`,
      );
    } finally {
      await other.end();
    }
    expect(await positions.current()).toEqual(first);
    // ...until this process commits a write: then both are seen.
    await putAccountData(database.db, '@epoch:test', '', 'm.epoch.two', { n: 2 });
    const after = await positions.current();
    expect(after.accountData).toBeGreaterThanOrEqual(first.accountData + 2);
  });
});

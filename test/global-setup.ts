/**
 * Runs once before the whole suite (vitest globalSetup): migrates one
 * template database that every test server then copies, instead of each
 * test server (and each test file's process) migrating its own.
 *
 * - PostgreSQL: a database `axon_test_tpl_…` with every migration applied;
 *   test databases are made with `CREATE DATABASE … TEMPLATE` it.
 * - Embedded: a PGlite data directory, copied for each test server.
 *
 * Their names reach the test processes through the environment, which the
 * workers inherit (they start after this has run).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/logger.js';
import { openDatabase } from '../src/storage/database.js';
import { migrateToLatest } from '../src/storage/migrate.js';
import { createTestDatabase, EMBEDDED_TEMPLATE_ENV, PG_TEMPLATE_ENV, testDatabaseKind } from './helpers/database.js';

export default async function setup(): Promise<() => Promise<void>> {
  const silent = createLogger('silent');
  if ((await testDatabaseKind()) === 'postgres') {
    const db = await createTestDatabase(undefined, `axon_test_tpl_${randomBytes(4).toString('hex')}`);
    const database = await openDatabase({ kind: 'postgres', connectionString: db.url, cp_min: 1, cp_max: 2 }, silent);
    try {
      await migrateToLatest(database.db);
    } finally {
      await database.close();
    }
    process.env[PG_TEMPLATE_ENV] = db.name;
    return () => db.drop();
  }
  const dir = mkdtempSync(join(tmpdir(), 'axon-pglite-template-'));
  const path = join(dir, 'pglite');
  const database = await openDatabase({ kind: 'embedded', path }, silent);
  try {
    await migrateToLatest(database.db);
  } finally {
    await database.close();
  }
  process.env[EMBEDDED_TEMPLATE_ENV] = path;
  return async () => rmSync(dir, { recursive: true, force: true });
}

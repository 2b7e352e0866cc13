/**
 * Which database the integration tests run on: a real PostgreSQL at
 * 127.0.0.1:5432 (user postgres, trust auth) when it answers, or the embedded
 * one otherwise. AXON_TEST_DB=postgres|embedded forces the choice (CI runs
 * the suite once each way). Each test server gets its own fresh database.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '../../src/logger.js';
import type { DatabaseConfig } from '../../src/config/types.js';
import { type Database, openDatabase } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';

export const PG_ADMIN_URL = process.env.AXON_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function testDatabaseKind(): Promise<'postgres' | 'embedded'> {
  const forced = process.env.AXON_TEST_DB;
  if (forced === 'postgres' || forced === 'embedded') return forced;
  reachable ??= postgresReachable();
  return (await reachable) ? 'postgres' : 'embedded';
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database with C collation, as Synapse's docs ask (or with
 * other `CREATE DATABASE` options, for the tests of that check); returns its URL.
 */
export async function createTestDatabase(options = "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", name = `axon_test_${randomBytes(6).toString('hex')}`): Promise<TestDatabase> {
  await admin((c) => c.query(`CREATE DATABASE ${name} ${options} TEMPLATE template0`));
  return testDatabase(name);
}

/** The environment variables test/global-setup.ts passes its templates in. */
export const PG_TEMPLATE_ENV = 'AXON_TEST_PG_TEMPLATE';
export const EMBEDDED_TEMPLATE_ENV = 'AXON_TEST_EMBEDDED_TEMPLATE';

/**
 * A database with every migration applied and no server name claimed yet:
 * a copy of the suite's template (test/global-setup.ts), or, when the
 * suite runs without it, a new one that the server will migrate at start.
 */
export async function createMigratedTestDatabase(): Promise<TestDatabase> {
  const template = process.env[PG_TEMPLATE_ENV];
  if (!template) return createTestDatabase();
  const name = `axon_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  return testDatabase(name);
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

function testDatabase(name: string): TestDatabase {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

let template: Promise<string> | undefined;

/**
 * An embedded (PGlite) cluster with every migration applied and no server
 * name claimed yet, made once per test process: copying it is far quicker
 * than making a new cluster and migrating it for each test server (which
 * is what a real first start does, and what the start-up tests still do).
 */
function embeddedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-pglite-template-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'pglite');
    const database = await openDatabase({ kind: 'embedded', path }, createLogger('silent'));
    try {
      await migrateToLatest(database.db);
    } finally {
      await database.close();
    }
    return path;
  })();
  return template;
}

/** Puts a fresh, migrated embedded cluster at `path` (a copy of the suite's template, or of this process's). */
export async function copyEmbeddedTemplate(path: string): Promise<void> {
  cpSync(process.env[EMBEDDED_TEMPLATE_ENV] ?? (await embeddedTemplate()), path, { recursive: true });
}

/** A migrated database opened the way the server opens it, on the suite's kind (PostgreSQL or embedded), and how to drop it. */
export interface OpenedTestDatabase {
  database: Database;
  /** The connection URL on PostgreSQL; undefined on the embedded database. */
  url: string | undefined;
  close(): Promise<void>;
}

export async function openMigratedTestDatabase(): Promise<OpenedTestDatabase> {
  let cfg: DatabaseConfig;
  let url: string | undefined;
  let drop: () => Promise<void> | void;
  if ((await testDatabaseKind()) === 'postgres') {
    const db = await createMigratedTestDatabase();
    url = db.url;
    drop = db.drop;
    cfg = { kind: 'postgres', connectionString: db.url, cp_min: 1, cp_max: 3 };
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'axon-db-'));
    drop = () => rmSync(dir, { recursive: true, force: true });
    await copyEmbeddedTemplate(join(dir, 'pglite'));
    cfg = { kind: 'embedded', path: join(dir, 'pglite') };
  }
  const database = await openDatabase(cfg, createLogger('silent'));
  return {
    database,
    url,
    close: async () => {
      await database.close();
      await drop();
    },
  };
}

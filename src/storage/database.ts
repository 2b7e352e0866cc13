/**
 * Opens the database the configuration names: a real PostgreSQL through a
 * `pg` pool sized from Synapse's cp_min/cp_max, or the embedded PGlite.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kysely, type KyselyConfig, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config/types.js';
import { StartupError } from '../startup-error.js';
import { checkDatabaseSetup, readDatabaseSetup } from './database-setup.js';
import { PGlitePool } from './pglite-pool.js';
import { countWrites, WriteEpoch } from './write-epoch.js';

export type { Db, Tx } from './db.js';
import type { Schema } from './schema.js';

export interface Database {
  readonly db: Kysely<Schema>;
  readonly kind: 'postgres' | 'embedded';
  /** A description safe to log: never includes a password. */
  readonly description: string;
  /** Counts this process's committed writes (write-epoch.ts). */
  readonly writes: WriteEpoch;
  close(): Promise<void>;
}

const INT8_OID = 20;

/** pg's per-pool type parsers: int8 as a JS number, as PGlite does (stream positions stay far below 2^53). */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/**
 * kysely's `log` for `synapse.storage.SQL` (`axon.storage.sql`) at DEBUG:
 * each statement's text and time, never its parameters (they hold tokens
 * and passwords), and for a failed one only the SQLSTATE. Decided when the
 * database opens; otherwise kysely logs nothing and pays nothing.
 */
function sqlLog(log: Logger | undefined): KyselyConfig['log'] {
  if (!log?.isLevelEnabled('debug')) return undefined;
  return (event) => {
    const ms = Math.round(event.queryDurationMillis * 100) / 100;
    if (event.level === 'query') log.debug({ ms }, event.query.sql);
    else log.debug({ ms, failed: (event.error as { code?: string }).code ?? 'error' }, event.query.sql);
  };
}

/**
 * `logger` is the storage subsystem's (`axon.storage`); `sqlLogger`, when
 * given, is the one statements are logged to (`axon.storage.sql`).
 */
export async function openDatabase(cfg: DatabaseConfig, logger: Logger, sqlLogger?: Logger): Promise<Database> {
  const log = sqlLog(sqlLogger);
  if (cfg.kind === 'embedded') return openEmbedded(cfg.path, log);
  const pool = new pg.Pool({
    connectionString: cfg.connectionString,
    user: cfg.user,
    password: cfg.password,
    database: cfg.database,
    host: cfg.host,
    port: cfg.port,
    min: cfg.cp_min,
    max: cfg.cp_max,
    types: pgTypes,
    application_name: 'axon',
  });
  pool.on('error', (err) => logger.error({ err: err.message }, 'idle database connection failed'));
  // Fail at start, with a clear message, rather than on the first request.
  const client = await pool.connect().catch(async (err: Error) => {
    await pool.end().catch(() => undefined);
    throw new StartupError(`cannot connect to PostgreSQL (${describePostgres(cfg)}): ${err.message}`);
  });
  client.release();
  const writes = new WriteEpoch();
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: countWrites(pool, writes) }), ...(log ? { log } : {}) });
  try {
    // Synapse's checks (database-setup.ts), before anything is migrated.
    const verdict = checkDatabaseSetup(await readDatabaseSetup(db), cfg.allow_unsafe_locale === true);
    for (const warning of verdict.warnings) logger.warn(warning);
    if (verdict.problems.length > 0) throw new StartupError(verdict.problems);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return {
    db,
    kind: 'postgres',
    description: describePostgres(cfg),
    writes,
    close: () => db.destroy(),
  };
}

/** Measured (bench/startup.ts): idle RSS ~300 MiB with PostgreSQL's defaults, ~190 MiB with these. */
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'work_mem=2MB', 'maintenance_work_mem=16MB'];
/**
 * PGlite's initdb makes UTF8 clusters with LC_COLLATE C but LC_CTYPE
 * C.UTF-8, which Synapse's check refuses; new clusters get C for both, so
 * the embedded database is what Synapse asks of PostgreSQL (and behaves as
 * the PostgreSQL of the tests and the README does).
 *
 * The embedded database is not run through database-setup.ts's checks: its
 * encoding and locale are ours to choose, here, and its PostgreSQL is the
 * one PGlite bundles (18 in 0.5). A cluster made before this setting has
 * LC_CTYPE C.UTF-8, and refusing it would strand data Axon made itself; the
 * hazards behind Synapse's check hardly apply to it anyway: its collation is
 * C (indexes sort by bytes), its C library is compiled into PGlite rather
 * than the operating system's, and no replica ever opens its directory.
 */
const EMBEDDED_INITDB = ['--locale=C'];

async function openEmbedded(path: string, log: KyselyConfig['log']): Promise<Database> {
  mkdirSync(path, { recursive: true });
  // Creating the cluster grows PGlite's WASM heap to ~650 MiB and that heap
  // never shrinks, so a new cluster is made by a short-lived child process;
  // this process then opens it at ~230 MiB.
  if (!existsSync(join(path, 'PG_VERSION'))) await createEmbeddedCluster(path);
  // Loaded lazily: the WASM build costs memory a production server on PostgreSQL never needs.
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create({ dataDir: path, postgresqlconf: EMBEDDED_SETTINGS });
  const writes = new WriteEpoch();
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: countWrites(new PGlitePool(pglite), writes) }), ...(log ? { log } : {}) });
  return { db, kind: 'embedded', description: `embedded PostgreSQL (PGlite) in ${path}`, writes, close: () => db.destroy() };
}

function createEmbeddedCluster(path: string): Promise<void> {
  // The package's ESM entry (createRequire resolves its CommonJS twin beside it).
  const pgliteUrl = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('@electric-sql/pglite')
      .replace(/\.cjs$/, '.js'),
  ).href;
  const code =
    `const { PGlite } = await import(${JSON.stringify(pgliteUrl)});` +
    `const pg = await PGlite.create({ dataDir: process.argv[1], postgresqlconf: ${JSON.stringify(EMBEDDED_SETTINGS)}, initDbStartParams: ${JSON.stringify(EMBEDDED_INITDB)} });` +
    `await pg.query('select 1'); await pg.close();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, path], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`creating the embedded database in ${path} failed: ${err.trim().slice(-500)}`))));
  });
}

function describePostgres(cfg: Extract<DatabaseConfig, { kind: 'postgres' }>): string {
  if (cfg.connectionString) {
    try {
      const u = new URL(cfg.connectionString);
      u.password = '';
      return u.toString();
    } catch {
      return 'DATABASE_URL';
    }
  }
  return `postgresql://${cfg.user ?? ''}@${cfg.host ?? 'localhost'}:${cfg.port ?? 5432}/${cfg.database ?? ''}`;
}

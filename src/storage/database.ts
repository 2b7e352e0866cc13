/**
 * Opens the database the configuration names: a real PostgreSQL through a
 * `pg` pool sized from Synapse's cp_min/cp_max, or the embedded PGlite.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config/types.js';
import { PGlitePool } from './pglite-pool.js';
import type { Schema } from './schema.js';

export interface Database {
  readonly db: Kysely<Schema>;
  readonly kind: 'postgres' | 'embedded';
  /** A description safe to log: never includes a password. */
  readonly description: string;
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

export async function openDatabase(cfg: DatabaseConfig, logger: Logger): Promise<Database> {
  if (cfg.kind === 'embedded') return openEmbedded(cfg.path);
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
    throw new Error(`cannot connect to PostgreSQL (${describePostgres(cfg)}): ${err.message}`);
  });
  client.release();
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'postgres',
    description: describePostgres(cfg),
    close: () => db.destroy(),
  };
}

/** Measured (bench/startup.ts): idle RSS ~300 MiB with PostgreSQL's defaults, ~190 MiB with these. */
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'work_mem=2MB', 'maintenance_work_mem=16MB'];

async function openEmbedded(path: string): Promise<Database> {
  mkdirSync(path, { recursive: true });
  // Loaded lazily: the WASM build costs memory a production server on PostgreSQL never needs.
  const { PGlite } = await import('@electric-sql/pglite');
  // PostgreSQL's defaults (128MB shared_buffers) cost the embedded build
  // ~120 MiB more RSS; a try-out server on a small VPS needs far less.
  const fresh = !existsSync(join(path, 'PG_VERSION'));
  let pglite = await PGlite.create({ dataDir: path, postgresqlconf: EMBEDDED_SETTINGS });
  if (fresh) {
    // Creating the cluster grows the WASM heap to ~650 MiB and it never
    // shrinks; a fresh instance on the new cluster starts at ~190 MiB.
    await pglite.close();
    pglite = await PGlite.create({ dataDir: path, postgresqlconf: EMBEDDED_SETTINGS });
  }
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: new PGlitePool(pglite) }) });
  return { db, kind: 'embedded', description: `embedded PostgreSQL (PGlite) in ${path}`, close: () => db.destroy() };
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

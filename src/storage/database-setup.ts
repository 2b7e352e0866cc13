/**
 * Whether a PostgreSQL database is set up as Synapse requires, checked at
 * start on the first connection, before any migration, in Synapse's order:
 *
 * 1. PostgreSQL 14 or later (Synapse's current minimum).
 * 2. Encoding UTF8; no setting overrides this.
 * 3. LC_COLLATE and LC_CTYPE exactly `C` (not `C.UTF-8`, not `en_US.UTF-8`):
 *    under any other locale, text compares by the C library's locale rules,
 *    which change between library versions and between machines, and an
 *    index sorted under the old rules (over user, room and event IDs) is
 *    then silently out of order. `database.allow_unsafe_locale: true` turns
 *    this one into a warning, as in Synapse.
 *
 * Every problem is one line, with how to create the database right.
 */
import { type Kysely, sql } from 'kysely';
import type { Schema } from './schema.js';

export const MIN_POSTGRES_VERSION_NUM = 140000;

export interface DatabaseSetup {
  /** server_version_num, e.g. 150020 for 15.20. */
  versionNum: number;
  encoding: string;
  collate: string;
  ctype: string;
  database: string;
  user: string;
  /** Whether the database holds any table yet (decides the advice: recreate it, or move the data). */
  hasTables: boolean;
}

export async function readDatabaseSetup(db: Kysely<Schema>): Promise<DatabaseSetup> {
  const res = await sql<{
    version_num: number;
    encoding: string;
    datcollate: string;
    datctype: string;
    database: string;
    user: string;
    has_tables: boolean;
  }>`SELECT current_setting('server_version_num')::int AS version_num,
            current_setting('server_encoding') AS encoding,
            d.datcollate, d.datctype, current_database() AS database, current_user AS "user",
            EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS has_tables
       FROM pg_catalog.pg_database d
      WHERE d.datname = current_database()`.execute(db);
  const row = res.rows[0];
  if (!row) throw new Error('pg_database has no row for the current database');
  return {
    versionNum: row.version_num,
    encoding: row.encoding,
    collate: row.datcollate,
    ctype: row.datctype,
    database: row.database,
    user: row.user,
    hasTables: row.has_tables,
  };
}

/** PostgreSQL's own spelling of server_version_num: 150020 → "15.20", 90624 → "9.6.24". */
export function formatServerVersion(num: number): string {
  const major = Math.floor(num / 10000);
  if (major >= 10) return `${major}.${num % 10000}`;
  return `${major}.${Math.floor((num % 10000) / 100)}.${num % 100}`;
}

export function versionProblem(num: number): string | undefined {
  if (num >= MIN_POSTGRES_VERSION_NUM) return undefined;
  return (
    `PostgreSQL ${formatServerVersion(num)} is too old: Axon, like Synapse, needs PostgreSQL ${Math.floor(MIN_POSTGRES_VERSION_NUM / 10000)} or later; ` +
    'upgrade the database server (on Debian: pg_upgradecluster)'
  );
}

export interface SetupVerdict {
  /** Refuse to start: one line each. */
  problems: string[];
  /** Start, but log these. */
  warnings: string[];
}

export function checkDatabaseSetup(setup: DatabaseSetup, allowUnsafeLocale: boolean): SetupVerdict {
  const problems: string[] = [];
  const warnings: string[] = [];
  const version = versionProblem(setup.versionNum);
  if (version) problems.push(version);
  const db = `database "${setup.database}"`;
  if (setup.encoding !== 'UTF8') {
    problems.push(`${db} has encoding ${setup.encoding}, but Axon, like Synapse, needs UTF8 to store text; ${howToRecreate(setup)}`);
  }
  const wrong = [setup.collate !== 'C' ? `LC_COLLATE '${setup.collate}'` : undefined, setup.ctype !== 'C' ? `LC_CTYPE '${setup.ctype}'` : undefined].filter(
    (w): w is string => w !== undefined,
  );
  if (wrong.length > 0) {
    const has = `${db} has ${wrong.join(' and ')}, but Axon, like Synapse, needs 'C' for ${wrong.length > 1 ? 'both' : 'it'}`;
    const why = 'under another locale, text sorts by rules that change with the C library and between machines, leaving indexes over IDs out of order';
    if (allowUnsafeLocale) {
      warnings.push(`${has} (${why}); starting anyway because allow_unsafe_locale is true`);
    } else {
      problems.push(`${has}: ${why}; ${howToRecreate(setup)}, or set allow_unsafe_locale: true in the database section to start anyway`);
    }
  }
  return { problems, warnings };
}

/** The README's createdb command and its SQL form, for this database's name and owner. */
function howToRecreate(setup: DatabaseSetup): string {
  const create =
    `createdb --encoding=UTF8 --locale=C --template=template0 --owner=${shellWord(setup.user)} ${shellWord(setup.database)}` +
    ` (in SQL: CREATE DATABASE ${sqlName(setup.database)} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER ${sqlName(setup.user)})`;
  return setup.hasTables ? `dump it with pg_dump, drop it, create it again with ${create} and restore the dump with pg_restore` : `drop it and create it again with ${create}`;
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_.@%+=:,/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function sqlName(s: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`;
}

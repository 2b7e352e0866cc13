/**
 * Synapse's checks of a PostgreSQL database at start (docs/postgres.md,
 * synapse/storage/engines/postgres.py): encoding UTF8, LC_COLLATE and
 * LC_CTYPE exactly C unless `allow_unsafe_locale: true` (then a warning),
 * made before any migration, through the real start-up. PostgreSQL only:
 * the embedded database is not checked (src/storage/database.ts says why),
 * but a new one is made the way the check asks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startServer } from '../../src/server.js';
import { StartupError } from '../../src/startup-error.js';
import { openDatabase } from '../../src/storage/database.js';
import { checkDatabaseSetup, readDatabaseSetup } from '../../src/storage/database-setup.js';
import { createTestDatabase, testDatabaseKind } from '../helpers/database.js';
import { runMain } from '../helpers/process.js';
import { baseTestYaml } from '../helpers/server.js';

const onPostgres = (await testDatabaseKind()) === 'postgres';
if (!onPostgres) process.stderr.write('skipping the PostgreSQL set-up checks: the embedded database is not checked\n');

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function database(options: string): Promise<{ name: string; url: string }> {
  const db = await createTestDatabase(options);
  cleanups.push(db.drop);
  return db;
}

/** A test homeserver.yaml on database `name`, with `section` merged into its database section. */
async function configFile(name: string, section: Record<string, unknown> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'axon-dbsetup-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const base = await baseTestYaml(dir, 'setup.test');
  await base.dropDb?.(); // the helper's own C database is not the one under test
  const yaml = {
    ...base.yaml,
    database: { name: 'psycopg2', ...section, args: { user: 'postgres', database: name, host: '127.0.0.1', port: 5432, cp_min: 1, cp_max: 2 } },
  };
  const path = join(dir, 'homeserver.yaml');
  writeFileSync(path, stringify(yaml));
  return path;
}

/** Starts the real server on database `name`; returns the refusal, or the log lines of a start that worked. */
async function start(name: string, section: Record<string, unknown> = {}): Promise<{ refused?: StartupError; logs: string[] }> {
  const logs: string[] = [];
  const config = loadConfig([await configFile(name, section)], { env: {} });
  try {
    const server = await startServer(config, createLogger('debug', { write: (s: string) => void logs.push(s) }), { portOverride: 0 });
    await server.close();
    return { logs };
  } catch (err) {
    if (err instanceof StartupError) return { refused: err, logs };
    throw err;
  }
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

const migrated = async (url: string) => (await query<{ t: string | null }>(url, "SELECT to_regclass('axon_migrations')::text AS t"))[0]?.t !== null;

/** The README's command and its SQL form, for database `name` owned by the connecting user. */
const createdb = (name: string) => `createdb --encoding=UTF8 --locale=C --template=template0 --owner=postgres ${name}`;
const createSql = (name: string) => `CREATE DATABASE ${name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER postgres`;

/** Whether this cluster can make an en_US.UTF-8 database (the locale must exist when PostgreSQL starts). */
async function hasEnUs(): Promise<boolean> {
  try {
    await database("ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'");
    return true;
  } catch {
    return false;
  }
}
const enUs = onPostgres && (await hasEnUs());
if (onPostgres && !enUs) process.stderr.write('skipping the en_US.UTF-8 case: this PostgreSQL has no such locale (.ci/run generates it)\n');

describe.skipIf(!onPostgres)('PostgreSQL set-up checks at start', () => {
  it("refuses LC_COLLATE and LC_CTYPE 'C.UTF-8', in one line that tells how to create the database, before migrating anything", async () => {
    const db = await database("ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'");
    const { refused } = await start(db.name);
    expect(refused?.problems).toHaveLength(1);
    const line = refused?.problems[0] ?? '';
    expect(line).toContain(`database "${db.name}" has LC_COLLATE 'C.UTF-8' and LC_CTYPE 'C.UTF-8'`);
    expect(line).toContain(createdb(db.name));
    expect(line).toContain(createSql(db.name));
    expect(line).toContain('allow_unsafe_locale: true');
    expect(line).not.toContain('\n');
    expect(await migrated(db.url)).toBe(false);
  });

  it.skipIf(!enUs)("refuses 'en_US.UTF-8'", async () => {
    const db = await database("ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'");
    const { refused } = await start(db.name);
    expect(refused?.problems).toHaveLength(1);
    expect(refused?.problems[0]).toContain("has LC_COLLATE 'en_US.UTF-8' and LC_CTYPE 'en_US.UTF-8'");
    expect(await migrated(db.url)).toBe(false);
  });

  it('checks LC_COLLATE and LC_CTYPE each, naming only the wrong one', async () => {
    const collate = await database("ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C'");
    const ctype = await database("ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'");
    const a = (await start(collate.name)).refused?.problems ?? [];
    const b = (await start(ctype.name)).refused?.problems ?? [];
    expect(a).toHaveLength(1);
    expect(a[0]).toMatch(/has LC_COLLATE 'C\.UTF-8', but /);
    expect(b).toHaveLength(1);
    expect(b[0]).toMatch(/has LC_CTYPE 'C\.UTF-8', but /);
  });

  it('refuses encoding SQL_ASCII, even with allow_unsafe_locale: true (as Synapse does)', async () => {
    const db = await database("ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'");
    for (const section of [{}, { allow_unsafe_locale: true }]) {
      const { refused } = await start(db.name, section);
      expect(refused?.problems).toHaveLength(1);
      expect(refused?.problems[0]).toContain(`database "${db.name}" has encoding SQL_ASCII, but Axon, like Synapse, needs UTF8`);
      expect(refused?.problems[0]).toContain(createdb(db.name));
      expect(refused?.problems[0]).toContain(createSql(db.name));
      expect(refused?.problems[0]).not.toContain('allow_unsafe_locale');
    }
    expect(await migrated(db.url)).toBe(false);
  });

  it('with allow_unsafe_locale: true starts on C.UTF-8 and logs a warning; without it, then asks to dump and restore', async () => {
    const db = await database("ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'");
    const { refused, logs } = await start(db.name, { allow_unsafe_locale: true });
    expect(refused).toBeUndefined();
    const warnings = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toContainEqual(expect.stringMatching(/LC_COLLATE 'C\.UTF-8' and LC_CTYPE 'C\.UTF-8'.*allow_unsafe_locale is true/));
    expect(await migrated(db.url)).toBe(true);

    // Now it holds data: the advice is to move it, not to drop the database.
    const again = await start(db.name);
    expect(again.refused?.problems[0]).toMatch(/dump it with pg_dump, drop it, create it again with .* and restore the dump with pg_restore/);
  });

  it('starts on a C database (and this PostgreSQL is new enough) without a word about the locale', async () => {
    const db = await database("ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
    const [row] = await query<{ v: number }>(db.url, "SELECT current_setting('server_version_num')::int AS v");
    expect(row?.v).toBeGreaterThanOrEqual(140000);
    const { refused, logs } = await start(db.name);
    expect(refused).toBeUndefined();
    expect(logs.join('\n')).toMatch(/Axon is running/);
    // Not a word to the admin: info and above (the SQL the check runs is logged at debug).
    const said = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 30);
    expect(said.length).toBeGreaterThan(0);
    expect(said.map((l) => l.msg).join('\n')).not.toMatch(/LC_COLLATE|LC_CTYPE|encoding/);
  });

  it('the real program prints the refusal as one line, without a stack trace, and exits 1', async () => {
    const db = await database("ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'");
    const cfg = await configFile(db.name);
    const child = runMain(['-c', cfg], { cwd: tmpdir() });
    cleanups.push(() => void child.proc.kill('SIGKILL')); // should it start after all
    expect(await child.exited).toBe(1);
    const lines = child
      .output()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^axon: database "${db.name}" has LC_COLLATE 'C\\.UTF-8' and LC_CTYPE 'C\\.UTF-8'`));
    expect(child.output()).not.toMatch(/^\s+at /m);
  });
});

describe('the embedded database', () => {
  it('is made UTF8 with LC_COLLATE and LC_CTYPE C, so it would pass the check (PGlite alone gives LC_CTYPE C.UTF-8)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'axon-dbsetup-pglite-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const database = await openDatabase({ kind: 'embedded', path: join(dir, 'pglite') }, createLogger('silent'));
    try {
      const setup = await readDatabaseSetup(database.db);
      expect(setup).toMatchObject({ encoding: 'UTF8', collate: 'C', ctype: 'C', hasTables: false });
      expect(checkDatabaseSetup(setup, false)).toEqual({ problems: [], warnings: [] });
    } finally {
      await database.close();
    }
  });
});

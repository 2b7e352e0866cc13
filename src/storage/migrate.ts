/**
 * Applies the numbered migrations in migrations/ at start. kysely's migrator
 * runs them in one transaction under a lock and records each one, so running
 * twice (or two processes at once) applies each migration exactly once.
 */
import { type Kysely, Migrator } from 'kysely';
import { MIGRATIONS } from '../../migrations/index.js';
import type { Schema } from './schema.js';

export interface MigrationReport {
  applied: string[];
  total: number;
}

export async function migrateToLatest(db: Kysely<Schema>): Promise<MigrationReport> {
  const migrator = new Migrator({
    db: db as unknown as Kysely<unknown>,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'axon_migrations',
    migrationLockTableName: 'axon_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const msg = error instanceof Error ? error.message : String(error);
    throw new Error(`database migration ${failed ?? ''} failed: ${msg}`);
  }
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
    total: Object.keys(MIGRATIONS).length,
  };
}

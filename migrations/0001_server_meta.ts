/**
 * 0001: facts about this server that must never change under a live
 * database, starting with its server_name (as Synapse refuses to start when
 * server_name differs from the one the database was created with).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('server_meta')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_ts', 'bigint', (c) => c.notNull().defaultTo(sql`(extract(epoch from now()) * 1000)::bigint`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('server_meta').execute();
}

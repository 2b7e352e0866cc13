/**
 * 0003: registration.
 *
 * - `registration_token_pending`: one row per user-interactive auth session
 *   that has passed the `m.login.registration_token` stage and not yet
 *   registered. Each row is one unit of its token's `pending` counter, so a
 *   session counts once however often it repeats the stage, and the unit is
 *   given back when the session expires or is deleted without registering
 *   (no foreign key on purpose: the row has to outlive its session for that).
 * - `user_id_seq`: numeric localparts for guests and for registrations that
 *   name no username, as Synapse generates them.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('registration_token_pending')
    .addColumn('session_id', 'text', (c) => c.primaryKey())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('created_ts', 'bigint', (c) => c.notNull())
    .execute();
  await sql`CREATE SEQUENCE user_id_seq`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('registration_token_pending').execute();
  await sql`DROP SEQUENCE user_id_seq`.execute(db);
}

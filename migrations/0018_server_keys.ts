/**
 * 0018: `server_keys`, the verify keys of other servers as the keyring
 * fetched them (directly or through a notary). One row per (server, key id):
 * the public key (unpadded base64), the `valid_until_ts` of the document it
 * came in, `expired_ts` for a key from `old_verify_keys` (NULL for a current
 * one), when and from whom it was fetched, and the signed key document as
 * received, so this server can serve it again as a notary.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('server_keys')
    .addColumn('server_name', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('valid_until_ts', 'bigint', (c) => c.notNull())
    .addColumn('expired_ts', 'bigint')
    .addColumn('fetched_at', 'bigint', (c) => c.notNull())
    .addColumn('from_server', 'text', (c) => c.notNull())
    .addColumn('key_json', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('server_keys_pkey', ['server_name', 'key_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('server_keys').execute();
}

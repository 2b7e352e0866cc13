/**
 * 0023: `openid_tokens`, the tokens POST /user/{userId}/openid/request_token
 * hands out (widgets, Element Call and integration managers prove who the
 * user is with them through /_matrix/federation/v1/openid/userinfo). Only
 * the SHA-256 of a token is stored, with its user and expiry.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('openid_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('valid_until_ms', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('openid_tokens_valid_until').on('openid_tokens').column('valid_until_ms').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('openid_tokens').execute();
}

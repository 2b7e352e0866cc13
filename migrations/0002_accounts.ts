/**
 * 0002: accounts. Users, profiles, devices, access and refresh tokens
 * (stored as SHA-256 hashes, never in clear), client IPs for whois,
 * registration tokens, user-interactive auth sessions, account data.
 */
import { type Kysely, sql } from 'kysely';

const nowMs = sql`(extract(epoch from now()) * 1000)::bigint`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('localpart', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text')
    .addColumn('admin', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('is_guest', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('deactivated', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('erased', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('shadow_banned', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('locked', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('user_type', 'text')
    .addColumn('appservice_id', 'text')
    .addColumn('creation_ts', 'bigint', (c) => c.notNull().defaultTo(nowMs))
    .execute();

  await db.schema
    .createTable('profiles')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.user_id').onDelete('cascade'))
    .addColumn('displayname', 'text')
    .addColumn('avatar_url', 'text')
    .execute();

  await db.schema
    .createTable('devices')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.user_id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text')
    .addColumn('last_seen_ts', 'bigint')
    .addColumn('last_seen_ip', 'text')
    .addColumn('last_seen_user_agent', 'text')
    .addColumn('hidden', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_ts', 'bigint', (c) => c.notNull().defaultTo(nowMs))
    .addPrimaryKeyConstraint('devices_pk', ['user_id', 'device_id'])
    .execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.user_id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('next_token_id', 'bigint')
    .addColumn('expiry_ts', 'bigint')
    .addColumn('ultimate_session_expiry_ts', 'bigint')
    .addColumn('created_ts', 'bigint', (c) => c.notNull().defaultTo(nowMs))
    .execute();

  await db.schema
    .createTable('access_tokens')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.user_id').onDelete('cascade'))
    .addColumn('device_id', 'text')
    .addColumn('valid_until_ms', 'bigint')
    .addColumn('refresh_token_id', 'bigint', (c) => c.references('refresh_tokens.id').onDelete('cascade'))
    .addColumn('puppets_user_id', 'text')
    .addColumn('used', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_ts', 'bigint', (c) => c.notNull().defaultTo(nowMs))
    .execute();
  await db.schema.createIndex('access_tokens_user_device').on('access_tokens').columns(['user_id', 'device_id']).execute();
  await db.schema.createIndex('refresh_tokens_user_device').on('refresh_tokens').columns(['user_id', 'device_id']).execute();

  await db.schema
    .createTable('user_ips')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('ip', 'text', (c) => c.notNull())
    .addColumn('user_agent', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('last_seen', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_ips_pk', ['user_id', 'device_id', 'ip', 'user_agent'])
    .execute();

  await db.schema
    .createTable('registration_tokens')
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('uses_allowed', 'integer')
    .addColumn('pending', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('completed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expiry_time', 'bigint')
    .execute();

  await db.schema
    .createTable('ui_auth_sessions')
    .addColumn('session_id', 'text', (c) => c.primaryKey())
    .addColumn('creation_time', 'bigint', (c) => c.notNull())
    .addColumn('uri', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('clientdict', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('serverdict', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema
    .createTable('ui_auth_session_credentials')
    .addColumn('session_id', 'text', (c) => c.notNull().references('ui_auth_sessions.session_id').onDelete('cascade'))
    .addColumn('stage_type', 'text', (c) => c.notNull())
    .addColumn('result', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('ui_auth_session_credentials_pk', ['session_id', 'stage_type'])
    .execute();

  // One stream for account data, so /sync can ask "what changed since N".
  await sql`CREATE SEQUENCE account_data_stream_seq`.execute(db);
  await db.schema
    .createTable('account_data')
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('content', 'jsonb', (c) => c.notNull())
    .addColumn('stream_id', 'bigint', (c) => c.notNull().defaultTo(sql`nextval('account_data_stream_seq')`))
    .addPrimaryKeyConstraint('account_data_pk', ['user_id', 'room_id', 'type'])
    .execute();
  await db.schema.createIndex('account_data_stream').on('account_data').columns(['user_id', 'stream_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'account_data',
    'ui_auth_session_credentials',
    'ui_auth_sessions',
    'registration_tokens',
    'user_ips',
    'access_tokens',
    'refresh_tokens',
    'devices',
    'profiles',
    'users',
  ]) {
    await db.schema.dropTable(t).execute();
  }
  await sql`DROP SEQUENCE account_data_stream_seq`.execute(db);
}

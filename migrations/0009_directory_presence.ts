/**
 * 0009: the user directory's search index, presence, and an index the
 * /messages queries were found to need (bench/explain.ts).
 *
 * User directory. Synapse keeps copies of profiles in `user_directory` and
 * `user_directory_search` and has to keep them in step with every profile
 * change. We index `profiles` itself instead: a stored generated column
 * `search_vector` = `axon_user_search_vector(user_id, displayname)`, the
 * same weighted text-search vector Synapse builds (localpart weight A,
 * display name B, domain D, the 'simple' configuration), under a GIN
 * index. PostgreSQL recomputes it on every write of the row, so nothing
 * can drift out of step.
 *
 * The text is lower-cased and NFKC-normalised, as Synapse does in Python.
 * The databases Synapse's docs ask for use C collation, and there
 * `lower()` changes ASCII letters only. So the function lower-cases through
 * a Unicode-aware collation: `pg_c_utf8` (PostgreSQL 17+, built in) or
 * `und-x-icu` (ICU builds), whichever this server has. Without either,
 * non-ASCII capitals keep their case, and the search term is lower-cased
 * anyway. NFKC needs a UTF-8 database (as Synapse requires); it is skipped
 * otherwise. The choice is made once, here, and the function is IMMUTABLE,
 * so an index can use it.
 *
 * Presence. One row per user with the last state that was worth telling
 * others about, at a position of the presence stream (`stream_id`, from
 * `presence_stream_seq`); /sync reads changes by user and position.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  const colls = await sql<{ collname: string }>`SELECT collname FROM pg_collation WHERE collname IN ('pg_c_utf8', 'und-x-icu')`.execute(db);
  const names = new Set(colls.rows.map((r) => r.collname));
  const collation = names.has('pg_c_utf8') ? 'pg_c_utf8' : names.has('und-x-icu') ? '"und-x-icu"' : undefined;
  const enc = await sql<{ enc: string }>`SELECT pg_encoding_to_char(encoding) AS enc FROM pg_database WHERE datname = current_database()`.execute(db);
  const utf8 = enc.rows[0]?.enc === 'UTF8';
  const fold = (x: string) => {
    const lowered = collation ? `lower(${x} COLLATE ${collation})` : `lower(${x})`;
    return utf8 ? `normalize(${lowered}, NFKC)` : lowered;
  };
  // user_id is "@localpart:domain"; the domain may itself hold ':' (a port).
  const localpart = `substr(split_part(user_id, ':', 1), 2)`;
  const domain = `substr(user_id, strpos(user_id, ':') + 1)`;
  await sql
    .raw(
      `CREATE FUNCTION axon_user_search_vector(user_id text, displayname text) RETURNS tsvector
       LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
         SELECT setweight(to_tsvector('simple'::regconfig, ${fold(localpart)}), 'A')
             || setweight(to_tsvector('simple'::regconfig, ${fold(domain)}), 'D')
             || setweight(to_tsvector('simple'::regconfig, ${fold(`coalesce(displayname, '')`)}), 'B')
       $$`,
    )
    .execute(db);
  // Stored, so neither the index's recheck nor the ranking computes it again
  // (bench/explain.ts: a one-letter search over 5,000 users took 93 ms with
  // an expression index, 29 ms with the stored column).
  await sql`ALTER TABLE profiles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (axon_user_search_vector(user_id, displayname)) STORED`.execute(db);
  await sql`CREATE INDEX profiles_user_search ON profiles USING gin (search_vector)`.execute(db);

  // "Which rooms are public / world-readable": the directory's visibility
  // rule reads the join rules and history visibility of every room.
  await sql`CREATE INDEX current_state_room_rules ON current_state (type, room_id) WHERE state_key = ''`.execute(db);

  // /messages (and /context) with a `senders` filter walked a room's whole
  // timeline, or the whole events table, for a user's few events: 50 ms on
  // 200,000 events, 0.2 ms with this index (bench/explain.ts). Senders repeat,
  // so btree deduplication keeps it small (~2.4 MB per 200,000 events).
  await sql`CREATE INDEX events_sender ON events (sender)`.execute(db);

  await sql`CREATE SEQUENCE presence_stream_seq`.execute(db);
  await db.schema
    .createTable('presence')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('status_msg', 'text')
    .addColumn('last_active_ts', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_user_sync_ts', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('currently_active', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('stream_id', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('presence_stream').on('presence').column('stream_id').execute();
  // Who is not offline: loaded at start, so their timers run again.
  await sql`CREATE INDEX presence_not_offline ON presence (user_id) WHERE state <> 'offline'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('presence').execute();
  await sql`DROP SEQUENCE presence_stream_seq`.execute(db);
  await sql`DROP INDEX events_sender`.execute(db);
  await sql`DROP INDEX current_state_room_rules`.execute(db);
  await sql`DROP INDEX profiles_user_search`.execute(db);
  await sql`ALTER TABLE profiles DROP COLUMN search_vector`.execute(db);
  await sql`DROP FUNCTION axon_user_search_vector(text, text)`.execute(db);
}

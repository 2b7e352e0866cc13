/** Other servers' verify keys (`server_keys`, migration 0018), as the keyring fetched them. */
import { sql } from 'kysely';
import type { Db } from './db.js';
import type { ServerKeysTable } from './schema.js';

/** A stored key: the table's row. */
export type ServerKeyRow = ServerKeysTable;

const COLUMNS = ['server_name', 'key_id', 'key', 'valid_until_ts', 'expired_ts', 'fetched_at', 'from_server', 'key_json'] as const;

/** Every stored key of one server. */
export async function serverKeysOf(db: Db, serverName: string): Promise<ServerKeyRow[]> {
  return db.selectFrom('server_keys').select(COLUMNS).where('server_name', '=', serverName).execute();
}

/**
 * Stores the keys of one document. A row is replaced only by a document at
 * least as fresh (`valid_until_ts` not lower), so a stale answer from a
 * notary never overwrites a newer document.
 */
export async function storeServerKeys(db: Db, rows: readonly ServerKeyRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('server_keys')
    .values(rows.map((r) => ({ ...r, key_json: sql<Record<string, unknown>>`${JSON.stringify(r.key_json)}::jsonb` })))
    .onConflict((oc) =>
      oc
        .columns(['server_name', 'key_id'])
        .doUpdateSet({
          key: (eb) => eb.ref('excluded.key'),
          valid_until_ts: (eb) => eb.ref('excluded.valid_until_ts'),
          expired_ts: (eb) => eb.ref('excluded.expired_ts'),
          fetched_at: (eb) => eb.ref('excluded.fetched_at'),
          from_server: (eb) => eb.ref('excluded.from_server'),
          key_json: (eb) => eb.ref('excluded.key_json'),
        })
        .where('excluded.valid_until_ts', '>=', (eb) => eb.ref('server_keys.valid_until_ts')),
    )
    .execute();
}

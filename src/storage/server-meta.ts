/** Queries on server_meta: facts recorded when the database was created. */
import type { Kysely } from 'kysely';
import type { Schema } from './schema.js';

/**
 * Records server_name on first start; on later starts returns the recorded
 * one so the caller can refuse to run a database under another name.
 */
export async function claimServerName(db: Kysely<Schema>, serverName: string): Promise<string> {
  await db
    .insertInto('server_meta')
    .values({ key: 'server_name', value: serverName, updated_ts: Date.now() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('server_meta').select('value').where('key', '=', 'server_name').executeTakeFirstOrThrow();
  return row.value;
}

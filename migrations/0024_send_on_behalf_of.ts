/**
 * 0024: `events.send_on_behalf_of`, the server whose user's membership
 * event reached the room through us (send_join, send_leave, send_knock):
 * as the resident, we pass such an event on to the room's other servers,
 * as Synapse does, so the federation sender fans it out as if it were ours.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('send_on_behalf_of', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').dropColumn('send_on_behalf_of').execute();
}

/** Queries on local room aliases (`room_aliases`). */
import type { Db } from './db.js';

export interface AliasRow {
  room_alias: string;
  room_id: string;
  creator: string | null;
}

export async function getAlias(db: Db, alias: string): Promise<AliasRow | undefined> {
  return db.selectFrom('room_aliases').select(['room_alias', 'room_id', 'creator']).where('room_alias', '=', alias).executeTakeFirst();
}

/** Adds an alias; false (and nothing written) when it is taken, even by a racing request. */
export async function insertAlias(db: Db, a: { alias: string; roomId: string; creator: string | null; now: number }): Promise<boolean> {
  const r = await db
    .insertInto('room_aliases')
    .values({ room_alias: a.alias, room_id: a.roomId, creator: a.creator, created_ts: a.now })
    .onConflict((oc) => oc.column('room_alias').doNothing())
    .returning('room_alias')
    .executeTakeFirst();
  return r !== undefined;
}

/** Removes an alias; returns the room it pointed at, or undefined when there was none. */
export async function deleteAlias(db: Db, alias: string): Promise<string | undefined> {
  const r = await db.deleteFrom('room_aliases').where('room_alias', '=', alias).returning('room_id').executeTakeFirst();
  return r?.room_id;
}

/** The local aliases pointing at a room, in name order. */
export async function aliasesForRoom(db: Db, roomId: string): Promise<string[]> {
  const rows = await db.selectFrom('room_aliases').select('room_alias').where('room_id', '=', roomId).orderBy('room_alias').execute();
  return rows.map((r) => r.room_alias);
}

/** Points every alias of `fromRoom` at `toRoom` (room upgrades). */
export async function moveAliases(db: Db, fromRoom: string, toRoom: string): Promise<void> {
  await db.updateTable('room_aliases').set({ room_id: toRoom }).where('room_id', '=', fromRoom).execute();
}

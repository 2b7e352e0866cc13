/**
 * Membership bookkeeping beside the room state: rooms a user has forgotten,
 * and users whose deactivation still has to part them from their rooms.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

/** Marks the room forgotten for the user at their current membership event. */
export async function markForgotten(db: Db, userId: string, roomId: string, membershipEventId: string): Promise<void> {
  await db
    .insertInto('room_forgotten')
    .values({ user_id: userId, room_id: roomId, event_id: membershipEventId })
    .onConflict((oc) => oc.columns(['user_id', 'room_id']).doUpdateSet({ event_id: membershipEventId }))
    .execute();
}

/**
 * The rooms the user has forgotten and not rejoined or been re-invited to
 * since: their current membership is still the one they forgot at.
 */
export async function forgottenRoomIds(db: Db, userId: string): Promise<Set<string>> {
  const rows = await forgottenQuery(db, userId).execute();
  return new Set(rows.map((r) => r.room_id));
}

/** The user's forgotten rooms whose forgotten membership is still their current one. */
function forgottenQuery(db: Db, userId: string) {
  return db
    .selectFrom('room_forgotten as f')
    .innerJoin('current_state as c', (j) =>
      j.onRef('c.room_id', '=', 'f.room_id').on('c.type', '=', 'm.room.member').onRef('c.state_key', '=', 'f.user_id').onRef('c.event_id', '=', 'f.event_id'),
    )
    .select('f.room_id')
    .where('f.user_id', '=', userId);
}

/** Whether the user has forgotten this room (see forgottenRoomIds). */
export async function isForgotten(db: Db, userId: string, roomId: string): Promise<boolean> {
  const row = await forgottenQuery(db, userId).where('f.room_id', '=', roomId).executeTakeFirst();
  return row !== undefined;
}

export async function addPendingDeactivation(db: Db, userId: string, now: number): Promise<void> {
  await db
    .insertInto('users_pending_deactivation')
    .values({ user_id: userId, created_ts: now })
    .onConflict((oc) => oc.column('user_id').doNothing())
    .execute();
}

/** The oldest user still to be parted, or undefined. */
export async function nextPendingDeactivation(db: Db): Promise<string | undefined> {
  const r = await db.selectFrom('users_pending_deactivation').select('user_id').orderBy('created_ts').orderBy('user_id').limit(1).executeTakeFirst();
  return r?.user_id;
}

export async function removePendingDeactivation(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('users_pending_deactivation').where('user_id', '=', userId).execute();
}

/** The servers of a room's joined members (the alias API's `servers`). */
export async function joinedServers(db: Db, roomId: string): Promise<string[]> {
  const res = await sql<{ server: string }>`
    SELECT DISTINCT substr(state_key, strpos(state_key, ':') + 1) AS server
    FROM current_state
    WHERE room_id = ${roomId} AND type = 'm.room.member' AND membership = 'join'`.execute(db);
  return res.rows.map((r) => r.server);
}

/** The servers of everyone joined to a room `userId` is joined to (the user's own server included). */
export async function serversSharingRoomWith(db: Db, userId: string): Promise<string[]> {
  const res = await sql<{ server: string }>`
    SELECT DISTINCT substr(o.state_key, strpos(o.state_key, ':') + 1) AS server
    FROM current_state m
    JOIN current_state o ON o.room_id = m.room_id AND o.type = 'm.room.member' AND o.membership = 'join'
    WHERE m.type = 'm.room.member' AND m.state_key = ${userId} AND m.membership = 'join'`.execute(db);
  return res.rows.map((r) => r.server);
}

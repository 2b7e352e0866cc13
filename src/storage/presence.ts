/**
 * Queries on presence: each user's last notable state at a presence stream
 * position, and who shares a room with whom (whose syncs a change wakes,
 * and whose presence a user may read).
 */
import { sql } from 'kysely';
import type { PresenceTable, Schema } from './schema.js';
import type { Db } from './db.js';

export type PresenceRow = PresenceTable;

/** Writes a user's presence at the next stream position; returns the position. */
export async function writePresence(db: Db, row: Omit<PresenceRow, 'stream_id'>): Promise<number> {
  const r = await db
    .insertInto('presence')
    .values({ ...row, stream_id: sql<number>`nextval('presence_stream_seq')` })
    .onConflict((oc) =>
      oc.column('user_id').doUpdateSet((eb) => ({
        state: eb.ref('excluded.state'),
        status_msg: eb.ref('excluded.status_msg'),
        last_active_ts: eb.ref('excluded.last_active_ts'),
        last_user_sync_ts: eb.ref('excluded.last_user_sync_ts'),
        currently_active: eb.ref('excluded.currently_active'),
        stream_id: eb.ref('excluded.stream_id'),
      })),
    )
    .returning('stream_id')
    .executeTakeFirstOrThrow();
  return Number(r.stream_id);
}

/** Updates the activity times only, at the same stream position (nothing others need to hear about). */
export async function touchPresence(db: Db, userId: string, lastActiveTs: number, lastUserSyncTs: number): Promise<void> {
  await db.updateTable('presence').set({ last_active_ts: lastActiveTs, last_user_sync_ts: lastUserSyncTs }).where('user_id', '=', userId).execute();
}

export async function getPresence(db: Db, userId: string): Promise<PresenceRow | undefined> {
  return db.selectFrom('presence').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

/** Rows of `userIds` written after `from` up to `to` (inclusive); with `onlineOnly`, offline rows are left out. */
export async function presenceBetween(db: Db, userIds: readonly string[], from: number, to: number, onlineOnly: boolean): Promise<PresenceRow[]> {
  if (userIds.length === 0 || to <= from) return [];
  let q = db
    .selectFrom('presence')
    .selectAll()
    .where(sql<boolean>`user_id = ANY(${sql.val([...userIds])}::text[])`)
    .where('stream_id', '>', from)
    .where('stream_id', '<=', to);
  if (onlineOnly) q = q.where('state', '<>', 'offline');
  return q.execute();
}

/** Users whose presence is not offline (their timers must run again after a restart). */
export async function presenceNotOffline(db: Db): Promise<PresenceRow[]> {
  return db.selectFrom('presence').selectAll().where('state', '<>', 'offline').execute();
}

export async function maxPresenceStreamId(db: Db): Promise<number> {
  const r = await db
    .selectFrom('presence')
    .select((eb) => eb.fn.max('stream_id').as('m'))
    .executeTakeFirst();
  return Number(r?.m ?? 0);
}

/** Users joined to at least one room that `userId` is joined to (including `userId` when joined anywhere). */
export async function usersSharingRoomWith(db: Db, userId: string): Promise<string[]> {
  const res = await sql<{ user_id: string }>`
    SELECT DISTINCT theirs.state_key AS user_id
    FROM current_state mine
    JOIN current_state theirs ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member' AND theirs.membership = 'join'
    WHERE mine.type = 'm.room.member' AND mine.state_key = ${userId} AND mine.membership = 'join'`.execute(db);
  return res.rows.map((r) => r.user_id);
}

/** Whether two users are both joined to some room. */
export async function shareARoom(db: Db, a: string, b: string): Promise<boolean> {
  const res = await sql<{ one: number }>`
    SELECT 1 AS one
    FROM current_state x
    JOIN current_state y ON y.room_id = x.room_id AND y.type = 'm.room.member' AND y.state_key = ${b} AND y.membership = 'join'
    WHERE x.type = 'm.room.member' AND x.state_key = ${a} AND x.membership = 'join'
    LIMIT 1`.execute(db);
  return res.rows.length > 0;
}

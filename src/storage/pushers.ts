/**
 * Pushers (migration 0014): the rows POST /pushers/set writes, and what the
 * sending loop reads and records: each pusher's position among its user's
 * notifications (event_push_actions), its last success and since when it
 * has been failing.
 */
import { sql } from 'kysely';
import type { Db, Tx } from './db.js';

export interface PusherRow {
  id: number;
  user_id: string;
  device_id: string | null;
  kind: string;
  app_id: string;
  pushkey: string;
  pushkey_ts: number;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string;
  lang: string;
  data: Record<string, unknown>;
  last_stream_ordering: number;
  last_success: number | null;
  failing_since: number | null;
}

const COLUMNS = [
  'id',
  'user_id',
  'device_id',
  'kind',
  'app_id',
  'pushkey',
  'pushkey_ts',
  'app_display_name',
  'device_display_name',
  'profile_tag',
  'lang',
  'data',
  'last_stream_ordering',
  'last_success',
  'failing_since',
] as const;

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toRow(r: Record<(typeof COLUMNS)[number], unknown>): PusherRow {
  return {
    ...(r as unknown as PusherRow),
    id: Number(r.id),
    pushkey_ts: Number(r.pushkey_ts),
    last_stream_ordering: Number(r.last_stream_ordering),
    last_success: numOrNull(r.last_success),
    failing_since: numOrNull(r.failing_since),
  };
}

/** The user's pushers, oldest first. */
export async function listPushers(db: Db, userId: string): Promise<PusherRow[]> {
  const rows = await db.selectFrom('pushers').select(COLUMNS).where('user_id', '=', userId).orderBy('id').execute();
  return rows.map(toRow);
}

export async function getPusherById(db: Db, id: number): Promise<PusherRow | undefined> {
  const r = await db.selectFrom('pushers').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  return r ? toRow(r) : undefined;
}

/** The user's pusher for (app_id, pushkey), locked for the caller's transaction. */
export async function getPusherForUpdate(tx: Tx, userId: string, appId: string, pushkey: string): Promise<PusherRow | undefined> {
  const r = await tx.selectFrom('pushers').select(COLUMNS).where('user_id', '=', userId).where('app_id', '=', appId).where('pushkey', '=', pushkey).forUpdate().executeTakeFirst();
  return r ? toRow(r) : undefined;
}

export interface NewPusher {
  userId: string;
  deviceId: string | null;
  kind: string;
  appId: string;
  pushkey: string;
  pushkeyTs: number;
  appDisplayName: string;
  deviceDisplayName: string;
  profileTag: string;
  lang: string;
  data: Record<string, unknown>;
  lastStreamOrdering: number;
}

/**
 * Creates the user's pusher for (app_id, pushkey) or replaces its settings.
 * A replaced pusher keeps its id and device, starts again from
 * `lastStreamOrdering` and is no longer counted as failing.
 */
export async function upsertPusher(db: Db, p: NewPusher): Promise<number> {
  const r = await db
    .insertInto('pushers')
    .values({
      user_id: p.userId,
      device_id: p.deviceId,
      kind: p.kind,
      app_id: p.appId,
      pushkey: p.pushkey,
      pushkey_ts: p.pushkeyTs,
      app_display_name: p.appDisplayName,
      device_display_name: p.deviceDisplayName,
      profile_tag: p.profileTag,
      lang: p.lang,
      data: sql<never>`${JSON.stringify(p.data)}::jsonb`,
      last_stream_ordering: p.lastStreamOrdering,
      last_success: null,
      failing_since: null,
    })
    .onConflict((oc) =>
      oc.columns(['user_id', 'app_id', 'pushkey']).doUpdateSet((eb) => ({
        kind: eb.ref('excluded.kind'),
        pushkey_ts: eb.ref('excluded.pushkey_ts'),
        app_display_name: eb.ref('excluded.app_display_name'),
        device_display_name: eb.ref('excluded.device_display_name'),
        profile_tag: eb.ref('excluded.profile_tag'),
        lang: eb.ref('excluded.lang'),
        data: eb.ref('excluded.data'),
        last_stream_ordering: eb.ref('excluded.last_stream_ordering'),
        failing_since: null,
      })),
    )
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(r.id);
}

/** Deletes the user's pusher for (app_id, pushkey); whether it existed. */
export async function deletePusher(db: Db, userId: string, appId: string, pushkey: string): Promise<boolean> {
  const r = await db.deleteFrom('pushers').where('user_id', '=', userId).where('app_id', '=', appId).where('pushkey', '=', pushkey).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Deletes the pushers of other users with this (app_id, pushkey); returns those users. */
export async function deletePushersOfOtherUsers(db: Db, appId: string, pushkey: string, exceptUserId: string): Promise<string[]> {
  const rows = await db.deleteFrom('pushers').where('app_id', '=', appId).where('pushkey', '=', pushkey).where('user_id', '!=', exceptUserId).returning('user_id').execute();
  return rows.map((r) => r.user_id);
}

/** Deletes the pushers set from these devices of the user (the devices are going). */
export async function deletePushersOfDevices(db: Db, userId: string, deviceIds: readonly string[]): Promise<void> {
  if (deviceIds.length === 0) return;
  await db
    .deleteFrom('pushers')
    .where('user_id', '=', userId)
    .where('device_id', 'in', [...deviceIds])
    .execute();
}

/** Deletes every pusher of the user (all their devices are going). */
export async function deleteAllPushersOfUser(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('pushers').where('user_id', '=', userId).execute();
}

/** Users per query (one parameter each, far below PostgreSQL's 65,535). */
const USER_CHUNK = 5000;

/**
 * HTTP pushers (of these users, or all), each with whether its user has
 * notifications after its position: one index probe per pusher.
 */
export async function httpPushersToWake(db: Db, userIds?: readonly string[]): Promise<{ id: number; user_id: string; pending: boolean }[]> {
  const query = (users?: string[]) =>
    db
      .selectFrom('pushers as p')
      .select(['p.id', 'p.user_id'])
      .select((eb) =>
        eb
          .exists(
            eb
              .selectFrom('event_push_actions as a')
              .select(sql`1`.as('one'))
              .whereRef('a.user_id', '=', 'p.user_id')
              .whereRef('a.stream_ordering', '>', 'p.last_stream_ordering'),
          )
          .as('pending'),
      )
      .where('p.kind', '=', 'http')
      .$if(users !== undefined, (q) => q.where('p.user_id', 'in', users as string[]))
      .orderBy('p.id')
      .execute();
  const rows: { id: number | string; user_id: string; pending: unknown }[] = [];
  if (userIds === undefined) rows.push(...(await query()));
  else {
    const unique = [...new Set(userIds)];
    for (let i = 0; i < unique.length; i += USER_CHUNK) rows.push(...(await query(unique.slice(i, i + USER_CHUNK))));
  }
  return rows.map((r) => ({ id: Number(r.id), user_id: r.user_id, pending: Boolean(r.pending) }));
}

/** A notification the pusher has yet to deal with. */
export interface PendingPush {
  room_id: string;
  stream_ordering: number;
  event_id: string;
  thread_id: string;
  actions: unknown[];
}

/** The user's notifications after position `after` up to `upTo` (inclusive), oldest first. */
export async function pendingPushActions(db: Db, userId: string, after: number, upTo: number, limit: number): Promise<PendingPush[]> {
  const rows = await db
    .selectFrom('event_push_actions')
    .select(['room_id', 'stream_ordering', 'event_id', 'thread_id', 'actions'])
    .where('user_id', '=', userId)
    .where('stream_ordering', '>', after)
    .where('stream_ordering', '<=', upTo)
    .orderBy('stream_ordering')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ ...r, stream_ordering: Number(r.stream_ordering) }));
}

/**
 * Moves the pusher past position `pos` (never backwards: the pusher may
 * have been set again meanwhile, which starts it at the newest event).
 * With `success`, records it and clears `failing_since`. Returns whether
 * the pusher still exists.
 */
export async function advancePusher(db: Db, id: number, pos: number, success?: number): Promise<boolean> {
  const r = await db
    .updateTable('pushers')
    .set((eb) => ({
      last_stream_ordering: sql<number>`GREATEST(${eb.ref('last_stream_ordering')}, ${pos}::bigint)`,
      ...(success !== undefined ? { last_success: success, failing_since: null } : {}),
    }))
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function setPusherFailingSince(db: Db, id: number, ts: number | null): Promise<void> {
  await db.updateTable('pushers').set({ failing_since: ts }).where('id', '=', id).execute();
}

/** For each event: the state group before it (null for an outlier without one). */
export async function eventStateGroupsBefore(db: Db, eventIds: readonly string[]): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>();
  if (eventIds.length === 0) return out;
  const rows = await db
    .selectFrom('events')
    .select(['event_id', 'state_group_before'])
    .where('event_id', 'in', [...new Set(eventIds)])
    .execute();
  for (const r of rows) out.set(r.event_id, numOrNull(r.state_group_before));
  return out;
}

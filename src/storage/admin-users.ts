/**
 * Queries behind the user admin API: paginated, filtered listings of
 * users; one user's details with profile and last-seen time; flags the
 * admin API sets; a user's devices and client addresses for whois.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

export const USER_ORDER_BY = [
  'name',
  'is_guest',
  'admin',
  'user_type',
  'deactivated',
  'shadow_banned',
  'displayname',
  'avatar_url',
  'creation_ts',
  'last_seen_ts',
  'locked',
] as const;
export type UserOrderBy = (typeof USER_ORDER_BY)[number];

export interface UserListFilter {
  from: number;
  limit: number;
  /** Substring of the localpart or of the display name (case-insensitive). */
  name?: string;
  /** Substring of the full user id; ignored when `name` is given. */
  userId?: string;
  guests: boolean;
  /** true: only deactivated users; false: none; undefined: both. */
  deactivated?: boolean;
  /** true: only admins; false: no admins; undefined: both. */
  admins?: boolean;
  /** When false, locked users are left out. */
  locked: boolean;
  /** User types to leave out; '' stands for users without a type. */
  notUserTypes: string[];
  orderBy: UserOrderBy;
  dir: 'f' | 'b';
}

export interface UserListEntry {
  name: string;
  user_type: string | null;
  is_guest: boolean;
  admin: boolean;
  deactivated: boolean;
  shadow_banned: boolean;
  displayname: string | null;
  avatar_url: string | null;
  /** Milliseconds, as the list API reports it. */
  creation_ts: number;
  erased: boolean;
  last_seen_ts: number | null;
  locked: boolean;
}

/** LIKE pattern text with its wildcards taken literally. */
function likeLiteral(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function lastSeenByUser(db: Db) {
  return db
    .selectFrom('user_ips')
    .select((eb) => ['user_id', eb.fn.max('last_seen').as('last_seen_ts')])
    .groupBy('user_id');
}

export async function listUsers(db: Db, f: UserListFilter): Promise<{ users: UserListEntry[]; total: number }> {
  let base = db.selectFrom('users as u').leftJoin('profiles as p', 'p.user_id', 'u.user_id').leftJoin(lastSeenByUser(db).as('ls'), 'ls.user_id', 'u.user_id');

  if (f.name) {
    const needle = likeLiteral(f.name.toLowerCase());
    base = base.where((eb) => eb.or([eb('u.localpart', 'like', `%${needle}%`), eb(eb.fn('lower', ['p.displayname']), 'like', `%${needle}%`)]));
  } else if (f.userId) {
    base = base.where('u.user_id', 'like', `%${likeLiteral(f.userId.toLowerCase())}%`);
  }
  if (!f.guests) base = base.where('u.is_guest', '=', false);
  if (f.deactivated !== undefined) base = base.where('u.deactivated', '=', f.deactivated);
  if (!f.locked) base = base.where('u.locked', '=', false);
  if (f.admins !== undefined) base = base.where('u.admin', '=', f.admins);
  if (f.notUserTypes.length > 0) {
    const types = f.notUserTypes.filter((t) => t !== '');
    const excludeUntyped = f.notUserTypes.includes('');
    base = base.where((eb) => {
      if (types.length === 0) return eb('u.user_type', 'is not', null);
      const notIn = eb('u.user_type', 'not in', types);
      return excludeUntyped ? notIn : eb.or([notIn, eb('u.user_type', 'is', null)]);
    });
  }

  const countRow = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();

  const column = {
    name: sql.ref('u.user_id'),
    is_guest: sql.ref('u.is_guest'),
    admin: sql.ref('u.admin'),
    user_type: sql.ref('u.user_type'),
    deactivated: sql.ref('u.deactivated'),
    shadow_banned: sql.ref('u.shadow_banned'),
    displayname: sql.ref('p.displayname'),
    avatar_url: sql.ref('p.avatar_url'),
    creation_ts: sql.ref('u.creation_ts'),
    last_seen_ts: sql.ref('ls.last_seen_ts'),
    locked: sql.ref('u.locked'),
  }[f.orderBy];
  const direction = f.dir === 'b' ? sql`DESC` : sql`ASC`;

  const rows = await base
    .select([
      'u.user_id as name',
      'u.user_type',
      'u.is_guest',
      'u.admin',
      'u.deactivated',
      'u.shadow_banned',
      'p.displayname',
      'p.avatar_url',
      'u.creation_ts',
      'u.erased',
      'ls.last_seen_ts',
      'u.locked',
    ])
    .orderBy(sql`${column} ${direction}`)
    .orderBy('u.user_id', 'asc')
    .limit(f.limit)
    .offset(f.from)
    .execute();

  return {
    total: Number(countRow.total),
    users: rows.map((r) => ({
      name: r.name,
      user_type: r.user_type,
      is_guest: r.is_guest,
      admin: r.admin,
      deactivated: r.deactivated,
      shadow_banned: r.shadow_banned,
      displayname: r.displayname ?? null,
      avatar_url: r.avatar_url ?? null,
      creation_ts: r.creation_ts,
      erased: r.erased,
      last_seen_ts: r.last_seen_ts === null || r.last_seen_ts === undefined ? null : Number(r.last_seen_ts),
      locked: r.locked,
    })),
  };
}

/** When the user was last seen making a request (any device), or null. */
export async function lastSeenOf(db: Db, userId: string): Promise<number | null> {
  const row = await db
    .selectFrom('user_ips')
    .select((eb) => eb.fn.max('last_seen').as('last_seen'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.last_seen === null || row?.last_seen === undefined ? null : Number(row.last_seen);
}

export async function setAdmin(db: Db, userId: string, admin: boolean): Promise<void> {
  await db.updateTable('users').set({ admin }).where('user_id', '=', userId).execute();
}

export async function setLocked(db: Db, userId: string, locked: boolean): Promise<void> {
  await db.updateTable('users').set({ locked }).where('user_id', '=', userId).execute();
}

export async function setUserType(db: Db, userId: string, userType: string | null): Promise<void> {
  await db.updateTable('users').set({ user_type: userType }).where('user_id', '=', userId).execute();
}

/** Lifts a deactivation: the account is active and no longer marked erased. */
export async function reactivateUser(db: Db, userId: string): Promise<void> {
  await db.updateTable('users').set({ deactivated: false, erased: false }).where('user_id', '=', userId).execute();
}

/** Sets profile fields (creating the profile row if a user somehow lacks one). */
export async function setProfileFields(db: Db, userId: string, fields: { displayname?: string | null; avatar_url?: string | null }): Promise<void> {
  if (fields.displayname === undefined && fields.avatar_url === undefined) return;
  await db
    .insertInto('profiles')
    .values({ user_id: userId, displayname: fields.displayname ?? null, avatar_url: fields.avatar_url ?? null })
    .onConflict((oc) => oc.column('user_id').doUpdateSet(fields))
    .execute();
}

export interface ClientConnection {
  device_id: string;
  ip: string;
  user_agent: string;
  last_seen: number;
}

/** Every address and user agent a user's tokens were used from, newest first. */
export async function userConnections(db: Db, userId: string): Promise<ClientConnection[]> {
  return db.selectFrom('user_ips').select(['device_id', 'ip', 'user_agent', 'last_seen']).where('user_id', '=', userId).orderBy('last_seen', 'desc').orderBy('device_id').execute();
}

/** The rooms a user is joined to now (their current membership is join). */
export async function joinedRoomIds(db: Db, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('current_state')
    .select('room_id')
    .where('type', '=', 'm.room.member')
    .where('state_key', '=', userId)
    .where('membership', '=', 'join')
    .orderBy('room_id')
    .execute();
  return rows.map((r) => r.room_id);
}

/** Queries on users and profiles. */
import type { Db } from './db.js';

export interface UserRow {
  user_id: string;
  localpart: string;
  password_hash: string | null;
  admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  erased: boolean;
  shadow_banned: boolean;
  locked: boolean;
  user_type: string | null;
  appservice_id: string | null;
  creation_ts: number;
}

export async function getUser(db: Db, userId: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export interface NewUser {
  userId: string;
  localpart: string;
  passwordHash: string | null;
  admin?: boolean;
  isGuest?: boolean;
  userType?: string | null;
  displayname?: string | null;
  creationTs?: number;
}

/** Inserts the user and its profile; returns false when the id is taken (nothing written). */
export async function insertUser(db: Db, u: NewUser): Promise<boolean> {
  const inserted = await db
    .insertInto('users')
    .values({
      user_id: u.userId,
      localpart: u.localpart,
      password_hash: u.passwordHash,
      admin: u.admin ?? false,
      is_guest: u.isGuest ?? false,
      user_type: u.userType ?? null,
      appservice_id: null,
      creation_ts: u.creationTs ?? Date.now(),
    })
    .onConflict((oc) => oc.doNothing())
    .returning('user_id')
    .executeTakeFirst();
  if (!inserted) return false;
  await db
    .insertInto('profiles')
    .values({ user_id: u.userId, displayname: u.displayname ?? null, avatar_url: null })
    .execute();
  return true;
}

export async function setPasswordHash(db: Db, userId: string, hash: string | null): Promise<void> {
  await db.updateTable('users').set({ password_hash: hash }).where('user_id', '=', userId).execute();
}

export async function getProfile(db: Db, userId: string): Promise<{ displayname: string | null; avatar_url: string | null } | undefined> {
  return db.selectFrom('profiles').select(['displayname', 'avatar_url']).where('user_id', '=', userId).executeTakeFirst();
}

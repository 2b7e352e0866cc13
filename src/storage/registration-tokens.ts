/**
 * Registration tokens: create, read, update, delete (the admin API). The
 * counting of uses during registration lives in registration-token-use.ts.
 */
import type { Db } from './db.js';

export interface RegistrationTokenRow {
  token: string;
  uses_allowed: number | null;
  pending: number;
  completed: number;
  expiry_time: number | null;
}

const COLUMNS = ['token', 'uses_allowed', 'pending', 'completed', 'expiry_time'] as const;

/**
 * All tokens, or only the valid (uses left and not expired) or only the
 * invalid ones. Ordered by token so listings are stable.
 */
export async function listRegistrationTokens(db: Db, opts: { valid?: boolean; now: number }): Promise<RegistrationTokenRow[]> {
  let q = db.selectFrom('registration_tokens').select(COLUMNS);
  if (opts.valid !== undefined) {
    const now = opts.now;
    q = q.where((eb) => {
      const hasUses = eb.or([eb('uses_allowed', 'is', null), eb('uses_allowed', '>', eb(eb.ref('pending'), '+', eb.ref('completed')))]);
      const notExpired = eb.or([eb('expiry_time', 'is', null), eb('expiry_time', '>', now)]);
      const valid = eb.and([hasUses, notExpired]);
      return opts.valid ? valid : eb.not(valid);
    });
  }
  return q.orderBy('token').execute();
}

export async function getRegistrationToken(db: Db, token: string): Promise<RegistrationTokenRow | undefined> {
  return db.selectFrom('registration_tokens').select(COLUMNS).where('token', '=', token).executeTakeFirst();
}

/** Inserts a token; false when it exists already (the primary key decides, so two creators cannot both win). */
export async function insertRegistrationToken(db: Db, t: { token: string; usesAllowed: number | null; expiryTime: number | null }): Promise<boolean> {
  const row = await db
    .insertInto('registration_tokens')
    .values({ token: t.token, uses_allowed: t.usesAllowed, expiry_time: t.expiryTime })
    .onConflict((oc) => oc.column('token').doNothing())
    .returning('token')
    .executeTakeFirst();
  return row !== undefined;
}

/** Changes the given fields; undefined when there is no such token. */
export async function updateRegistrationToken(
  db: Db,
  token: string,
  changes: { uses_allowed?: number | null; expiry_time?: number | null },
): Promise<RegistrationTokenRow | undefined> {
  if (Object.keys(changes).length === 0) return getRegistrationToken(db, token);
  return db.updateTable('registration_tokens').set(changes).where('token', '=', token).returning(COLUMNS).executeTakeFirst();
}

/** Deletes a token; false when there was none. */
export async function deleteRegistrationToken(db: Db, token: string): Promise<boolean> {
  const row = await db.deleteFrom('registration_tokens').where('token', '=', token).returning('token').executeTakeFirst();
  return row !== undefined;
}

/** Queries on access tokens, refresh tokens and devices' sessions. */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from './schema.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export interface TokenOwner {
  token_id: number;
  user_id: string;
  device_id: string | null;
  valid_until_ms: number | null;
  puppets_user_id: string | null;
  admin: boolean;
  is_guest: boolean;
  deactivated: boolean;
  locked: boolean;
  shadow_banned: boolean;
}

export async function findAccessToken(db: Db, tokenHash: string): Promise<TokenOwner | undefined> {
  return db
    .selectFrom('access_tokens as t')
    .innerJoin('users as u', 'u.user_id', 't.user_id')
    .select([
      't.id as token_id',
      't.user_id',
      't.device_id',
      't.valid_until_ms',
      't.puppets_user_id',
      'u.admin',
      'u.is_guest',
      'u.deactivated',
      'u.locked',
      'u.shadow_banned',
    ])
    .where('t.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

export async function insertAccessToken(
  db: Db,
  t: { tokenHash: string; userId: string; deviceId: string | null; validUntilMs?: number | null; refreshTokenId?: number | null; puppetsUserId?: string | null },
): Promise<number> {
  const row = await db
    .insertInto('access_tokens')
    .values({
      token_hash: t.tokenHash,
      user_id: t.userId,
      device_id: t.deviceId,
      valid_until_ms: t.validUntilMs ?? null,
      refresh_token_id: t.refreshTokenId ?? null,
      puppets_user_id: t.puppetsUserId ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function insertRefreshToken(
  db: Db,
  t: { tokenHash: string; userId: string; deviceId: string; expiryTs: number | null; ultimateSessionExpiryTs: number | null },
): Promise<number> {
  const row = await db
    .insertInto('refresh_tokens')
    .values({
      token_hash: t.tokenHash,
      user_id: t.userId,
      device_id: t.deviceId,
      next_token_id: null,
      expiry_ts: t.expiryTs,
      ultimate_session_expiry_ts: t.ultimateSessionExpiryTs,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Deletes the access and refresh tokens of some or all of a user's devices; returns the deleted access-token hashes. */
export async function deleteTokens(db: Db, userId: string, opts: { deviceIds?: string[]; exceptTokenId?: number } = {}): Promise<string[]> {
  let q = db.deleteFrom('access_tokens').where('user_id', '=', userId);
  if (opts.deviceIds) {
    if (opts.deviceIds.length === 0) return [];
    q = q.where('device_id', 'in', opts.deviceIds);
  }
  if (opts.exceptTokenId !== undefined) q = q.where('id', '!=', opts.exceptTokenId);
  const gone = await q.returning('token_hash').execute();
  let r = db.deleteFrom('refresh_tokens').where('user_id', '=', userId);
  if (opts.deviceIds) r = r.where('device_id', 'in', opts.deviceIds);
  await r.execute();
  return gone.map((g) => g.token_hash);
}

export async function deleteAccessTokenById(db: Db, tokenId: number): Promise<string | undefined> {
  const row = await db.deleteFrom('access_tokens').where('id', '=', tokenId).returning('token_hash').executeTakeFirst();
  return row?.token_hash;
}

/** Queries on access tokens, refresh tokens and devices' sessions. */
import type { Db } from './db.js';

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
  /** Set when the token came from a refresh token; its first use retires the previous refresh token. */
  refresh_token_id: number | null;
  used: boolean;
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
      't.refresh_token_id',
      't.used',
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
  if (opts.exceptTokenId !== undefined) {
    // Keep the refresh token behind the kept access token: deleting it would
    // cascade to that access token and end the very session being kept.
    const keep = await db.selectFrom('access_tokens').select('refresh_token_id').where('id', '=', opts.exceptTokenId).executeTakeFirst();
    if (keep?.refresh_token_id != null) r = r.where('id', '!=', keep.refresh_token_id);
  }
  await r.execute();
  return gone.map((g) => g.token_hash);
}

export async function deleteAccessTokenById(db: Db, tokenId: number): Promise<string | undefined> {
  const row = await db.deleteFrom('access_tokens').where('id', '=', tokenId).returning('token_hash').executeTakeFirst();
  return row?.token_hash;
}

/** Marks an access token as used; the first use of a refreshed token retires the refresh token before it. */
export async function markAccessTokenUsed(db: Db, tokenId: number): Promise<void> {
  await db.updateTable('access_tokens').set({ used: true }).where('id', '=', tokenId).where('used', '=', false).execute();
}

export interface RefreshTokenLookup {
  id: number;
  user_id: string;
  device_id: string;
  next_token_id: number | null;
  expiry_ts: number | null;
  ultimate_session_expiry_ts: number | null;
  /** The successor refresh token has itself been refreshed. */
  next_refreshed: boolean;
  /** An access token issued with the successor refresh token has been used. */
  next_access_used: boolean;
}

/** A refresh token by hash, with what is known of its successor (if it was refreshed before); locks its row. */
export async function lookupRefreshToken(db: Db, hash: string): Promise<RefreshTokenLookup | undefined> {
  const row = await db
    .selectFrom('refresh_tokens as rt')
    .leftJoin('refresh_tokens as nrt', 'nrt.id', 'rt.next_token_id')
    .leftJoin('access_tokens as at', 'at.refresh_token_id', 'nrt.id')
    .select(['rt.id', 'rt.user_id', 'rt.device_id', 'rt.next_token_id', 'rt.expiry_ts', 'rt.ultimate_session_expiry_ts', 'nrt.next_token_id as nrt_next', 'at.used as at_used'])
    .where('rt.token_hash', '=', hash)
    // Two refreshes of one token at once take turns, so the second sees the first's successor.
    .forUpdate('rt')
    .execute();
  const first = row[0];
  if (!first) return undefined;
  return {
    id: first.id,
    user_id: first.user_id,
    device_id: first.device_id,
    next_token_id: first.next_token_id,
    expiry_ts: first.expiry_ts,
    ultimate_session_expiry_ts: first.ultimate_session_expiry_ts,
    next_refreshed: first.nrt_next !== null && first.nrt_next !== undefined,
    next_access_used: row.some((r) => r.at_used === true),
  };
}

/**
 * Records `nextId` as the successor of refresh token `id`. A successor handed
 * out earlier (a refresh that was retried) is dropped, and so is the token
 * before `id`: only the newest two of a chain are kept. Their access tokens
 * go with them (ON DELETE CASCADE); the deleted access-token hashes are returned.
 */
export async function replaceRefreshToken(db: Db, id: number, nextId: number): Promise<string[]> {
  const before = await db.selectFrom('refresh_tokens').select('next_token_id').where('id', '=', id).executeTakeFirst();
  await db.updateTable('refresh_tokens').set({ next_token_id: nextId }).where('id', '=', id).execute();
  const doomed: number[] = [];
  if (before?.next_token_id != null) doomed.push(before.next_token_id);
  const predecessors = await db.selectFrom('refresh_tokens').select('id').where('next_token_id', '=', id).execute();
  doomed.push(...predecessors.map((p) => p.id));
  if (doomed.length === 0) return [];
  const gone = await db.deleteFrom('access_tokens').where('refresh_token_id', 'in', doomed).returning('token_hash').execute();
  await db.deleteFrom('refresh_tokens').where('id', 'in', doomed).execute();
  return gone.map((g) => g.token_hash);
}

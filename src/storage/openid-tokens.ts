/** OpenID tokens (migration 0023): stored by the SHA-256 of the token. */
import type { Db } from './db.js';

export async function insertOpenIdToken(db: Db, tokenHash: string, userId: string, validUntilMs: number): Promise<void> {
  await db.insertInto('openid_tokens').values({ token_hash: tokenHash, user_id: userId, valid_until_ms: validUntilMs }).execute();
}

/** The user of a token still valid at `now`. */
export async function openIdTokenUser(db: Db, tokenHash: string, now: number): Promise<string | undefined> {
  const row = await db.selectFrom('openid_tokens').select('user_id').where('token_hash', '=', tokenHash).where('valid_until_ms', '>', now).executeTakeFirst();
  return row?.user_id;
}

/** Drops tokens that expired before `now`; returns how many. */
export async function deleteExpiredOpenIdTokens(db: Db, now: number): Promise<number> {
  const res = await db.deleteFrom('openid_tokens').where('valid_until_ms', '<=', now).executeTakeFirst();
  return Number(res.numDeletedRows);
}

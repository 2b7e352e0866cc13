/**
 * OpenID tokens, as the spec's "OpenID" module and Synapse have them: a
 * user asks for a token (`POST /user/{userId}/openid/request_token`, only
 * for themself) and hands it to a third party (a widget, Element Call, an
 * integration manager), which asks our federation API who it belongs to
 * (`GET /_matrix/federation/v1/openid/userinfo`, no signature needed).
 * Tokens live an hour, as Synapse's; expired ones are swept when new ones
 * are made.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { MatrixError, forbidden } from '../matrix-error.js';
import { deleteExpiredOpenIdTokens, insertOpenIdToken, openIdTokenUser } from '../storage/openid-tokens.js';
import type { Schema } from '../storage/schema.js';

export const OPENID_TOKEN_LIFETIME_MS = 60 * 60 * 1000;

const hashOf = (token: string) => createHash('sha256').update(token).digest('base64');

export interface OpenIdToken {
  access_token: string;
  token_type: 'Bearer';
  matrix_server_name: string;
  expires_in: number;
}

export class OpenIdService {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly serverName: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new token for `requesterId`, who must be `userId`. */
  async requestToken(requesterId: string, userId: string): Promise<OpenIdToken> {
    if (requesterId !== userId) throw forbidden('Cannot request tokens for other users.');
    const token = randomBytes(24).toString('base64url');
    const now = this.now();
    await this.db.transaction().execute(async (tx) => {
      await deleteExpiredOpenIdTokens(tx, now);
      await insertOpenIdToken(tx, hashOf(token), userId, now + OPENID_TOKEN_LIFETIME_MS);
    });
    return { access_token: token, token_type: 'Bearer', matrix_server_name: this.serverName, expires_in: OPENID_TOKEN_LIFETIME_MS / 1000 };
  }

  /** The user a token was given to: 401 M_UNKNOWN_TOKEN when it is unknown or expired, as Synapse answers. */
  async userInfo(token: string | undefined): Promise<{ sub: string }> {
    if (token === undefined || token === '') throw new MatrixError(401, 'M_MISSING_TOKEN', 'Access Token required');
    const userId = await openIdTokenUser(this.db, hashOf(token), this.now());
    if (userId === undefined) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Access Token unknown or expired');
    return { sub: userId };
  }
}

/**
 * Who is calling: access tokens to requesters (with a small cache, since
 * every client request asks), sessions (device + tokens) created for
 * login and registration, and sign-out that takes effect at once.
 */
import type { Logger } from 'pino';
import { parseDuration } from '../config/durations.js';
import type { HomeserverConfig } from '../config/types.js';
import { MatrixError, unknownToken } from '../matrix-error.js';
import type { Database } from '../storage/database.js';
import { recordClientIp, upsertDevice } from '../storage/devices.js';
import {
  deleteTokens,
  findAccessToken,
  insertAccessToken,
  insertRefreshToken,
  lookupRefreshToken,
  markAccessTokenUsed,
  replaceRefreshToken,
  type TokenOwner,
} from '../storage/tokens.js';
import { newAccessToken, newDeviceId, newRefreshToken, tokenHash } from './tokens.js';
import { subsystemLogger } from '../logger.js';
import type { Db } from '../storage/db.js';

export interface Requester {
  userId: string;
  localpart: string;
  deviceId: string | null;
  tokenId: number;
  isGuest: boolean;
  isAdmin: boolean;
  shadowBanned: boolean;
}

export interface NewSession {
  access_token: string;
  device_id: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

const CACHE_TTL_MS = 60_000;
/** Long enough for any transaction that signs a user out to have committed. */
const UNCACHEABLE_MS = 30_000;
const CACHE_MAX = 10_000;
/** How often one token's address and user agent are written: Synapse batches these too. */
const IP_WRITE_INTERVAL_MS = 60_000;

/** A rotated session: the new tokens, and how long the access token lasts. */
export interface RefreshedSession {
  access_token: string;
  refresh_token: string;
  expires_in_ms: number;
}

/** The spec's answer for a refresh token that is unknown, used or expired (Synapse says 403 for the last two). */
const refreshRefused = (message: string) => new MatrixError(401, 'M_UNKNOWN_TOKEN', message);

export function localpartOf(userId: string): string {
  const i = userId.indexOf(':');
  return userId.slice(1, i < 0 ? undefined : i);
}

export class AuthService {
  private readonly cache = new Map<string, { owner: TokenOwner; expires: number }>();
  private readonly ipSeen = new Map<string, number>();
  /**
   * Tokens (and users) being signed out: not cached until the change has
   * surely committed, so a request racing the sign-out's transaction cannot
   * put the old row back into the cache.
   */
  private readonly noCache = new Map<string, number>();

  constructor(
    private readonly database: Database,
    private readonly config: HomeserverConfig,
    private readonly logger: Logger,
  ) {
    this.logger = subsystemLogger(logger, 'axon.auth');
  }

  /** The requester for a token; throws M_UNKNOWN_TOKEN (soft_logout when merely expired). */
  async authenticate(token: string, ip: string, userAgent: string, now = Date.now()): Promise<Requester> {
    const hash = tokenHash(token);
    let owner: TokenOwner | undefined;
    const hit = this.cache.get(hash);
    if (hit && hit.expires > now) owner = hit.owner;
    else {
      owner = await findAccessToken(this.database.db, hash);
      if (owner && !this.uncacheable(hash, owner.user_id, now)) {
        if (this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(hash, { owner, expires: now + CACHE_TTL_MS });
      } else this.cache.delete(hash);
    }
    if (!owner || owner.deactivated) throw unknownToken();
    if (owner.locked) {
      throw new MatrixError(401, 'M_USER_LOCKED', 'User account has been locked', { soft_logout: true });
    }
    if (owner.valid_until_ms !== null && owner.valid_until_ms < now) throw unknownToken(true);
    if (owner.refresh_token_id !== null && !owner.used) {
      // The first use of a refreshed access token retires the refresh token
      // that came before it (the spec's rotation); the cached row learns it too.
      await markAccessTokenUsed(this.database.db, owner.token_id);
      owner.used = true;
    }
    this.noteClientIp(hash, owner, ip, userAgent, now);
    const userId = owner.puppets_user_id ?? owner.user_id;
    return {
      userId,
      localpart: localpartOf(userId),
      deviceId: owner.device_id,
      tokenId: owner.token_id,
      isGuest: owner.is_guest,
      isAdmin: owner.admin,
      shadowBanned: owner.shadow_banned,
    };
  }

  private noteClientIp(hash: string, owner: TokenOwner, ip: string, userAgent: string, now: number): void {
    const key = `${hash}\u0000${ip}\u0000${userAgent}`;
    const last = this.ipSeen.get(key);
    if (last !== undefined && now - last < IP_WRITE_INTERVAL_MS) return;
    if (this.ipSeen.size >= CACHE_MAX) this.ipSeen.clear();
    this.ipSeen.set(key, now);
    recordClientIp(this.database.db, owner.user_id, owner.device_id, ip, userAgent, now).catch((err: unknown) => this.logger.warn({ err }, 'could not record client address'));
  }

  /**
   * Creates (or reuses) a device and hands out a new access token for it,
   * plus a refresh token when the client asked for one. Runs inside the
   * caller's transaction when given one.
   */
  async createSession(db: Db, opts: { userId: string; deviceId?: string | null; displayName?: string | null; refreshable?: boolean; now?: number }): Promise<NewSession> {
    const now = opts.now ?? Date.now();
    const deviceId = opts.deviceId || newDeviceId();
    const localpart = localpartOf(opts.userId);
    await upsertDevice(db, opts.userId, deviceId, opts.displayName ?? null);
    const accessToken = newAccessToken(localpart);
    const session: NewSession = { access_token: accessToken, device_id: deviceId };
    let refreshTokenId: number | null = null;
    let validUntil: number | null = null;
    if (opts.refreshable) {
      const lifetime = this.refreshableLifetimeMs();
      const refreshToken = newRefreshToken(localpart);
      const refreshLifetime = this.refreshTokenLifetimeMs();
      refreshTokenId = await insertRefreshToken(db, {
        tokenHash: tokenHash(refreshToken),
        userId: opts.userId,
        deviceId,
        expiryTs: refreshLifetime === null ? null : now + refreshLifetime,
        ultimateSessionExpiryTs: null,
      });
      validUntil = now + lifetime;
      session.refresh_token = refreshToken;
      session.expires_in_ms = lifetime;
    }
    await insertAccessToken(db, { tokenHash: tokenHash(accessToken), userId: opts.userId, deviceId, validUntilMs: validUntil, refreshTokenId });
    return session;
  }

  /**
   * The owner of an access token even when it has expired (a soft-logged-out
   * client may still log out): its user (the puppeted one for an admin's
   * puppet token), device and token id. M_UNKNOWN_TOKEN when the token is
   * unknown or its user deactivated.
   */
  async ownerOfToken(token: string): Promise<{ userId: string; deviceId: string | null; tokenId: number }> {
    const owner = await findAccessToken(this.database.db, tokenHash(token));
    if (!owner || owner.deactivated) throw unknownToken();
    return { userId: owner.puppets_user_id ?? owner.user_id, deviceId: owner.device_id, tokenId: owner.token_id };
  }

  /**
   * Rotates a refresh token (POST /refresh): a new access and refresh token
   * for the same device, in one transaction; the old pair is retired (the
   * spec: it stays valid until the new access or refresh token is used) and
   * its cached entries are dropped once the change has committed.
   */
  async refresh(token: string, now = Date.now()): Promise<RefreshedSession> {
    const accessLifetime = this.refreshableLifetimeMs();
    const refreshLifetime = this.refreshTokenLifetimeMs();
    const { result, retired } = await this.database.db.transaction().execute(async (tx) => {
      const existing = token.startsWith('syr_') ? await lookupRefreshToken(tx, tokenHash(token)) : undefined;
      if (!existing) throw refreshRefused('Unknown refresh token');
      if (existing.next_access_used || existing.next_refreshed) throw refreshRefused('Refresh token has already been used');
      if (existing.expiry_ts !== null && existing.expiry_ts < now) throw refreshRefused('The refresh token has expired');
      let accessUntil = now + accessLifetime;
      let refreshUntil = refreshLifetime === null ? null : now + refreshLifetime;
      const ultimate = existing.ultimate_session_expiry_ts;
      if (ultimate !== null) {
        if (ultimate < now) throw refreshRefused('The session has expired and can no longer be refreshed');
        accessUntil = Math.min(accessUntil, ultimate);
        refreshUntil = refreshUntil === null ? ultimate : Math.min(refreshUntil, ultimate);
      }
      const localpart = localpartOf(existing.user_id);
      const refreshToken = newRefreshToken(localpart);
      const accessToken = newAccessToken(localpart);
      const nextId = await insertRefreshToken(tx, {
        tokenHash: tokenHash(refreshToken),
        userId: existing.user_id,
        deviceId: existing.device_id,
        expiryTs: refreshUntil,
        ultimateSessionExpiryTs: ultimate,
      });
      await insertAccessToken(tx, {
        tokenHash: tokenHash(accessToken),
        userId: existing.user_id,
        deviceId: existing.device_id,
        validUntilMs: accessUntil,
        refreshTokenId: nextId,
      });
      const gone = await replaceRefreshToken(tx, existing.id, nextId);
      return { result: { access_token: accessToken, refresh_token: refreshToken, expires_in_ms: accessUntil - now }, retired: gone };
    });
    this.forget(retired);
    return result;
  }

  /** Synapse's `refreshable_access_token_lifetime` (default 5 minutes). */
  refreshableLifetimeMs(): number {
    const v = this.config.raw['refreshable_access_token_lifetime'];
    return parseLifetime(v) ?? 5 * 60_000;
  }

  /** Synapse's `refresh_token_lifetime` (default: none). */
  refreshTokenLifetimeMs(): number | null {
    return parseLifetime(this.config.raw['refresh_token_lifetime']) ?? null;
  }

  /** Signs out devices (or all of a user's sessions), effective for the very next request. */
  async signOut(db: Db, userId: string, opts: { deviceIds?: string[]; exceptTokenId?: number } = {}): Promise<void> {
    const hashes = await deleteTokens(db, userId, opts);
    this.forget(hashes);
  }

  /** Drops cached tokens; call after deleting tokens or changing a user's flags. */
  forget(hashes: string[], now = Date.now()): void {
    for (const h of hashes) {
      this.cache.delete(h);
      this.markUncacheable(h, now);
    }
  }

  forgetUser(userId: string, now = Date.now()): void {
    for (const [h, e] of this.cache) if (e.owner.user_id === userId) this.cache.delete(h);
    this.markUncacheable(`user:${userId}`, now);
  }

  private markUncacheable(key: string, now: number): void {
    if (this.noCache.size >= CACHE_MAX) this.noCache.clear();
    this.noCache.set(key, now + UNCACHEABLE_MS);
  }

  private uncacheable(hash: string, userId: string, now: number): boolean {
    for (const key of [hash, `user:${userId}`]) {
      const until = this.noCache.get(key);
      if (until === undefined) continue;
      if (until > now) return true;
      this.noCache.delete(key);
    }
    return false;
  }
}

function parseLifetime(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  try {
    return parseDuration(v);
  } catch {
    return undefined;
  }
}

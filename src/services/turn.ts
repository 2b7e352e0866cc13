/**
 * TURN credentials for voice and video calls, in coturn's REST scheme
 * (`use-auth-secret` with `static-auth-secret`): the username is
 * `<expiry in unix seconds>:<user id>` and the password is the standard,
 * padded base64 of HMAC-SHA1(secret, username). coturn recomputes the HMAC
 * and refuses the username once its expiry has passed, so nothing is stored.
 * Without a shared secret, the static `turn_username`/`turn_password` pair is
 * handed out instead, as Synapse does.
 */
import { createHmac } from 'node:crypto';
import type { HomeserverConfig } from '../config/types.js';

export interface TurnCredentials {
  username: string;
  password: string;
  /** Seconds the credentials stay valid. */
  ttl: number;
  uris: string[];
}

type TurnConfig = Pick<HomeserverConfig, 'turn_uris' | 'turn_shared_secret' | 'turn_username' | 'turn_password' | 'turn_user_lifetime_ms'>;

/** The password coturn expects for a REST-scheme username. */
export function turnRestPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/**
 * The credentials for `userId`, or null when TURN is not configured: no
 * `turn_uris`, no credentials (neither a shared secret nor a static
 * username and password), or a zero `turn_user_lifetime`. Synapse answers
 * `{}` in each of these cases.
 */
export function turnCredentials(config: TurnConfig, userId: string, nowMs: number = Date.now()): TurnCredentials | null {
  const lifetimeMs = config.turn_user_lifetime_ms;
  const uris = config.turn_uris;
  if (uris.length === 0 || !(lifetimeMs > 0)) return null;
  const ttl = Math.floor(lifetimeMs / 1000);
  const secret = config.turn_shared_secret;
  if (secret) {
    const expiry = Math.floor((nowMs + lifetimeMs) / 1000);
    const username = `${expiry}:${userId}`;
    return { username, password: turnRestPassword(secret, username), ttl, uris: [...uris] };
  }
  if (config.turn_username && config.turn_password) {
    return { username: config.turn_username, password: config.turn_password, ttl, uris: [...uris] };
  }
  return null;
}

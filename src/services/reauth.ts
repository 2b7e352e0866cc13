/**
 * Re-authentication of a signed-in user through UIA before a sensitive
 * action (password change, deactivation, device deletion, replacing
 * cross-signing keys). As in Synapse, failed stages count against
 * `rc_login.failed_attempts` for that user, and once over it every attempt
 * is refused with 429 before any password is checked.
 */
import type { RateLimitConfig } from '../config/types.js';
import { containsNul } from '../core/json-values.js';
import { badJson } from '../matrix-error.js';
import type { Requester } from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import { UiaRequired, type UiaRequest, type UiaResult, type UiaService } from './uia.js';

/** The flows a signed-in user re-authenticates with. */
const PASSWORD_FLOWS = [['m.login.password']];

export class Reauthenticator {
  constructor(
    private readonly uia: UiaService,
    private readonly rateLimiter: RateLimiter,
    private readonly failedAttempts: RateLimitConfig,
  ) {}

  /** Passes (returning the finished session) or throws UiaRequired / 429. */
  async reauthenticate(requester: Requester, request: UiaRequest, flows: string[][] = PASSWORD_FLOWS): Promise<UiaResult> {
    // UIA keeps the request in a jsonb column, which cannot hold U+0000.
    if (containsNul(request.body)) throw badJson('The request may not contain U+0000');
    const key = `uia-failed:${requester.userId}`;
    this.rateLimiter.check(key, this.failedAttempts, { update: false });
    try {
      return await this.uia.authenticate(request, flows, requester);
    } catch (err) {
      if (err instanceof UiaRequired && err.failure) {
        try {
          this.rateLimiter.check(key, this.failedAttempts);
        } catch {
          // Already over the limit: the next attempt is refused up front.
        }
      }
      throw err;
    }
  }
}

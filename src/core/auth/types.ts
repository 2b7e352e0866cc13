/** Shared types of the auth rules. */
import type { AuthResult, PDU } from '../pdu.js';

/** The room state the rules look at, by `(type, state_key)`. */
export type StateLookup = (type: string, stateKey: string) => PDU | undefined;

export interface AuthCheckOptions {
  /**
   * Whether `event` is validly signed by `serverName` (v8+ rule for
   * `join_authorised_via_users_server`). The default only checks that the
   * event carries a signature from that server, as the cryptographic check of
   * every signature on a PDU happens in the receipt checks before auth.
   */
  isSignedBy?: (event: PDU, serverName: string) => boolean;
}

export const ALLOWED: AuthResult = Object.freeze({ allowed: true });

export function deny(reason: string): AuthResult {
  return { allowed: false, reason };
}

/** The HMAC of shared-secret registration, shared by the server and register_new_matrix_user. */
import { createHmac } from 'node:crypto';

/**
 * The MAC of a shared-secret registration: hex HMAC-SHA1 keyed by the
 * secret over nonce NUL username NUL password NUL "admin"|"notadmin"
 * [NUL user_type]. register_new_matrix_user computes the same.
 */
export function sharedSecretMac(secret: string, r: { nonce: string; username: string; password: string; admin: boolean; userType?: string | null }): string {
  const h = createHmac('sha1', Buffer.from(secret, 'utf8'));
  h.update(Buffer.from(r.nonce, 'utf8'));
  h.update('\u0000');
  h.update(Buffer.from(r.username, 'utf8'));
  h.update('\u0000');
  h.update(Buffer.from(r.password, 'utf8'));
  h.update('\u0000');
  h.update(r.admin ? 'admin' : 'notadmin');
  if (r.userType) {
    h.update('\u0000');
    h.update(Buffer.from(r.userType, 'utf8'));
  }
  return h.digest('hex');
}

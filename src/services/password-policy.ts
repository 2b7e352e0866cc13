/**
 * `password_config.policy` as Synapse enforces it on registration and
 * password changes: minimum length and required character classes, each
 * with the spec's M_WEAK_PASSWORD family of errors (Synapse's errcodes).
 */
import { MatrixError } from '../matrix-error.js';

export interface PasswordPolicy {
  enabled?: boolean;
  minimum_length?: number;
  require_digit?: boolean;
  require_symbol?: boolean;
  require_lowercase?: boolean;
  require_uppercase?: boolean;
}

export function checkPasswordPolicy(policy: Record<string, unknown>, password: string): void {
  const p = policy as PasswordPolicy;
  if (!p.enabled) return;
  if (typeof p.minimum_length === 'number' && password.length < p.minimum_length) {
    throw new MatrixError(400, 'M_PASSWORD_TOO_SHORT', `The password must be at least ${p.minimum_length} characters long`);
  }
  if (p.require_digit && !/\d/.test(password)) throw new MatrixError(400, 'M_PASSWORD_NO_DIGIT', 'The password must include at least one digit');
  if (p.require_symbol && !/[^\p{L}\p{N}]/u.test(password)) {
    throw new MatrixError(400, 'M_PASSWORD_NO_SYMBOL', 'The password must include at least one symbol');
  }
  if (p.require_lowercase && !/\p{Ll}/u.test(password)) {
    throw new MatrixError(400, 'M_PASSWORD_NO_LOWERCASE', 'The password must include at least one lowercase letter');
  }
  if (p.require_uppercase && !/\p{Lu}/u.test(password)) {
    throw new MatrixError(400, 'M_PASSWORD_NO_UPPERCASE', 'The password must include at least one uppercase letter');
  }
}

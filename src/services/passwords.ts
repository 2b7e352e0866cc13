/**
 * Password hashing as Synapse does it: bcrypt over password + pepper
 * (`password_config.pepper`), `bcrypt_rounds` rounds. Synapse's `$2b$`
 * hashes verify as they are, so a database moved over keeps its passwords.
 *
 * bcryptjs (pure JS): native bindings ship per-platform packages that the
 * lockfile cannot pin for every platform here, and at 12 rounds bcryptjs
 * costs ~340 ms against ~290 ms native. Its async API works in slices, so
 * other requests keep being served while a hash is computed.
 */
import bcrypt from 'bcryptjs';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string | null | undefined): Promise<boolean>;
}

export function passwordHasher(rounds: number, pepper: string): PasswordHasher {
  return {
    hash: (password) => bcrypt.hash(password + pepper, rounds),
    verify: async (password, hash) => {
      if (!hash || !/^\$2[abxy]\$\d\d\$/.test(hash)) return false;
      try {
        return await bcrypt.compare(password + pepper, hash);
      } catch {
        return false;
      }
    },
  };
}

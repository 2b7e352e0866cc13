/**
 * Password hashing as Synapse does it: bcrypt over password + pepper
 * (`password_config.pepper`), `bcrypt_rounds` rounds. Synapse's `$2b$`
 * hashes verify as they are, so a database moved over keeps its passwords.
 * Hashing runs on the native thread pool, off the event loop.
 */
import bcrypt from '@node-rs/bcrypt';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string | null | undefined): Promise<boolean>;
}

export function passwordHasher(rounds: number, pepper: string): PasswordHasher {
  return {
    hash: (password) => bcrypt.hash(password + pepper, rounds),
    verify: async (password, hash) => {
      if (!hash || !hash.startsWith('$2')) return false;
      try {
        return await bcrypt.verify(password + pepper, hash);
      } catch {
        return false;
      }
    },
  };
}

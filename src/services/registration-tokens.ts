/**
 * The admin side of registration tokens (what `registration_requires_token`
 * asks for): list, read, create, change and delete them, each write one
 * transaction. How registration uses a token is RegistrationService's.
 */
import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { invalidParam, MatrixError } from '../matrix-error.js';
import {
  deleteRegistrationToken,
  getRegistrationToken,
  insertRegistrationToken,
  listRegistrationTokens,
  type RegistrationTokenRow,
  updateRegistrationToken,
} from '../storage/registration-tokens.js';
import type { Schema } from '../storage/schema.js';

export type { RegistrationTokenRow };

const TOKEN_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-';

function randomToken(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += TOKEN_CHARS[randomInt(TOKEN_CHARS.length)];
  return s;
}

/** A new token: the one chosen, or a random one of `length` characters. */
export interface NewRegistrationToken {
  readonly token?: string;
  readonly length: number;
  readonly usesAllowed: number | null;
  readonly expiryTime: number | null;
}

export interface RegistrationTokenChanges {
  uses_allowed?: number | null;
  expiry_time?: number | null;
}

export class RegistrationTokensService {
  constructor(private readonly db: Kysely<Schema>) {}

  list(valid: boolean | undefined, now = Date.now()): Promise<RegistrationTokenRow[]> {
    return listRegistrationTokens(this.db, { valid, now });
  }

  get(token: string): Promise<RegistrationTokenRow | undefined> {
    return getRegistrationToken(this.db, token);
  }

  /** Creates a token; 400 when the chosen one exists already. */
  async create(t: NewRegistrationToken): Promise<RegistrationTokenRow> {
    const { usesAllowed, expiryTime } = t;
    const row = await this.db.transaction().execute(async (tx) => {
      if (t.token !== undefined) {
        const created = await insertRegistrationToken(tx, { token: t.token, usesAllowed, expiryTime });
        if (!created) throw invalidParam(`Token already exists: ${t.token}`);
        return getRegistrationToken(tx, t.token);
      }
      // A random token can collide only when short; a few tries, as Synapse makes.
      for (let attempt = 0; attempt < 3; attempt++) {
        const token = randomToken(t.length);
        if (await insertRegistrationToken(tx, { token, usesAllowed, expiryTime })) return getRegistrationToken(tx, token);
      }
      throw new MatrixError(500, 'M_UNKNOWN', 'Unable to generate a unique registration token');
    });
    if (!row) throw new MatrixError(500, 'M_UNKNOWN', 'Registration token vanished');
    return row;
  }

  /** Changes the given fields; undefined when there is no such token. */
  update(token: string, changes: RegistrationTokenChanges): Promise<RegistrationTokenRow | undefined> {
    return this.db.transaction().execute((tx) => updateRegistrationToken(tx, token, changes));
  }

  /** Deletes a token; false when there was none. */
  delete(token: string): Promise<boolean> {
    return this.db.transaction().execute((tx) => deleteRegistrationToken(tx, token));
  }
}

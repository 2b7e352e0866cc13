/**
 * Accounts: user id rules, creating users, checking and changing
 * passwords, deactivation. Registration, login and the admin API all go
 * through here, so the rules are the same whichever door a user comes in by.
 */
import type { Kysely, Transaction } from 'kysely';
import type { HomeserverConfig } from '../config/types.js';
import { forbidden, MatrixError } from '../matrix-error.js';
import type { Database } from '../storage/database.js';
import { deleteDeviceRows } from '../storage/devices.js';
import { addPendingDeactivation } from '../storage/memberships.js';
import type { Schema } from '../storage/schema.js';
import { getUser, insertUser, setPasswordHash, type UserRow } from '../storage/users.js';
import type { AuthService } from './auth.js';
import type { PasswordHasher } from './passwords.js';
import type { UiaService } from './uia.js';

type Db = Kysely<Schema> | Transaction<Schema>;

export interface LogoutOptions {
  logoutDevices: boolean;
  /** The token (and device) making the change, which stays signed in. */
  exceptTokenId?: number;
  exceptDeviceId?: string | null;
}

/** Synapse's allowed localpart characters (the spec's historical grammar is wider; new users get these). */
const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;

export class AccountsService {
  constructor(
    private readonly database: Database,
    private readonly config: HomeserverConfig,
    private readonly passwords: PasswordHasher,
    private readonly auth: AuthService,
    uia: UiaService,
  ) {
    uia.registerStage('m.login.password', async (dict, { requester }) => {
      const userId = this.userIdFromIdentifier(dict);
      if (requester && userId !== requester.userId) {
        throw forbidden('Requested user ID does not match the authenticated user');
      }
      const password = dict['password'];
      if (typeof password !== 'string' || !(await this.checkPassword(userId, password))) {
        throw forbidden('Invalid password');
      }
      return userId;
    });
  }

  get serverName(): string {
    return this.config.server_name;
  }

  userId(localpart: string): string {
    return `@${localpart}:${this.config.server_name}`;
  }

  /** Whether a user id belongs to this server. */
  isMine(userId: string): boolean {
    return userId.endsWith(`:${this.config.server_name}`) && userId.startsWith('@');
  }

  /**
   * Checks a requested localpart as Synapse does for new accounts: throws
   * M_INVALID_USERNAME (400) with the reason.
   */
  validateLocalpart(localpart: string, opts: { allowNumeric?: boolean; allowUnderscore?: boolean } = {}): void {
    const bad = (msg: string) => new MatrixError(400, 'M_INVALID_USERNAME', msg);
    if (localpart === '') throw bad('User ID cannot be empty');
    if (!LOCALPART_RE.test(localpart)) throw bad('User ID can only contain characters a-z, 0-9, or \'=_-./+\'');
    if (localpart.startsWith('_') && !opts.allowUnderscore) throw bad('User ID may not begin with _');
    if (/^\d+$/.test(localpart) && !opts.allowNumeric) throw bad('Numeric user IDs are reserved for guest users');
    if (Buffer.byteLength(this.userId(localpart)) > 255) throw bad('User ID may not be longer than 255 characters');
  }

  /**
   * The user id a login/UIA dict names: `identifier` of type m.id.user (a
   * localpart or a full id), or the legacy top-level `user`.
   */
  userIdFromIdentifier(dict: Record<string, unknown>): string {
    let user: unknown;
    const identifier = dict['identifier'];
    if (identifier !== undefined) {
      if (identifier === null || typeof identifier !== 'object' || Array.isArray(identifier)) {
        throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid login submission: identifier must be an object');
      }
      const id = identifier as Record<string, unknown>;
      if (id['type'] !== 'm.id.user') {
        throw new MatrixError(400, 'M_UNKNOWN', `Unknown login identifier type ${String(id['type'])}`);
      }
      user = id['user'];
    } else {
      user = dict['user'];
    }
    if (typeof user !== 'string' || user === '') throw new MatrixError(400, 'M_MISSING_PARAM', 'User identifier is missing user key');
    const lower = user.toLowerCase();
    return lower.startsWith('@') ? (lower.includes(':') ? lower : `${lower}:${this.config.server_name}`) : this.userId(lower);
  }

  async getUser(userId: string, db: Db = this.database.db): Promise<UserRow | undefined> {
    return getUser(db, userId);
  }

  /** True when the user exists, is active, and the password matches its hash. */
  async checkPassword(userId: string, password: string): Promise<boolean> {
    const user = await getUser(this.database.db, userId);
    if (!user || user.deactivated) return false;
    return this.passwords.verify(password, user.password_hash);
  }

  /**
   * Creates a user (profile display name defaults to the localpart, as
   * Synapse does). Returns false when the user id is taken; nothing is written then.
   */
  async createUser(
    db: Db,
    u: { localpart: string; password?: string | null; passwordHash?: string | null; admin?: boolean; isGuest?: boolean; userType?: string | null; displayname?: string | null },
  ): Promise<boolean> {
    const hash = u.passwordHash ?? (u.password ? await this.passwords.hash(u.password) : null);
    return insertUser(db, {
      userId: this.userId(u.localpart),
      localpart: u.localpart,
      passwordHash: hash,
      admin: u.admin,
      isGuest: u.isGuest,
      userType: u.userType,
      displayname: u.displayname ?? u.localpart,
    });
  }

  /**
   * Sets a new password. With `logoutDevices`, every other session of the
   * user ends (all but the token `exceptTokenId`, when given).
   */
  async changePassword(db: Db, userId: string, newPassword: string, opts: LogoutOptions): Promise<void> {
    await this.changePasswordHash(db, userId, await this.passwords.hash(newPassword), opts);
  }

  /** changePassword with a hash made earlier (a UIA session keeps only the hash). */
  async changePasswordHash(db: Db, userId: string, hash: string, opts: LogoutOptions): Promise<void> {
    await setPasswordHash(db, userId, hash);
    if (!opts.logoutDevices) return;
    await this.auth.signOut(db, userId, { exceptTokenId: opts.exceptTokenId });
    // The other devices go too, as Synapse removes them; the caller's own stays.
    await deleteDeviceRows(db, userId, { exceptDeviceId: opts.exceptDeviceId });
  }

  /**
   * Deactivates an account: no password, no sessions, no devices; with
   * `erase`, the profile is cleared too. The user is queued to leave their
   * rooms: once the caller's transaction has committed, it must call
   * `rooms.partDeactivatedUsers()` (a restart finishes it too).
   */
  async deactivate(db: Db, userId: string, opts: { erase: boolean }): Promise<void> {
    // Erasure is never undone by a later deactivation without it.
    await db
      .updateTable('users')
      .set(opts.erase ? { deactivated: true, password_hash: null, erased: true } : { deactivated: true, password_hash: null })
      .where('user_id', '=', userId)
      .execute();
    await this.auth.signOut(db, userId);
    await deleteDeviceRows(db, userId);
    if (opts.erase) await db.updateTable('profiles').set({ displayname: null, avatar_url: null }).where('user_id', '=', userId).execute();
    await addPendingDeactivation(db, userId, Date.now());
    this.auth.forgetUser(userId);
  }
}

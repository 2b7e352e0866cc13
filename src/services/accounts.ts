/**
 * Accounts: user id rules, creating users, checking and changing
 * passwords, deactivation. Registration, login and the admin API all go
 * through here, so the rules are the same whichever door a user comes in by.
 */
import type { HomeserverConfig } from '../config/types.js';
import { forbidden, MatrixError } from '../matrix-error.js';
import type { Database } from '../storage/database.js';
import { deleteAllAccountData } from '../storage/account-data.js';
import { reactivateUser, setAdmin, setLocked, setProfileFields, setUserType } from '../storage/admin-users.js';
import { deleteDeviceRows } from '../storage/devices.js';
import { addPendingDeactivation } from '../storage/memberships.js';
import { getUiaSession, setUiaServerValue } from '../storage/uia.js';
import { getUser, insertUser, setPasswordHash, type UserRow } from '../storage/users.js';
import type { Requester } from './auth.js';
import type { AuthService } from './auth.js';
import type { DeviceListsService } from './e2ee/device-lists.js';
import type { PasswordHasher } from './passwords.js';
import type { RoomService } from './rooms/room-service.js';
import type { Reauthenticator } from './reauth.js';
import { UiaRequired, type UiaRequest, type UiaService } from './uia.js';
import type { Db } from '../storage/db.js';

export interface LogoutOptions {
  logoutDevices: boolean;
  /** The token (and device) making the change, which stays signed in. */
  exceptTokenId?: number;
  exceptDeviceId?: string | null;
}

/** What runs once an account change has committed. */
export interface AccountEffects {
  deviceLists: DeviceListsService;
  rooms: Pick<RoomService, 'partDeactivatedUsers' | 'updateProfileInRooms'>;
  /** UIA for the signed-in user's own password change and deactivation. */
  reauth: Reauthenticator;
}

/** The admin API's create-or-modify (PUT /_synapse/admin/v2/users/<user_id>), parsed; undefined leaves a field as it is. */
export interface UserUpsert {
  userId: string;
  password: string | null;
  logoutDevices: boolean;
  /** The admin's own session, kept when they change their own password. */
  keep: { exceptTokenId?: number; exceptDeviceId?: string | null };
  admin?: boolean;
  deactivated?: boolean;
  locked?: boolean;
  /** Set only when the request names `user_type`; null clears it. */
  userType?: string | null;
  /** The type a new user gets when none is given. */
  defaultUserType: string | null;
  displayname?: string | null;
  avatarUrl?: string | null;
}

/** Where a password given before UIA completed waits, hashed, in the UIA session. */
const SESSION_PASSWORD_HASH = 'password_hash';

/** Synapse's allowed localpart characters (the spec's historical grammar is wider; new users get these). */
const LOCALPART_RE = /^[a-z0-9._=\-/+]+$/;

export class AccountsService {
  constructor(
    private readonly database: Database,
    private readonly config: HomeserverConfig,
    private readonly passwords: PasswordHasher,
    private readonly auth: AuthService,
    uia: UiaService,
    private readonly effects: AccountEffects,
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
    if (!LOCALPART_RE.test(localpart)) throw bad("User ID can only contain characters a-z, 0-9, or '=_-./+'");
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
   * Sets a new password (given, hashed earlier, or kept hashed in a UIA
   * session by keepPendingPassword: M_MISSING_PARAM when it holds none), in
   * one transaction.
   * With `logoutDevices`, every other session and device of the user ends
   * (all but `exceptTokenId` and `exceptDeviceId`, when given), and the
   * device-list change is announced once committed.
   */
  async setPassword(userId: string, secret: { password: string } | { hash: string } | { uiaSession: string }, opts: LogoutOptions): Promise<void> {
    const hash = 'password' in secret ? await this.passwords.hash(secret.password) : 'hash' in secret ? secret.hash : await this.pendingPasswordHash(secret.uiaSession);
    if (!hash) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing params: password');
    await this.database.db.transaction().execute((tx) => this.writePassword(tx, userId, hash, opts));
    this.auth.forgetUser(userId);
    if (opts.logoutDevices) await this.effects.deviceLists.changed([userId]);
  }

  /**
   * POST /account/password: re-authenticates the requester through UIA, then
   * sets the new password. A password given before UIA finished is kept,
   * hashed, with the UIA session, and used when the last request omits it.
   * `request.body` is the whole request body; `new_password` is not part of
   * what UIA keeps of it. The latest request's other parameters win (an
   * empty one falls back to the first); `logout_devices` defaults to true.
   * Returns whether the other sessions were ended.
   */
  async changePasswordAuthenticated(requester: Requester, request: UiaRequest, newPassword: string | undefined): Promise<{ logoutDevices: boolean }> {
    if (!(this.config.password_config.enabled && this.config.password_config.localdb_enabled)) throw forbidden('Password change disabled');
    const { new_password: _omit, ...uiaBody } = request.body ?? {};
    let sessionId: string;
    let params: Record<string, unknown>;
    try {
      const done = await this.effects.reauth.reauthenticate(requester, { ...request, body: uiaBody });
      sessionId = done.sessionId;
      const { auth: _a, ...rest } = uiaBody;
      params = Object.keys(rest).length > 0 ? rest : done.clientdict;
    } catch (err) {
      if (err instanceof UiaRequired && newPassword) await this.keepPendingPassword(err.body.session, newPassword);
      throw err;
    }
    // Without a new password here, the one kept in the UIA session is used.
    const secret = newPassword ? { password: newPassword } : { uiaSession: sessionId };
    const logoutDevices = params['logout_devices'] !== false;
    await this.setPassword(requester.userId, secret, { logoutDevices, exceptTokenId: requester.tokenId, exceptDeviceId: requester.deviceId });
    return { logoutDevices };
  }

  /**
   * POST /account/deactivate: re-authenticates the requester through UIA,
   * then deactivates the account. As Synapse, account data (push rules,
   * ignored users, ...) goes with the account.
   */
  async deactivateAuthenticated(requester: Requester, request: UiaRequest, opts: { erase: boolean }): Promise<void> {
    await this.effects.reauth.reauthenticate(requester, request);
    await this.deactivateAccount(requester.userId, { erase: opts.erase, deleteAccountData: true });
  }

  /** Keeps a new password, hashed, in a UIA session still under way (the first one given stays). */
  async keepPendingPassword(sessionId: string, password: string): Promise<void> {
    const session = await getUiaSession(this.database.db, sessionId);
    if (session && !session.serverdict[SESSION_PASSWORD_HASH]) {
      await setUiaServerValue(this.database.db, sessionId, SESSION_PASSWORD_HASH, await this.passwords.hash(password));
    }
  }

  /** The hash keepPendingPassword kept in a UIA session, if any. */
  private async pendingPasswordHash(sessionId: string): Promise<string | undefined> {
    const h = (await getUiaSession(this.database.db, sessionId))?.serverdict[SESSION_PASSWORD_HASH];
    return typeof h === 'string' ? h : undefined;
  }

  /**
   * Deactivates an account in one transaction (with `deleteAccountData`, its
   * account data goes too), then forgets its tokens, announces its device
   * list change and parts it from its rooms.
   */
  async deactivateAccount(userId: string, opts: { erase: boolean; deleteAccountData?: boolean }): Promise<void> {
    await this.database.db.transaction().execute(async (tx) => {
      await this.deactivate(tx, userId, { erase: opts.erase });
      if (opts.deleteAccountData) await deleteAllAccountData(tx, userId);
    });
    await this.afterDeactivation(userId);
  }

  /** Sets or clears the admin flag; 404 when the user does not exist. */
  async setAdmin(userId: string, admin: boolean): Promise<void> {
    await this.database.db.transaction().execute(async (tx) => {
      if (!(await getUser(tx, userId))) throw new MatrixError(404, 'M_NOT_FOUND', 'User not found');
      await setAdmin(tx, userId, admin);
    });
    this.auth.forgetUser(userId);
  }

  /**
   * The admin API's create-or-modify, in one transaction: creates the user
   * when missing (modifying it instead when it appeared meanwhile),
   * otherwise changes what the request names. Then forgets the user's
   * tokens, announces a device-list change when devices went, parts a
   * deactivated user and updates a changed profile in rooms. Returns
   * whether the user was created.
   */
  async upsertUser(u: UserUpsert): Promise<{ created: boolean }> {
    const { userId } = u;
    const localpart = userId.slice(1, userId.indexOf(':'));
    const hash = u.password !== null ? await this.passwords.hash(u.password) : null;
    const result = await this.database.db.transaction().execute(async (tx) => {
      let user = await getUser(tx, userId);
      if (!user) {
        this.validateLocalpart(localpart, { allowNumeric: true, allowUnderscore: true });
        const created = await this.createUser(tx, {
          localpart,
          // An empty password, as createUser treats it, sets none.
          passwordHash: u.password ? hash : null,
          admin: u.admin ?? false,
          userType: u.userType ?? u.defaultUserType,
          displayname: u.displayname ?? null,
        });
        if (created) {
          // createUser defaults the display name to the localpart; an explicit "" clears it.
          await setProfileFields(tx, userId, {
            ...(u.displayname === null ? { displayname: null } : {}),
            ...(u.avatarUrl !== undefined ? { avatar_url: u.avatarUrl } : {}),
          });
          return { created: true };
        }
        // Someone else created it a moment ago: modify that user instead.
        user = await getUser(tx, userId);
        if (!user) throw new MatrixError(500, 'M_UNKNOWN', 'User could not be created');
      }

      await setProfileFields(tx, userId, {
        ...(u.displayname !== undefined ? { displayname: u.displayname } : {}),
        ...(u.avatarUrl !== undefined ? { avatar_url: u.avatarUrl } : {}),
      });
      if (u.admin !== undefined && u.admin !== user.admin) await setAdmin(tx, userId, u.admin);
      if (hash !== null) await this.writePassword(tx, userId, hash, { logoutDevices: u.logoutDevices, ...u.keep });
      if (u.deactivated === true && !user.deactivated) await this.deactivate(tx, userId, { erase: user.erased });
      else if (u.deactivated === false && user.deactivated) await reactivateUser(tx, userId);
      if (u.locked !== undefined && u.locked !== user.locked) await setLocked(tx, userId, u.locked);
      if (u.userType !== undefined) await setUserType(tx, userId, u.userType);
      return { created: false };
    });
    this.auth.forgetUser(userId);
    // Devices went only with a password change that logs out, or a deactivation.
    if (!result.created && ((hash !== null && u.logoutDevices) || u.deactivated === true)) await this.effects.deviceLists.changed([userId]);
    await this.effects.rooms.partDeactivatedUsers();
    if (!result.created && u.deactivated !== true && (u.displayname !== undefined || u.avatarUrl !== undefined)) {
      await this.effects.rooms.updateProfileInRooms(userId);
    }
    return result;
  }

  private async afterDeactivation(userId: string): Promise<void> {
    this.auth.forgetUser(userId);
    await this.effects.deviceLists.changed([userId]);
    await this.effects.rooms.partDeactivatedUsers();
  }

  /** The new password hash, and with `logoutDevices` the end of every other session and device; in the caller's transaction. */
  private async writePassword(db: Db, userId: string, hash: string, opts: LogoutOptions): Promise<void> {
    await setPasswordHash(db, userId, hash);
    if (!opts.logoutDevices) return;
    await this.auth.signOut(db, userId, { exceptTokenId: opts.exceptTokenId });
    // The other devices go too, as Synapse removes them; the caller's own stays.
    await deleteDeviceRows(db, userId, { exceptDeviceId: opts.exceptDeviceId });
  }

  /**
   * The writes of a deactivation only, in the caller's transaction: no
   * password, no sessions, no devices; with `erase`, the profile is cleared
   * too. The user is queued (users_pending_deactivation) to leave their
   * rooms; a restart parts them. Handlers use deactivateAccount, which also
   * runs the effects after the commit.
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

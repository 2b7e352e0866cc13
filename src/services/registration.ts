/**
 * Registration: `POST /register` (user-interactive auth, usernames,
 * passwords, guests), registration tokens (the `m.login.registration_token`
 * stage and its use counting), username availability, and shared-secret
 * registration (`/_synapse/admin/v1/register`, what register_new_matrix_user
 * calls). Every account is created in one transaction: user, profile,
 * device, tokens and the registration token's use together, or nothing.
 *
 * Registration tokens, as Synapse counts them:
 * - passing the stage takes one use of the token for the UIA session
 *   (`pending` + 1), once per session however often the stage is repeated;
 * - registering moves that use from `pending` to `completed`;
 * - a session that never registers keeps its use until the session expires
 *   (UIA sessions live two days) or is deleted; then the use is given back.
 *   The give-back is a sweep, run at most once a minute on registration
 *   traffic, that releases every held use whose session is gone or older
 *   than the UIA lifetime (see storage/registration-token-use.ts).
 * Each step locks the token's row (SELECT … FOR UPDATE) in its transaction,
 * so two sessions racing for a token's last use cannot both get it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { HomeserverConfig } from '../config/types.js';
import { forbidden, invalidParam, MatrixError } from '../matrix-error.js';
import type { Database } from '../storage/database.js';
import { nextGeneratedLocalpart, skipTakenGeneratedLocalparts } from '../storage/generated-user-ids.js';
import {
  completeHeldTokenUse,
  countCompletedUse,
  heldTokenOf,
  holdTokenUse,
  lockRegistrationToken,
  readTokenCounters,
  releaseAbandonedTokenUses,
  type TokenCounters,
} from '../storage/registration-token-use.js';
import type { Schema } from '../storage/schema.js';
import { getUiaSession, setUiaServerValue } from '../storage/uia.js';
import type { Kysely } from 'kysely';
import type { AccountsService } from './accounts.js';
import type { AuthService } from './auth.js';
import { checkPasswordPolicy } from './password-policy.js';
import { sharedSecretMac } from './shared-secret-mac.js';
import type { PasswordHasher } from './passwords.js';
import type { RateLimiter } from './rate-limit.js';
import { UIA_SESSION_LIFETIME_MS, UiaRequired, type UiaService } from './uia.js';
import { withSubsystemLogger } from '../logger.js';
import type { Db, Tx } from '../storage/db.js';
import { isJsonObject } from '../core/json-values.js';

export const REGISTRATION_TOKEN_STAGE = 'm.login.registration_token';

/** Synapse forgets a shared-secret nonce after 60 seconds. */
export const NONCE_LIFETIME_MS = 60_000;
/** How often held registration-token uses of dead sessions are looked for. */
const SWEEP_INTERVAL_MS = 60_000;
/** Synapse's built-in user types; `user_types.extra_user_types` adds more. */
const BUILTIN_USER_TYPES = ['support', 'bot'];
/** Synapse gives up generating a numeric localpart after this many collisions. */
const MAX_GENERATE_ATTEMPTS = 10;

type Json = Record<string, unknown>;

/** What registration needs from the server; an AppContext fits. */
export interface RegistrationDeps {
  readonly config: HomeserverConfig;
  readonly database: Database;
  readonly logger: Logger;
  readonly services: {
    readonly accounts: AccountsService;
    readonly auth: AuthService;
    readonly uia: UiaService;
    readonly passwords: PasswordHasher;
    readonly rateLimiter: RateLimiter;
  };
}

export interface RegisterRequest {
  body: Json;
  /** `kind` from the query string (default `user`). */
  kind: string;
  ip: string;
  /** The request path without query; UIA sessions are bound to it. */
  uri: string;
  method: string;
  /** Whether the request carried an access token. */
  hasAccessToken: boolean;
}

/** The /register response (also shared-secret registration's). */
export interface RegistrationResult {
  user_id: string;
  home_server: string;
  access_token?: string;
  device_id?: string;
  refresh_token?: string;
  expires_in_ms?: number;
}

/** Valid: exists, not expired, and uses left (`uses_allowed` null is unlimited). */
export function tokenUsable(t: TokenCounters | undefined, now: number): boolean {
  if (!t) return false;
  if (t.expiry_time !== null && t.expiry_time <= now) return false;
  if (t.uses_allowed !== null && t.pending + t.completed >= t.uses_allowed) return false;
  return true;
}

/** Python's truthiness, which Synapse applies to `admin` and `inhibit_login`. */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

export class RegistrationService {
  private readonly nonces = new Map<string, number>();
  private lastSweep = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly config: HomeserverConfig;
  private readonly db: Kysely<Schema>;

  constructor(private readonly deps: RegistrationDeps) {
    this.deps = withSubsystemLogger(deps, 'axon.auth');
    this.config = deps.config;
    this.db = deps.database.db;
    deps.services.uia.registerStage(REGISTRATION_TOKEN_STAGE, (auth, { session }) => this.checkTokenStage(auth, session.session_id));
  }

  // ---------------------------------------------------------------------
  // Configuration read from `raw` (keys the typed config does not carry).

  private rawBool(key: string, def: boolean): boolean {
    const v = this.config.raw[key];
    return typeof v === 'boolean' ? v : def;
  }

  private get inhibitUserInUseError(): boolean {
    return this.rawBool('inhibit_user_in_use_error', false);
  }

  private get allowUnderscore(): boolean {
    return this.rawBool('allow_underscore_prefixed_localpart', false);
  }

  /** Refresh tokens are off when `refreshable_access_token_lifetime` is explicitly null, as in Synapse. */
  private get refreshTokensEnabled(): boolean {
    const raw = this.config.raw;
    return !(Object.hasOwn(raw, 'refreshable_access_token_lifetime') && raw['refreshable_access_token_lifetime'] === null);
  }

  private get userTypesConfig(): { extra: string[]; defaultType: string | null } {
    const ut = this.config.raw['user_types'];
    if (!isJsonObject(ut)) return { extra: [], defaultType: null };
    const extra = Array.isArray(ut['extra_user_types']) ? ut['extra_user_types'].filter((x): x is string => typeof x === 'string') : [];
    const def = typeof ut['default_user_type'] === 'string' ? ut['default_user_type'] : null;
    return { extra, defaultType: def };
  }

  /** The flows /register offers, as Synapse computes them without email or phone verification. */
  flows(): string[][] {
    // Synapse puts the token stage in front of every flow; the dummy stage
    // stays, so no flow is a prefix of another.
    if (this.config.registration_requires_token) return [[REGISTRATION_TOKEN_STAGE, 'm.login.dummy']];
    return [['m.login.dummy']];
  }

  // ---------------------------------------------------------------------
  // Usernames.

  /**
   * Synapse's check_username: grammar (M_INVALID_USERNAME), then whether
   * the id is taken (M_USER_IN_USE), then numeric ids (reserved for guests).
   */
  async checkUsername(localpart: string, opts: { assignedUserId?: string; inhibitUserInUse?: boolean } = {}): Promise<void> {
    const { accounts } = this.deps.services;
    accounts.validateLocalpart(localpart, { allowNumeric: true, allowUnderscore: this.allowUnderscore });
    const userId = accounts.userId(localpart);
    if (opts.assignedUserId !== undefined) {
      if (userId === opts.assignedUserId) return;
      throw new MatrixError(400, 'M_UNKNOWN', 'A different user ID has already been registered for this session');
    }
    if (!opts.inhibitUserInUse && (await accounts.getUser(userId))) {
      throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');
    }
    if (/^\d+$/.test(localpart)) throw new MatrixError(400, 'M_INVALID_USERNAME', 'Numeric user IDs are reserved for guest users.');
  }

  /** GET /register/available. */
  async usernameAvailable(username: string | undefined): Promise<{ available: true }> {
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    if (this.inhibitUserInUseError) return { available: true };
    if (username === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', "Missing string query parameter 'username'");
    await this.checkUsername(username);
    return { available: true };
  }

  // ---------------------------------------------------------------------
  // Registration tokens.

  /** GET /v1/register/m.login.registration_token/validity. */
  async tokenValidity(token: string | undefined, ip: string, now = Date.now()): Promise<{ valid: boolean }> {
    this.deps.services.rateLimiter.check(`registration_token_validity:${ip}`, this.config.rc_registration_token_validity);
    if (!this.config.enable_registration) throw forbidden('Registration has been disabled');
    if (token === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', "Missing string query parameter 'token'");
    await this.maybeReleaseAbandonedTokenUses(now);
    return { valid: tokenUsable(await readTokenCounters(this.db, token), now) };
  }

  /** The `m.login.registration_token` UIA stage: takes one use of the token for the session. */
  private async checkTokenStage(auth: Json, sessionId: string): Promise<string> {
    if (!('token' in auth)) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing registration token');
    const token = auth['token'];
    if (typeof token !== 'string') throw new MatrixError(400, 'M_INVALID_PARAM', 'Registration token must be a string');
    const now = Date.now();
    await this.maybeReleaseAbandonedTokenUses(now);
    return this.db.transaction().execute(async (tx) => {
      const row = await lockRegistrationToken(tx, token);
      const held = await heldTokenOf(tx, sessionId);
      if (held !== undefined) {
        // The stage again in the same session: no second use.
        if (held !== token) throw new MatrixError(400, 'M_INVALID_PARAM', 'Registration token has changed');
        return token;
      }
      if (!tokenUsable(row, now)) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid registration token');
      await holdTokenUse(tx, sessionId, token, now);
      return token;
    });
  }

  /**
   * Gives back the token uses held by UIA sessions that expired or were
   * deleted without registering. Returns how many were given back.
   */
  async releaseAbandonedTokenUses(now = Date.now()): Promise<number> {
    this.lastSweep = now;
    return this.db.transaction().execute((tx) => releaseAbandonedTokenUses(tx, now - UIA_SESSION_LIFETIME_MS));
  }

  /**
   * Also sweeps on a timer (hourly, not holding the process open), so
   * `pending` as the admin API shows it is right even without registration
   * traffic. Idempotent; `stopSweeping` ends it.
   */
  startSweeping(intervalMs = 3600_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.maybeReleaseAbandonedTokenUses(Date.now()), intervalMs);
    this.timer.unref();
  }

  stopSweeping(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async maybeReleaseAbandonedTokenUses(now: number): Promise<void> {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    try {
      await this.releaseAbandonedTokenUses(now);
    } catch (err) {
      // Never fail a request over housekeeping; the next sweep retries.
      this.deps.logger.warn({ err }, 'could not release abandoned registration token uses');
    }
  }

  /**
   * In the registration transaction: the session's held token use becomes
   * a completed one. A use that is no longer held (released by a sweep
   * racing this registration) is taken afresh if the token still allows it.
   */
  private async completeTokenUse(tx: Tx, sessionId: string, stageResult: unknown, now: number): Promise<void> {
    const held = await heldTokenOf(tx, sessionId);
    const token = held ?? (typeof stageResult === 'string' ? stageResult : undefined);
    if (token === undefined) return;
    const row = await lockRegistrationToken(tx, token);
    if (!row) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid registration token');
    if ((await completeHeldTokenUse(tx, sessionId)) !== undefined) return;
    if (!tokenUsable(row, now)) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Invalid registration token');
    await countCompletedUse(tx, token);
  }

  // ---------------------------------------------------------------------
  // POST /register.

  async register(req: RegisterRequest): Promise<RegistrationResult> {
    const { config } = this;
    const { rateLimiter, uia, passwords } = this.deps.services;
    const body = req.body;
    const rateKey = `registration:${req.ip}`;
    rateLimiter.check(rateKey, config.rc_registration, { update: false });

    if (req.kind === 'guest') return this.registerGuest(body, req.ip);
    if (req.kind !== 'user') throw new MatrixError(400, 'M_UNRECOGNIZED', `Do not understand membership kind: ${req.kind}`);

    // The route's schema has checked the fields' types.
    const refreshRequested = (body['refresh_token'] as boolean | undefined) ?? false;

    let username: string | undefined;
    if ('username' in body) {
      const u = body['username'] as string;
      if (u.length > 512) throw new MatrixError(400, 'M_INVALID_USERNAME', 'Invalid username');
      username = u.toLowerCase();
    }

    if (body['type'] === 'm.login.application_service') {
      // Application services are not supported yet: no token can be one's.
      if (!req.hasAccessToken) {
        throw new MatrixError(400, 'M_MISSING_TOKEN', 'Appservice token must be provided when using a type of m.login.application_service');
      }
      throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Invalid application service token');
    }
    if (req.hasAccessToken) {
      throw new MatrixError(400, 'M_UNKNOWN', 'An access token should not be provided on requests to /register (except if type is m.login.application_service)');
    }
    if (!config.enable_registration) throw forbidden('Registration has been disabled');

    let password: string | undefined;
    if (body['password'] !== undefined && body['password'] !== null) {
      const p = body['password'] as string;
      if (p.length > 512) throw invalidParam('Invalid password');
      checkPasswordPolicy(config.password_config.policy, p);
      password = p;
    }

    // What the session already knows: a user registered by it, the password's hash.
    const auth = body['auth'];
    const sid = isJsonObject(auth) && typeof auth['session'] === 'string' && auth['session'] !== '' ? auth['session'] : undefined;
    const known = sid !== undefined ? await getUiaSession(this.db, sid) : undefined;
    const registeredUserId = typeof known?.serverdict['registered_user_id'] === 'string' ? known.serverdict['registered_user_id'] : undefined;
    const storedHash = typeof known?.serverdict['password_hash'] === 'string' ? known.serverdict['password_hash'] : undefined;

    // Tell clients early that the name is taken or bad, before any stage.
    if (username !== undefined) {
      await this.checkUsername(username, { assignedUserId: registeredUserId, inhibitUserInUse: this.inhibitUserInUseError });
    }

    // The password never goes into the session as is: only its hash does.
    const { password: _pw, ...uiaBody } = body;
    let result;
    try {
      result = await uia.authenticate({ uri: req.uri, method: req.method, body: uiaBody, description: 'register a new account' }, this.flows());
    } catch (err) {
      if (err instanceof UiaRequired && password !== undefined && storedHash === undefined) {
        await setUiaServerValue(this.db, err.body.session, 'password_hash', await passwords.hash(password));
      }
      throw err;
    }

    // This request's parameters, or those the session was opened with.
    const { auth: _auth, ...own } = uiaBody;
    const params: Json = Object.keys(own).length > 0 ? own : result.clientdict;
    const now = Date.now();
    const refreshable = refreshRequested && this.refreshTokensEnabled;

    if (registeredUserId !== undefined) {
      // This session registered already (the client lost the answer): log in again.
      this.deps.logger.info({ user_id: registeredUserId }, 'user already registered by this UIA session');
      return this.db.transaction().execute((tx) => this.registrationDetails(tx, registeredUserId, params, refreshable, now));
    }

    const passwordHash = password !== undefined ? await passwords.hash(password) : storedHash;
    if (passwordHash === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing params: password');

    let localpart: string | undefined;
    if (params['username'] !== undefined) {
      if (typeof params['username'] !== 'string') throw new MatrixError(400, 'M_INVALID_USERNAME', 'Invalid username');
      localpart = params['username'].toLowerCase();
      await this.checkUsername(localpart);
    }
    const deviceFields = this.deviceFields(params);

    rateLimiter.check(rateKey, config.rc_registration);
    const out = await this.db.transaction().execute(async (tx) => {
      await this.completeTokenUse(tx, result.sessionId, result.completed[REGISTRATION_TOKEN_STAGE], now);
      const userId = await this.insertAccount(tx, {
        localpart,
        passwordHash,
        userType: this.userTypesConfig.defaultType,
      });
      await setUiaServerValue(tx, result.sessionId, 'registered_user_id', userId);
      return this.registrationDetails(tx, userId, deviceFields, refreshable, now);
    });
    this.deps.logger.info({ user_id: out.user_id }, 'registered user');
    return out;
  }

  /** Checks the device parameters of a registration (their types are the route schema's, on the request that gave them). */
  private deviceFields(params: Json): Json {
    const deviceId = params['device_id'] as string | null | undefined;
    if (deviceId !== undefined && deviceId !== null && (deviceId === '' || deviceId.length > 512)) {
      throw invalidParam('device_id must be a non-empty string');
    }
    return params;
  }

  /** `kind=guest`: a numeric localpart, no password, allowed only with allow_guest_access. */
  private async registerGuest(body: Json, ip: string): Promise<RegistrationResult> {
    if (!this.config.allow_guest_access) throw new MatrixError(403, 'M_GUEST_ACCESS_FORBIDDEN', 'Guest access is disabled');
    const name = body['initial_device_display_name'];
    this.deps.services.rateLimiter.check(`registration:${ip}`, this.config.rc_registration);
    const out = await this.db.transaction().execute(async (tx) => {
      const userId = await this.insertAccount(tx, { isGuest: true, passwordHash: null, userType: null });
      // The spec: for guests the server picks the device id, whatever was asked.
      const session = await this.deps.services.auth.createSession(tx, { userId, displayName: typeof name === 'string' ? name : null });
      const r: RegistrationResult = { user_id: userId, home_server: this.config.server_name, access_token: session.access_token, device_id: session.device_id };
      return r;
    });
    this.deps.logger.info({ user_id: out.user_id }, 'registered guest');
    return out;
  }

  /**
   * Inserts the user and profile: with the given localpart (taken is
   * M_USER_IN_USE), or a generated numeric one (display name = localpart).
   */
  private async insertAccount(
    tx: Tx,
    a: { localpart?: string; passwordHash: string | null; admin?: boolean; isGuest?: boolean; userType: string | null; displayname?: string | null },
  ): Promise<string> {
    const { accounts } = this.deps.services;
    if (a.localpart !== undefined) {
      const created = await accounts.createUser(tx, {
        localpart: a.localpart,
        passwordHash: a.passwordHash,
        admin: a.admin ?? false,
        userType: a.userType,
        displayname: a.displayname ?? a.localpart,
      });
      if (!created) throw new MatrixError(400, 'M_USER_IN_USE', 'User ID already taken.');
      return accounts.userId(a.localpart);
    }
    for (let attempt = 0; attempt <= MAX_GENERATE_ATTEMPTS; attempt++) {
      const localpart = await nextGeneratedLocalpart(tx);
      const created = await accounts.createUser(tx, {
        localpart,
        passwordHash: a.passwordHash,
        isGuest: a.isGuest ?? false,
        userType: a.userType,
        displayname: localpart,
      });
      if (created) return accounts.userId(localpart);
      await skipTakenGeneratedLocalparts(tx);
    }
    throw new MatrixError(500, 'M_UNKNOWN', 'Unable to find a suitable user ID');
  }

  /** The response of a registration: a new device and tokens unless `inhibit_login`. */
  private async registrationDetails(db: Db, userId: string, params: Json, refreshable: boolean, now: number): Promise<RegistrationResult> {
    const out: RegistrationResult = { user_id: userId, home_server: this.config.server_name };
    if (truthy(params['inhibit_login'])) return out;
    const deviceId = typeof params['device_id'] === 'string' && params['device_id'] !== '' ? params['device_id'] : null;
    const name = typeof params['initial_device_display_name'] === 'string' ? params['initial_device_display_name'] : null;
    const s = await this.deps.services.auth.createSession(db, { userId, deviceId, displayName: name, refreshable, now });
    out.access_token = s.access_token;
    out.device_id = s.device_id;
    if (s.refresh_token !== undefined) out.refresh_token = s.refresh_token;
    if (s.expires_in_ms !== undefined) out.expires_in_ms = s.expires_in_ms;
    return out;
  }

  // ---------------------------------------------------------------------
  // Shared-secret registration (/_synapse/admin/v1/register).

  private clearOldNonces(now: number): void {
    for (const [nonce, at] of this.nonces) if (now - at > NONCE_LIFETIME_MS) this.nonces.delete(nonce);
  }

  /** GET: a fresh single-use nonce. */
  newNonce(now = Date.now()): { nonce: string } {
    this.clearOldNonces(now);
    const nonce = randomBytes(64).toString('hex');
    this.nonces.set(nonce, now);
    return { nonce };
  }

  /** POST: checks nonce and HMAC as Synapse does, then registers. Works with enable_registration off. */
  async sharedSecretRegister(body: Json, now = Date.now()): Promise<RegistrationResult> {
    this.clearOldNonces(now);
    const secret = this.config.registration_shared_secret;
    if (!secret) throw new MatrixError(400, 'M_UNKNOWN', 'Shared secret registration is not enabled');

    if (!('nonce' in body)) throw new MatrixError(400, 'M_BAD_JSON', 'nonce must be specified');
    const nonce = body['nonce'];
    if (typeof nonce !== 'string' || !this.nonces.has(nonce)) throw new MatrixError(400, 'M_UNKNOWN', 'unrecognised nonce');
    // Gone now, even if the rest of the request is bad.
    this.nonces.delete(nonce);

    if (!('username' in body)) throw new MatrixError(400, 'M_BAD_JSON', 'username must be specified');
    const username = body['username'];
    if (typeof username !== 'string' || username.length > 512 || username.includes('\u0000')) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Invalid username');
    }
    if (!('password' in body)) throw new MatrixError(400, 'M_BAD_JSON', 'password must be specified');
    const password = body['password'];
    if (typeof password !== 'string' || password.length > 512 || password.includes('\u0000')) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Invalid password');
    }

    const admin = truthy(body['admin']);
    const userType = body['user_type'] ?? null;
    if (userType !== null && (typeof userType !== 'string' || ![...BUILTIN_USER_TYPES, ...this.userTypesConfig.extra].includes(userType))) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Invalid user type');
    }
    const displayname = body['displayname'] ?? null;
    if (displayname !== null && typeof displayname !== 'string') throw invalidParam('displayname must be a string');

    if (!('mac' in body)) throw new MatrixError(400, 'M_BAD_JSON', 'mac must be specified');
    const mac = body['mac'];
    const want = sharedSecretMac(secret, { nonce, username, password, admin, userType });
    if (typeof mac !== 'string' || !constantTimeEqual(mac, want)) {
      this.deps.logger.info({ username }, 'shared-secret registration: HMAC incorrect');
      throw new MatrixError(403, 'M_UNKNOWN', 'HMAC incorrect');
    }

    const refresh = body['refresh_token'] ?? false;
    if (typeof refresh !== 'boolean') throw new MatrixError(400, 'M_UNKNOWN', 'refresh_token must be a boolean');

    const localpart = username.toLowerCase();
    await this.checkUsername(localpart);
    const deviceFields = this.deviceFields(body);
    const passwordHash = await this.deps.services.passwords.hash(password);
    const out = await this.db.transaction().execute(async (tx) => {
      const userId = await this.insertAccount(tx, {
        localpart,
        passwordHash,
        admin,
        userType: userType ?? this.userTypesConfig.defaultType,
        displayname: displayname ?? localpart,
      });
      return this.registrationDetails(tx, userId, deviceFields, refresh && this.refreshTokensEnabled, now);
    });
    this.deps.logger.info({ user_id: out.user_id, admin }, 'registered user with the shared secret');
    return out;
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  // Compare against itself when the lengths differ, so timing does not tell the length apart either.
  if (x.length !== y.length) {
    timingSafeEqual(y, y);
    return false;
  }
  return timingSafeEqual(x, y);
}

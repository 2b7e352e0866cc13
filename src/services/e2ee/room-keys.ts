/**
 * Server-side key backup (/room_keys): versions and the encrypted session
 * keys stored in them. The server never reads the keys; it keeps, per
 * session, the better of two uploads by the spec's rule, and tells clients
 * through `etag` and `count` whether the backup changed.
 *
 * - Versions are numbered per user from 1 and never reused; the current
 *   version is the newest one not deleted. Keys may only be written to the
 *   current version (403 M_WRONG_ROOM_KEYS_VERSION with `current_version`
 *   for an older one that still exists, 404 M_NOT_FOUND for one that does
 *   not); any existing version may be read and have keys deleted.
 * - A version number that is not a decimal integer names no version (404),
 *   as in Synapse.
 * - `etag` goes up by one with every request that changed the version's
 *   keys (an upload that kept every stored key, or a delete that found
 *   nothing, leaves it as it is); updating `auth_data` does not change it.
 */
import type { Kysely } from 'kysely';
import { MatrixError } from '../../matrix-error.js';
import {
  type BackedUpKey,
  type BackupVersionRow,
  bumpBackupEtag,
  countBackupKeys,
  createBackupVersion,
  deleteBackupKeys,
  deleteBackupVersion,
  getBackupKeys,
  getBackupVersion,
  lockUserBackups,
  updateBackupAuthData,
  upsertBackupKeys,
} from '../../storage/room-keys.js';
import type { Schema } from '../../storage/schema.js';
import { containsNul, isJsonObject } from '../../core/json-values.js';

type Json = Record<string, unknown>;

/** Integers a key's first_message_index and forwarded_count may take (the columns are 32-bit). */
const MAX_INT = 2 ** 31 - 1;
const MAX_ID_BYTES = 255;

const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
const unknownVersion = () => new MatrixError(404, 'M_NOT_FOUND', 'Unknown backup version');

/** The session data a client sends for one session (KeyBackupData), checked. */
export type KeyBackupData = Omit<BackedUpKey, 'room_id' | 'session_id'>;

/** Where in the backup a request reads, writes or deletes. */
export interface KeyScope {
  roomId?: string;
  sessionId?: string;
}

function checkId(id: string, what: string): void {
  if (id.includes('\u0000')) throw new MatrixError(400, 'M_INVALID_PARAM', `${what} may not contain U+0000`);
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new MatrixError(400, 'M_INVALID_PARAM', `${what} may not be longer than ${MAX_ID_BYTES} bytes`);
}

/** Checks a room id or session id from a path. */
export function checkScope(scope: KeyScope): void {
  if (scope.roomId !== undefined) checkId(scope.roomId, 'Room ID');
  if (scope.sessionId !== undefined) checkId(scope.sessionId, 'Session ID');
}

function count(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badJson(`${field} must be an integer`);
  if (v < 0 || v > MAX_INT) throw badJson(`${field} must be between 0 and ${MAX_INT}`);
  return v;
}

/** One session's key data (first_message_index, forwarded_count, is_verified, session_data). */
export function parseKeyBackupData(v: unknown, where: string): KeyBackupData {
  if (!isJsonObject(v)) throw badJson(`${where} must be an object`);
  const isVerified = v['is_verified'];
  if (typeof isVerified !== 'boolean') throw badJson(`${where}.is_verified must be true or false`);
  const sessionData = v['session_data'];
  if (!isJsonObject(sessionData)) throw badJson(`${where}.session_data must be an object`);
  if (containsNul(sessionData)) throw badJson(`${where}.session_data may not contain U+0000`);
  return {
    first_message_index: count(v['first_message_index'], `${where}.first_message_index`),
    forwarded_count: count(v['forwarded_count'], `${where}.forwarded_count`),
    is_verified: isVerified,
    session_data: sessionData,
  };
}

function parseSessions(v: unknown, roomId: string, where: string): BackedUpKey[] {
  if (!isJsonObject(v)) throw badJson(`${where} must be an object`);
  const sessions = v['sessions'];
  if (sessions === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', `Missing params: ${where === 'body' ? '' : `${where}.`}sessions`);
  if (!isJsonObject(sessions)) throw badJson(`${where}.sessions must be an object`);
  return Object.entries(sessions).map(([sessionId, data]) => {
    checkId(sessionId, 'Session ID');
    return { room_id: roomId, session_id: sessionId, ...parseKeyBackupData(data, `sessions.${sessionId.slice(0, 100)}`) };
  });
}

/**
 * The keys of an upload body, by the scope of its path: `{rooms: {roomId:
 * {sessions: {...}}}}`, `{sessions: {...}}` for one room, or one
 * session's KeyBackupData.
 */
export function parseKeysUpload(body: Json, scope: KeyScope): BackedUpKey[] {
  checkScope(scope);
  if (scope.roomId !== undefined && scope.sessionId !== undefined) {
    return [{ room_id: scope.roomId, session_id: scope.sessionId, ...parseKeyBackupData(body, 'body') }];
  }
  if (scope.roomId !== undefined) return parseSessions(body, scope.roomId, 'body');
  const rooms = body['rooms'];
  if (rooms === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing params: rooms');
  if (!isJsonObject(rooms)) throw badJson('rooms must be an object');
  return Object.entries(rooms).flatMap(([roomId, room]) => {
    checkId(roomId, 'Room ID');
    return parseSessions(room, roomId, `rooms.${roomId.slice(0, 100)}`);
  });
}

/**
 * The `algorithm` and `auth_data` of a version body, whose types the
 * route's schema has checked (a non-empty string, an object).
 */
export function parseVersionBody(body: Json): { algorithm: string; authData: Json } {
  const algorithm = body['algorithm'] as string;
  const authData = body['auth_data'] as Json;
  if (algorithm.includes('\u0000') || Buffer.byteLength(algorithm) > MAX_ID_BYTES) throw badJson(`algorithm must be at most ${MAX_ID_BYTES} bytes, without U+0000`);
  if (containsNul(authData)) throw badJson('auth_data may not contain U+0000');
  return { algorithm, authData };
}

/** A version number from a path or query: a decimal integer, or undefined when it cannot name a version. */
export function parseVersion(v: string): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

function versionJson(v: BackupVersionRow, count: number): Json {
  return { algorithm: v.algorithm, auth_data: v.auth_data, count, etag: String(v.etag), version: String(v.version) };
}

export class RoomKeysService {
  constructor(private readonly db: Kysely<Schema>) {}

  /** POST /room_keys/version: a new version, which becomes the current one. */
  async createVersion(userId: string, body: Json): Promise<string> {
    const { algorithm, authData } = parseVersionBody(body);
    const version = await this.db.transaction().execute(async (tx) => {
      await lockUserBackups(tx, userId);
      return createBackupVersion(tx, userId, algorithm, authData);
    });
    return String(version);
  }

  /** GET /room_keys/version[/{version}]: the version's description, or 404. */
  async versionInfo(userId: string, version?: string): Promise<Json> {
    const n = version === undefined ? undefined : parseVersion(version);
    if (version !== undefined && n === undefined) throw unknownVersion();
    const v = await getBackupVersion(this.db, userId, n);
    if (!v) throw version === undefined ? new MatrixError(404, 'M_NOT_FOUND', 'No current backup version') : unknownVersion();
    return versionJson(v, await countBackupKeys(this.db, userId, v.version));
  }

  /** PUT /room_keys/version/{version}: new auth_data; the algorithm (and `version`, when given) must match. */
  async updateVersion(userId: string, version: string, body: Json): Promise<void> {
    const { algorithm, authData } = parseVersionBody(body);
    const bodyVersion = body['version'];
    if (bodyVersion !== undefined && bodyVersion !== version) throw new MatrixError(400, 'M_INVALID_PARAM', 'Version in body does not match');
    const n = parseVersion(version);
    if (n === undefined) throw unknownVersion();
    await this.db.transaction().execute(async (tx) => {
      await lockUserBackups(tx, userId);
      const v = await getBackupVersion(tx, userId, n);
      if (!v) throw unknownVersion();
      if (v.algorithm !== algorithm) throw new MatrixError(400, 'M_INVALID_PARAM', 'Algorithm does not match');
      await updateBackupAuthData(tx, userId, n, authData);
    });
  }

  /** DELETE /room_keys/version/{version}: the version and its keys go; deleting it again succeeds. */
  async deleteVersion(userId: string, version: string): Promise<void> {
    const n = parseVersion(version);
    if (n === undefined) throw unknownVersion();
    await this.db.transaction().execute(async (tx) => {
      await lockUserBackups(tx, userId);
      if (!(await deleteBackupVersion(tx, userId, n))) throw unknownVersion();
    });
  }

  /** PUT /room_keys/keys[/{roomId}[/{sessionId}]]?version=: stores keys in the current version. */
  async uploadKeys(userId: string, version: string | undefined, scope: KeyScope, body: Json): Promise<{ etag: string; count: number }> {
    const keys = parseKeysUpload(body, scope);
    const n = requireVersion(version);
    return this.db.transaction().execute(async (tx) => {
      await lockUserBackups(tx, userId);
      const current = await getBackupVersion(tx, userId);
      if (!current || n === undefined) throw unknownVersion();
      if (current.version !== n) {
        if (await getBackupVersion(tx, userId, n)) {
          throw new MatrixError(403, 'M_WRONG_ROOM_KEYS_VERSION', 'Wrong backup version.', { current_version: String(current.version) });
        }
        throw unknownVersion();
      }
      const changed = await upsertBackupKeys(tx, userId, n, keys);
      const etag = changed > 0 ? await bumpBackupEtag(tx, userId, n) : current.etag;
      return { etag: String(etag), count: await countBackupKeys(tx, userId, n) };
    });
  }

  /**
   * GET /room_keys/keys[/{roomId}[/{sessionId}]]?version=: `{rooms}` (all),
   * `{sessions}` (one room, empty when it has none), or one session's data
   * (404 when absent).
   */
  async getKeys(userId: string, version: string | undefined, scope: KeyScope): Promise<Json> {
    checkScope(scope);
    const n = requireVersion(version);
    const v = n === undefined ? undefined : await getBackupVersion(this.db, userId, n);
    if (!v) throw unknownVersion();
    const keys = await getBackupKeys(this.db, userId, v.version, scope.roomId, scope.sessionId);
    if (scope.sessionId !== undefined) {
      const k = keys[0];
      if (!k) throw new MatrixError(404, 'M_NOT_FOUND', 'No room_keys found');
      return sessionJson(k);
    }
    // Maps, then own properties: ids such as `__proto__` stay plain keys.
    if (scope.roomId !== undefined) return { sessions: Object.fromEntries(keys.map((k) => [k.session_id, sessionJson(k)])) };
    const rooms = new Map<string, [string, Json][]>();
    for (const k of keys) {
      let l = rooms.get(k.room_id);
      if (!l) rooms.set(k.room_id, (l = []));
      l.push([k.session_id, sessionJson(k)]);
    }
    return { rooms: Object.fromEntries([...rooms].map(([roomId, l]) => [roomId, { sessions: Object.fromEntries(l) }])) };
  }

  /** DELETE /room_keys/keys[/{roomId}[/{sessionId}]]?version=: removes keys from a version. */
  async deleteKeys(userId: string, version: string | undefined, scope: KeyScope): Promise<{ etag: string; count: number }> {
    checkScope(scope);
    const n = requireVersion(version);
    return this.db.transaction().execute(async (tx) => {
      await lockUserBackups(tx, userId);
      const v = n === undefined ? undefined : await getBackupVersion(tx, userId, n);
      if (!v) throw unknownVersion();
      const deleted = await deleteBackupKeys(tx, userId, v.version, scope.roomId, scope.sessionId);
      const etag = deleted > 0 ? await bumpBackupEtag(tx, userId, v.version) : v.etag;
      return { etag: String(etag), count: await countBackupKeys(tx, userId, v.version) };
    });
  }
}

/** The `version` query parameter: required (400 M_MISSING_PARAM); undefined when it cannot name a version. */
function requireVersion(version: string | undefined): number | undefined {
  if (version === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'Missing string query parameter: version');
  return parseVersion(version);
}

function sessionJson(k: BackedUpKey): Json {
  return { first_message_index: k.first_message_index, forwarded_count: k.forwarded_count, is_verified: k.is_verified, session_data: k.session_data };
}

/**
 * End-to-end keys: what /keys/upload, /keys/query and /keys/claim do, and
 * the request bodies they accept. Cross-signing is in cross-signing.ts.
 *
 * - Upload: a device publishes its identity keys (`device_keys`, which must
 *   name the uploading user and device), one-time keys and fallback keys.
 *   Identity keys uploaded again unchanged change nothing; changed ones
 *   replace the old (as Synapse does) and, like a first upload, are a
 *   device-list change. A one-time key id already stored with other
 *   content is refused (400), the same key again is ignored. A fallback key
 *   replaces the device's one for that algorithm and starts unused.
 * - Query: the identity keys of devices with their display name in
 *   `unsigned`, and the signatures made over them by their owner's
 *   self-signing key; users' master and self-signing keys, and the
 *   requester's own user-signing key. Users of other servers come from
 *   the remote device-list cache (remote-device-cache.ts) or their server.
 * - Claim: one one-time key per (user, device, algorithm), each handed out
 *   once (the row is deleted as it is read, skipping rows locked by
 *   concurrent claims); with none left, the device's fallback key, which
 *   stays and is marked used.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { domainOf, isValidUserId } from '../../core/auth/ids.js';
import { MatrixError } from '../../matrix-error.js';
import {
  claimFallbackKeys,
  claimOneTimeKeys,
  crossSigningKeysOf,
  deviceKeyStatus,
  deviceKeysOf,
  getDeviceKeys,
  insertOneTimeKeys,
  oneTimeKeyCounts,
  putDeviceKeys,
  putFallbackKey,
  signaturesOver,
  type ClaimWanted,
  type NewKey,
  type SignatureRow,
} from '../../storage/e2e-keys.js';
import { latestDeviceListChange, recordDeviceListChange } from '../../storage/device-lists.js';
import { listDevices } from '../../storage/devices.js';
import type { Schema } from '../../storage/schema.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import type { DeviceListsService } from './device-lists.js';
import type { RemoteKeys } from './remote-keys.js';
import { withSubsystemLogger } from '../../logger.js';
import { containsNul, isJsonObject } from '../../core/json-values.js';

export type Json = Record<string, unknown>;

/** The one-time key algorithm Olm uses; Synapse always reports its count, 0 included. */
export const SIGNED_CURVE25519 = 'signed_curve25519';
/** Ids, algorithms and key names are bounded as Synapse bounds identifiers. */
const MAX_ID_BYTES = 255;
/** What one request may name (users × devices), so a request cannot ask for unbounded work. */
const MAX_QUERY_ENTRIES = 10_000;

export const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
export const invalidParam = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);

/** Refuses U+0000 anywhere (the database stores keys as jsonb, which cannot hold it). */
export function rejectNulJson(v: unknown, what: string): void {
  if (containsNul(v)) throw badJson(`${what} may not contain U+0000`);
}

const tooLong = (s: string) => Buffer.byteLength(s) > MAX_ID_BYTES;

export function checkUserId(userId: string): void {
  if (!isValidUserId(userId) || tooLong(userId)) throw invalidParam(`Invalid user ID: ${userId.slice(0, 300)}`);
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** An object without its `signatures` and `unsigned` (what a signature covers). */
export function signedPart(obj: Json): Json {
  const { signatures: _s, unsigned: _u, ...rest } = obj;
  return rest;
}

/** A copy of `obj` with these stored signatures merged into its `signatures`. */
export function withSignatures(obj: Json, sigs: readonly SignatureRow[]): Json {
  if (sigs.length === 0) return obj;
  const signatures: Record<string, Json> = {};
  const own = obj['signatures'];
  if (isJsonObject(own)) for (const [u, s] of Object.entries(own)) if (isJsonObject(s)) signatures[u] = { ...s };
  for (const s of sigs) signatures[s.user_id] = { ...signatures[s.user_id], [s.key_id]: s.signature };
  return { ...obj, signatures };
}

/** The public key of a cross-signing key object (`keys` holds exactly `ed25519:<key>`: `<key>`). */
export function crossSigningPublicKey(key: Json): string | undefined {
  const keys = key['keys'];
  if (!isJsonObject(keys)) return undefined;
  const entries = Object.entries(keys);
  if (entries.length !== 1) return undefined;
  const [id, value] = entries[0] as [string, unknown];
  return typeof value === 'string' && id === `ed25519:${value}` ? value : undefined;
}

// ---------------------------------------------------------------- parsing
// The routes' schemas have checked the top level of each body (which maps
// are objects, which are required); these check what is inside.

export interface UploadRequest {
  deviceKeys?: Json;
  oneTimeKeys: NewKey[];
  fallbackKeys: NewKey[];
}

function checkStringMap(v: unknown, what: string): void {
  if (!isJsonObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw badJson(`${what} must be an object of strings`);
}

/** Checks `device_keys` as the spec's DeviceKeys object (all five fields) naming the requester's user and device. */
function parseDeviceKeys(v: Json, requester: Requester, deviceId: string): Json {
  for (const f of ['user_id', 'device_id'] as const) if (typeof v[f] !== 'string') throw badJson(`device_keys.${f} must be a string`);
  const algorithms = v['algorithms'];
  if (!Array.isArray(algorithms) || !algorithms.every((a) => typeof a === 'string')) throw badJson('device_keys.algorithms must be a list of strings');
  checkStringMap(v['keys'], 'device_keys.keys');
  const sigs = v['signatures'];
  if (!isJsonObject(sigs) || !Object.values(sigs).every((s) => isJsonObject(s) && Object.values(s).every((x) => typeof x === 'string'))) {
    throw badJson('device_keys.signatures must map user IDs to objects of strings');
  }
  if (v['user_id'] !== requester.userId) throw invalidParam('Provided `user_id` in `device_keys` does not match that of the authenticated user');
  if (v['device_id'] !== deviceId) throw invalidParam('Provided `device_id` in `device_keys` does not match that of the authenticated user device');
  return v;
}

/** `<algorithm>:<key id>` → key (a string, or a signed key object). */
function parseKeyMap(v: Json | null | undefined, what: string): NewKey[] {
  if (v === undefined || v === null) return [];
  const out: NewKey[] = [];
  for (const [name, key] of Object.entries(v)) {
    const colon = name.indexOf(':');
    if (colon <= 0 || colon === name.length - 1 || tooLong(name)) throw invalidParam(`${what}: key name ${JSON.stringify(name.slice(0, 300))} is not <algorithm>:<key id>`);
    if (typeof key !== 'string' && !isJsonObject(key)) throw badJson(`${what}: key ${name} must be a string or an object`);
    out.push({ algorithm: name.slice(0, colon), keyId: name.slice(colon + 1), key });
  }
  return out;
}

export function parseUpload(body: Json, requester: Requester, deviceId: string): UploadRequest {
  rejectNulJson(body, 'Keys');
  const dk = body['device_keys'] as Json | null | undefined;
  const fallback = (body['fallback_keys'] ?? body['org.matrix.msc2732.fallback_keys']) as Json | null | undefined;
  return {
    deviceKeys: dk === undefined || dk === null ? undefined : parseDeviceKeys(dk, requester, deviceId),
    oneTimeKeys: parseKeyMap(body['one_time_keys'] as Json | null | undefined, 'one_time_keys'),
    fallbackKeys: parseKeyMap(fallback, 'fallback_keys'),
  };
}

export interface QueryRequest {
  /** user → device ids, or null for all their devices. */
  users: Map<string, string[] | null>;
}

export function parseQuery(body: Json): QueryRequest {
  const dk = body['device_keys'] as Json;
  rejectNulJson(dk, 'device_keys');
  const users = new Map<string, string[] | null>();
  let n = 0;
  for (const [userId, devices] of Object.entries(dk)) {
    checkUserId(userId);
    if (devices === null) {
      users.set(userId, null);
    } else {
      if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string')) throw badJson(`device_keys for ${userId} must be a list of device IDs`);
      users.set(userId, devices.length === 0 ? null : [...new Set(devices as string[])]);
    }
    n += 1 + (Array.isArray(devices) ? devices.length : 0);
    if (n > MAX_QUERY_ENTRIES) throw invalidParam(`Too many users and devices in one query (at most ${MAX_QUERY_ENTRIES})`);
  }
  return { users };
}

export function parseClaim(body: Json): ClaimWanted[] {
  const otk = body['one_time_keys'] as Json;
  rejectNulJson(otk, 'one_time_keys');
  const out: ClaimWanted[] = [];
  for (const [userId, devices] of Object.entries(otk)) {
    checkUserId(userId);
    if (!isJsonObject(devices)) throw badJson(`one_time_keys for ${userId} must map device IDs to algorithms`);
    for (const [deviceId, algorithm] of Object.entries(devices)) {
      if (typeof algorithm !== 'string' || algorithm === '' || tooLong(algorithm))
        throw badJson(`The algorithm for ${userId} ${deviceId.slice(0, 300)} must be a non-empty string`);
      out.push({ userId, deviceId, algorithm });
    }
    if (out.length > MAX_QUERY_ENTRIES) throw invalidParam(`Too many devices in one claim (at most ${MAX_QUERY_ENTRIES})`);
  }
  return out;
}

// ---------------------------------------------------------------- service

export interface KeysServiceDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  isMine(userId: string): boolean;
  logger: Logger;
  /** Announces device-list changes once they have committed. */
  deviceLists: DeviceListsService;
  /** Synapse's `allow_device_name_lookup_over_federation` (default false): other servers see device display names. */
  deviceNamesOverFederation?: boolean;
  /** Other servers' users' keys, over federation (absent: they are reported unreachable). */
  remote?: RemoteKeys;
  /** Where /keys/query takes other servers' users' device keys (default `remote`): the remote device-list cache. */
  remoteDevices?: Pick<RemoteKeys, 'query'>;
}

/** What `failures` holds for a server we cannot ask (no federation client), in the shape Synapse reports an unreachable one. */
export const UNREACHABLE = { status: 503, message: 'Federation is not available on this server' };

/** Whether two one-time keys are the same key: equal strings, or objects equal but for their signatures (as Synapse compares). */
function sameOneTimeKey(a: unknown, b: unknown): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (!isJsonObject(a) || !isJsonObject(b)) return false;
  const { signatures: _a, ...ra } = a;
  const { signatures: _b, ...rb } = b;
  return jsonEqual(ra, rb);
}

export class KeysService {
  constructor(private readonly d: KeysServiceDeps) {
    this.d = withSubsystemLogger(d, 'axon.e2ee');
  }

  /** The device the requester's keys belong to; tokens without one (admin puppets) cannot upload. */
  static deviceOf(requester: Requester): string {
    if (requester.deviceId === null) throw new MatrixError(400, 'M_UNKNOWN', 'To upload keys, you must pass device_id when authenticating');
    return requester.deviceId;
  }

  /** POST /keys/upload: returns `one_time_key_counts`. */
  async upload(requester: Requester, req: UploadRequest, now = Date.now()): Promise<Record<string, number>> {
    const userId = requester.userId;
    const deviceId = KeysService.deviceOf(requester);
    const { changed, counts } = await this.d.db.transaction().execute(async (tx) => {
      let changed = false;
      if (req.deviceKeys) {
        const stored = await getDeviceKeys(tx, userId, deviceId);
        if (!stored || !jsonEqual(stored, req.deviceKeys)) {
          await putDeviceKeys(tx, userId, deviceId, req.deviceKeys, now);
          await recordDeviceListChange(tx, userId, [deviceId], now);
          changed = true;
        }
      }
      if (req.oneTimeKeys.length > 0) {
        const clashes = await insertOneTimeKeys(tx, userId, deviceId, req.oneTimeKeys, now);
        for (const k of req.oneTimeKeys) {
          const name = `${k.algorithm}:${k.keyId}`;
          if (clashes.has(name) && !sameOneTimeKey(clashes.get(name), k.key)) {
            throw new MatrixError(400, 'M_UNKNOWN', `One time key ${name} already exists with different content`);
          }
        }
      }
      for (const k of req.fallbackKeys) await putFallbackKey(tx, userId, deviceId, k);
      return { changed, counts: await oneTimeKeyCounts(tx, userId, deviceId) };
    });
    if (changed) {
      this.d.logger.info({ user_id: userId, device_id: deviceId }, 'device keys uploaded');
      await this.d.deviceLists.changed([userId]);
    }
    return { [SIGNED_CURVE25519]: 0, ...counts };
  }

  /** POST /keys/query: our users' keys, and other servers' users' keys asked of their servers (waiting at most `timeoutMs`). */
  async query(requester: Requester, req: QueryRequest, timeoutMs?: number): Promise<Json> {
    const remote = new Map([...req.users].filter(([u]) => !this.d.isMine(u)));
    const source = this.d.remoteDevices ?? this.d.remote;
    if (remote.size === 0 || !source) return this.lookUp(req, requester.userId, true);
    const [mine, theirs] = await Promise.all([
      this.lookUp({ users: new Map([...req.users].filter(([u]) => this.d.isMine(u))) }, requester.userId, true),
      source.query(remote, timeoutMs),
    ]);
    // The requester's own signatures over other servers' users' master keys are kept here, not there.
    const remoteMasters: Json = {};
    const targets = Object.entries(theirs.masterKeys).flatMap(([userId, key]) => {
      const pub = isJsonObject(key) ? crossSigningPublicKey(key) : undefined;
      return pub === undefined ? [] : [{ userId, deviceId: pub }];
    });
    const ours = (await signaturesOver(this.d.db, targets, requester.userId)).filter((s) => s.user_id === requester.userId);
    for (const [userId, key] of Object.entries(theirs.masterKeys)) {
      const sigs = ours.filter((s) => s.target_user_id === userId);
      remoteMasters[userId] = sigs.length > 0 && isJsonObject(key) ? withSignatures(key, sigs) : key;
    }
    return {
      device_keys: { ...(mine['device_keys'] as Json), ...theirs.deviceKeys },
      failures: theirs.failures,
      master_keys: { ...(mine['master_keys'] as Json), ...remoteMasters },
      self_signing_keys: { ...(mine['self_signing_keys'] as Json), ...theirs.selfSigningKeys },
      user_signing_keys: mine['user_signing_keys'],
    };
  }

  /**
   * POST /_matrix/federation/v1/user/keys/query: our users' keys as another
   * server's users may see them (their owners' signatures only, no
   * user-signing keys, display names only with
   * `allow_device_name_lookup_over_federation`); other users are left out.
   */
  async queryForServer(req: QueryRequest): Promise<Json> {
    const users = new Map([...req.users].filter(([u]) => this.d.isMine(u)));
    const all = await this.lookUp({ users }, null, this.d.deviceNamesOverFederation === true);
    return { device_keys: all['device_keys'], master_keys: all['master_keys'], self_signing_keys: all['self_signing_keys'] };
  }

  /** The keys of `req`'s local users as `viewer` (a user, or null for another server) may see them; others in `failures`. */
  private async lookUp(req: QueryRequest, viewer: string | null, displayNames: boolean): Promise<Json> {
    const failures: Json = {};
    const local = new Map<string, string[] | null>();
    for (const [userId, devices] of req.users) {
      if (this.d.isMine(userId)) local.set(userId, devices);
      else failures[domainOf(userId) ?? userId] = UNREACHABLE;
    }
    const all = [...local].filter(([, d]) => d === null).map(([u]) => u);
    const pairs = [...local].flatMap(([userId, d]) => (d ?? []).map((deviceId) => ({ userId, deviceId })));
    const users = [...local.keys()];
    const [devices, cross] = await Promise.all([deviceKeysOf(this.d.db, all, pairs), crossSigningKeysOf(this.d.db, users, ['master', 'self_signing', 'user_signing'])]);
    // Signatures stored beside the keys: over devices, and over master keys (by their public key).
    const targets = devices.map((r) => ({ userId: r.user_id, deviceId: r.device_id }));
    for (const c of cross) {
      const pub = c.key_type === 'master' ? crossSigningPublicKey(c.key_json) : undefined;
      if (pub !== undefined) targets.push({ userId: c.user_id, deviceId: pub });
    }
    const sigs = await signaturesOver(this.d.db, targets, viewer);
    const sigsOf = new Map<string, SignatureRow[]>();
    for (const s of sigs) {
      const k = `${s.target_user_id}\u0000${s.target_device_id}`;
      let l = sigsOf.get(k);
      if (!l) sigsOf.set(k, (l = []));
      l.push(s);
    }

    const deviceKeys: Record<string, Json> = {};
    for (const u of users) deviceKeys[u] = {};
    for (const r of devices) {
      const keys = withSignatures(r.key_json, sigsOf.get(`${r.user_id}\u0000${r.device_id}`) ?? []);
      (deviceKeys[r.user_id] as Json)[r.device_id] = { ...keys, unsigned: r.display_name === null || !displayNames ? {} : { device_display_name: r.display_name } };
    }
    const masterKeys: Json = {};
    const selfSigningKeys: Json = {};
    const userSigningKeys: Json = {};
    for (const c of cross) {
      if (c.key_type === 'master') {
        const pub = crossSigningPublicKey(c.key_json);
        masterKeys[c.user_id] = pub === undefined ? c.key_json : withSignatures(c.key_json, sigsOf.get(`${c.user_id}\u0000${pub}`) ?? []);
      } else if (c.key_type === 'self_signing') {
        selfSigningKeys[c.user_id] = c.key_json;
      } else if (c.user_id === viewer) {
        // A user-signing key is for its owner's eyes only.
        userSigningKeys[c.user_id] = c.key_json;
      }
    }
    return { device_keys: deviceKeys, failures, master_keys: masterKeys, self_signing_keys: selfSigningKeys, user_signing_keys: userSigningKeys };
  }

  /**
   * GET /_matrix/federation/v1/user/devices/{userId}: a local user's devices
   * with their keys (as `queryForServer` shows them), cross-signing keys, and
   * the position of the latest change (`stream_id`, which device-list
   * updates will carry as `prev_id`).
   */
  async devicesForServer(userId: string): Promise<Json> {
    if (!this.d.isMine(userId)) throw new MatrixError(400, 'M_INVALID_PARAM', 'User is not hosted on this homeserver');
    const streamId = await latestDeviceListChange(this.d.db, userId);
    const [devices, keys] = await Promise.all([listDevices(this.d.db, userId), this.queryForServer({ users: new Map([[userId, null]]) })]);
    const byDevice = ((keys['device_keys'] as Json)[userId] ?? {}) as Record<string, Json>;
    const names = this.d.deviceNamesOverFederation === true;
    const out: Json = {
      user_id: userId,
      stream_id: streamId,
      devices: devices.map((d) => {
        const k = byDevice[d.device_id];
        const entry: Json = { device_id: d.device_id };
        if (k !== undefined) entry['keys'] = k;
        if (names && d.display_name !== null) entry['device_display_name'] = d.display_name;
        return entry;
      }),
    };
    const master = (keys['master_keys'] as Json)[userId];
    const selfSigning = (keys['self_signing_keys'] as Json)[userId];
    if (master !== undefined) out['master_key'] = master;
    if (selfSigning !== undefined) out['self_signing_key'] = selfSigning;
    return out;
  }

  /** POST /_matrix/federation/v1/user/keys/claim: one-time (else fallback) keys of our users' devices; other users are left out. */
  async claimForServer(wanted: readonly ClaimWanted[]): Promise<Json> {
    return { one_time_keys: await this.claimLocal(wanted.filter((w) => this.d.isMine(w.userId))) };
  }

  /** POST /keys/claim: our users' keys, and other servers' users' keys claimed from their servers (waiting at most `timeoutMs`). */
  async claim(wanted: readonly ClaimWanted[], timeoutMs?: number): Promise<Json> {
    const local = wanted.filter((w) => this.d.isMine(w.userId));
    const others = wanted.filter((w) => !this.d.isMine(w.userId));
    const remote = this.d.remote;
    const [mine, theirs] = await Promise.all([this.claimLocal(local), others.length > 0 && remote ? remote.claim(others, timeoutMs) : undefined]);
    const failures: Json = theirs?.failures ?? {};
    if (!theirs) for (const w of others) failures[domainOf(w.userId) ?? w.userId] = UNREACHABLE;
    return { one_time_keys: { ...mine, ...theirs?.oneTimeKeys }, failures };
  }

  private async claimLocal(local: readonly ClaimWanted[]): Promise<Record<string, Record<string, Json>>> {
    if (local.length === 0) return {};
    const claimed = await this.d.db.transaction().execute(async (tx) => {
      const got = await claimOneTimeKeys(tx, local);
      const had = new Set(got.map((g) => `${g.user_id}\u0000${g.device_id}`));
      const rest = local.filter((w) => !had.has(`${w.userId}\u0000${w.deviceId}`));
      return [...got, ...(await claimFallbackKeys(tx, rest))];
    });
    const oneTimeKeys: Record<string, Record<string, Json>> = {};
    for (const k of claimed) {
      const byDevice = (oneTimeKeys[k.user_id] ??= {});
      byDevice[k.device_id] = { ...byDevice[k.device_id], [`${k.algorithm}:${k.key_id}`]: k.key_json };
    }
    return oneTimeKeys;
  }
}

/** /sync's `device_one_time_keys_count` (with signed_curve25519, as Synapse) and `device_unused_fallback_key_types` for one device. */
export async function syncKeyCounts(
  db: Kysely<Schema>,
  userId: string,
  deviceId: string | null,
): Promise<{ device_one_time_keys_count: Record<string, number>; device_unused_fallback_key_types: string[] }> {
  if (deviceId === null) return { device_one_time_keys_count: { [SIGNED_CURVE25519]: 0 }, device_unused_fallback_key_types: [] };
  const s = await deviceKeyStatus(db, userId, deviceId);
  return { device_one_time_keys_count: { [SIGNED_CURVE25519]: 0, ...s.counts }, device_unused_fallback_key_types: s.unusedFallback };
}

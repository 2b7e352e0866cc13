/**
 * Cross-signing: a user's master, self-signing and user-signing keys
 * (POST /keys/device_signing/upload) and the signatures made with them
 * (POST /keys/signatures/upload).
 *
 * - Keys: each must name the user, carry its type in `usage`, and hold
 *   exactly one ed25519 public key (`ed25519:<key>`: `<key>`). The
 *   self-signing and user-signing keys must be signed by the master key
 *   (the one uploaded with them, else the stored one). No public key may
 *   equal one of the user's device ids (the spec keeps the two apart).
 *   User-interactive auth is needed to replace keys, but not for the first
 *   upload (no master key yet) nor for uploading the very keys already
 *   stored (the spec since v1.11, Synapse's MSC3967 behaviour).
 * - Signatures: over the user's own devices by their self-signing key, over
 *   their own master key by one of their devices, and over other users'
 *   master keys by their user-signing key. The signed object must be the
 *   stored key (signatures and `unsigned` aside); each signature is
 *   verified, and those that fail are reported in `failures` while the
 *   others are stored.
 * Either way, the user whose keys changed (or got a signature) gets a
 * device-list change, so that those tracking them query their keys again.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Base64Error, decodeBase64 } from '../../core/base64.js';
import { verifyJson } from '../../core/signing.js';
import { MatrixError } from '../../matrix-error.js';
import { recordDeviceListChange } from '../../storage/device-lists.js';
import {
  crossSigningKeysOf,
  deviceIdsOf,
  deviceKeysOf,
  lockCrossSigning,
  putCrossSigningKey,
  putSignatures,
  type CrossSigningType,
  type SignatureRow,
} from '../../storage/e2e-keys.js';
import type { Schema } from '../../storage/schema.js';
import type { Requester } from '../auth.js';
import type { Notifier } from '../notifier.js';
import type { DeviceListsService } from './device-lists.js';
import type { RemoteKeys } from './remote-keys.js';
import type { Reauthenticator } from '../reauth.js';
import type { UiaRequest } from '../uia.js';
import { badJson, checkUserId, crossSigningPublicKey, invalidParam, jsonEqual, rejectNulJson, signedPart, type Json } from './keys.js';
import { withSubsystemLogger } from '../../logger.js';
import type { Db } from '../../storage/db.js';
import { isJsonObject } from '../../core/json-values.js';

const TYPES = [
  ['master_key', 'master'],
  ['self_signing_key', 'self_signing'],
  ['user_signing_key', 'user_signing'],
] as const;

export type SigningKeysUpload = Partial<Record<CrossSigningType, { json: Json; publicKey: string }>>;

/** The 32 bytes of an unpadded base64 ed25519 public key, or undefined. */
function publicKeyBytes(key: string): Uint8Array | undefined {
  try {
    const b = decodeBase64(key);
    return b.length === 32 ? b : undefined;
  } catch (err) {
    if (err instanceof Base64Error) return undefined;
    throw err;
  }
}

/** Checks the body of /keys/device_signing/upload (shape only; signatures are checked by the service). */
export function parseSigningKeys(body: Json, userId: string): SigningKeysUpload {
  const out: SigningKeysUpload = {};
  for (const [field, type] of TYPES) {
    const v = body[field];
    if (v === undefined || v === null) continue;
    if (!isJsonObject(v)) throw badJson(`${field} must be an object`);
    rejectNulJson(v, field);
    const usage = v['usage'];
    if (v['user_id'] !== userId || !Array.isArray(usage) || !usage.includes(type)) throw invalidParam(`Invalid key: ${field} must name the user and have usage ${type}`);
    if (!usage.every((u) => typeof u === 'string')) throw badJson(`${field}.usage must be a list of strings`);
    const sigs = v['signatures'];
    if (sigs !== undefined && !(isJsonObject(sigs) && Object.values(sigs).every((s) => isJsonObject(s) && Object.values(s).every((x) => typeof x === 'string')))) {
      throw badJson(`${field}.signatures must map user IDs to objects of strings`);
    }
    const publicKey = crossSigningPublicKey(v);
    if (publicKey === undefined || !publicKeyBytes(publicKey)) throw invalidParam(`Invalid key: ${field}.keys must hold one ed25519 public key`);
    out[type] = { json: v, publicKey };
  }
  return out;
}

export interface CrossSigningDeps {
  db: Kysely<Schema>;
  notifier: Notifier;
  isMine(userId: string): boolean;
  logger: Logger;
  /** Announces device-list changes once they have committed. */
  deviceLists: DeviceListsService;
  /** UIA before cross-signing keys are replaced. */
  reauth: Reauthenticator;
  /** Other servers' users' keys: the master keys our users sign with their user-signing keys. */
  remote?: Pick<RemoteKeys, 'query'>;
}

const failure = (errcode: string, error: string) => ({ errcode, error });

async function storedKeys(db: Db, userId: string): Promise<Map<CrossSigningType, Json>> {
  return new Map((await crossSigningKeysOf(db, [userId], ['master', 'self_signing', 'user_signing'])).map((r) => [r.key_type, r.key_json]));
}

/** The (key id, signature) pairs `signer` put on `signed`. */
function signaturesBy(signed: Json, signer: string): [string, string][] {
  const sigs = signed['signatures'];
  const by = isJsonObject(sigs) ? sigs[signer] : undefined;
  if (!isJsonObject(by)) return [];
  return Object.entries(by).filter((e): e is [string, string] => typeof e[1] === 'string');
}

export class CrossSigningService {
  constructor(private readonly d: CrossSigningDeps) {
    this.d = withSubsystemLogger(d, 'axon.e2ee');
  }

  /**
   * Stores the user's new cross-signing keys. When keys would be replaced,
   * the requester must first pass UIA with `request` (the upload request).
   */
  async uploadKeys(requester: Requester, keys: SigningKeysUpload, request: UiaRequest, now = Date.now()): Promise<void> {
    const userId = requester.userId;
    const given = TYPES.map(([, t]) => t).filter((t) => keys[t] !== undefined);
    if (given.length === 0) return;
    let authenticated = false;
    // Twice at most: a first upload racing another one is decided again against what won.
    for (let attempt = 0; ; attempt++) {
      const stored = await storedKeys(this.d.db, userId);
      const storedMaster = stored.get('master');
      // The same keys again: nothing to do, and no reason to ask for a password.
      if (storedMaster && given.every((t) => jsonEqual(stored.get(t), keys[t]?.json))) return;
      await this.checkKeys(userId, keys, given, storedMaster);
      if (storedMaster && !authenticated) {
        await this.d.reauth.reauthenticate(requester, request);
        authenticated = true;
      }
      const written = await this.d.db.transaction().execute(async (tx) => {
        await lockCrossSigning(tx, userId);
        // Without UIA, only while the user still has no master key (or the one the checks used).
        if (!authenticated && !jsonEqual((await storedKeys(tx, userId)).get('master'), storedMaster)) return false;
        const pos = await recordDeviceListChange(
          tx,
          userId,
          given.map((t) => keys[t]?.publicKey as string),
          now,
        );
        for (const t of given) await putCrossSigningKey(tx, userId, t, keys[t]?.json as Json, pos);
        return true;
      });
      if (written) break;
      if (attempt > 0) throw new MatrixError(409, 'M_UNKNOWN', 'Cross-signing keys changed during the request; try again');
    }
    this.d.logger.info({ user_id: userId, keys: given }, 'cross-signing keys uploaded');
    await this.d.deviceLists.changed([userId]);
  }

  /** The checks an upload must pass before anything is asked or stored (400/403 otherwise). */
  private async checkKeys(userId: string, keys: SigningKeysUpload, given: CrossSigningType[], storedMaster: Json | undefined): Promise<void> {
    const masterPub = keys.master?.publicKey ?? (storedMaster ? crossSigningPublicKey(storedMaster) : undefined);
    const masterBytes = masterPub === undefined ? undefined : publicKeyBytes(masterPub);
    for (const t of ['self_signing', 'user_signing'] as const) {
      const k = keys[t];
      if (!k) continue;
      if (masterPub === undefined || !masterBytes) throw new MatrixError(400, 'M_MISSING_PARAM', 'No master key available');
      if (!verifyJson(k.json, userId, `ed25519:${masterPub}`, masterBytes))
        throw new MatrixError(400, 'M_INVALID_SIGNATURE', `Invalid signature on the ${t.replace('_', '-')} key`);
    }
    const deviceIds = new Set(await deviceIdsOf(this.d.db, userId));
    for (const t of given) if (deviceIds.has(keys[t]?.publicKey as string)) throw new MatrixError(403, 'M_FORBIDDEN', 'Key ID in use');
  }

  /** Checks and stores uploaded signatures; returns `failures` (user → key id → error). */
  async uploadSignatures(requester: Requester, body: Json, now = Date.now()): Promise<Record<string, Record<string, Json>>> {
    const me = requester.userId;
    const failures: Record<string, Record<string, Json>> = {};
    const fail = (userId: string, keyId: string, errcode: string, error: string) => {
      (failures[userId] ??= {})[keyId] = failure(errcode, error);
    };
    // Shape first: any malformed entry refuses the whole request.
    const entries: { userId: string; keyId: string; signed: Json }[] = [];
    for (const [userId, byKey] of Object.entries(body)) {
      checkUserId(userId);
      if (!isJsonObject(byKey)) throw badJson(`The signatures for ${userId} must be an object of signed keys`);
      for (const [keyId, signed] of Object.entries(byKey)) {
        if (!isJsonObject(signed)) throw badJson(`The signed key ${userId} ${keyId.slice(0, 300)} must be an object`);
        entries.push({ userId, keyId, signed });
      }
    }
    rejectNulJson(body, 'Signatures');

    const users = [...new Set(entries.map((e) => e.userId).filter((u) => this.d.isMine(u)))];
    const cross = await crossSigningKeysOf(this.d.db, [...new Set([me, ...users])], ['master', 'self_signing', 'user_signing']);
    // Another server's user's master key is asked of their server, as Synapse does, so it can be checked like ours.
    const remoteUsers = [...new Set(entries.map((e) => e.userId).filter((u) => !this.d.isMine(u)))];
    const remoteMasters = remoteUsers.length > 0 && this.d.remote ? (await this.d.remote.query(new Map(remoteUsers.map((u) => [u, []])))).masterKeys : {};
    const keyOf = (userId: string, type: CrossSigningType): Json | undefined => {
      const local = cross.find((c) => c.user_id === userId && c.key_type === type)?.key_json;
      const theirs = type === 'master' ? remoteMasters[userId] : undefined;
      return local ?? (isJsonObject(theirs) ? theirs : undefined);
    };
    const ownDevices = entries.some((e) => e.userId === me) ? await deviceKeysOf(this.d.db, [me], []) : [];
    const deviceKeys = new Map(ownDevices.map((r) => [r.device_id, r.key_json]));

    const rows: SignatureRow[] = [];
    /** Whose keys changed, and which of their devices ('' for a master key): a device signed is a change of that device, as Synapse records it. */
    const changed = new Map<string, Set<string>>();
    const mark = (user: string, device: string) => {
      let set = changed.get(user);
      if (!set) changed.set(user, (set = new Set()));
      set.add(device);
    };
    /** The signatures on `signed` by `signer` other than those the stored key already carries. */
    const newSignatures = (signed: Json, storedKey: Json, signer: string): [string, string][] => {
      const old = isJsonObject(storedKey['signatures']) ? (storedKey['signatures'] as Json)[signer] : undefined;
      return signaturesBy(signed, signer).filter(([k, s]) => !(isJsonObject(old) && old[k] === s));
    };
    const verified = (signed: Json, storedKey: Json, signer: string, keyId: string, publicKey: unknown): boolean => {
      const bytes = typeof publicKey === 'string' ? publicKeyBytes(publicKey) : undefined;
      // Verify over the stored key with only this signature, so nothing but the stored content counts.
      const sig = (signed['signatures'] as Record<string, Json>)[signer]?.[keyId];
      return bytes !== undefined && verifyJson({ ...signedPart(storedKey), signatures: { [signer]: { [keyId]: sig } } }, signer, keyId, bytes);
    };

    for (const { userId, keyId, signed } of entries) {
      if (!this.d.isMine(userId) && !this.d.remote) {
        fail(userId, keyId, 'M_UNKNOWN', 'Federation is not available on this server');
        continue;
      }
      const master = keyOf(userId, 'master');
      const masterPub = master ? crossSigningPublicKey(master) : undefined;
      if (userId === me) {
        if (masterPub !== undefined && keyId === masterPub) {
          // The user's own master key, signed by their devices.
          if (!jsonEqual(signedPart(signed), signedPart(master as Json))) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', 'The signed key does not match the stored master key');
            continue;
          }
          if (signaturesBy(signed, me).length === 0) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Missing signature');
            continue;
          }
          // Signatures the stored key already carries (its own, say) need no second look.
          const sigs = newSignatures(signed, master as Json, me).filter(([k]) => k !== `ed25519:${masterPub}`);
          const bad = sigs.find(([k]) => {
            const dev = k.startsWith('ed25519:') ? deviceKeys.get(k.slice(8)) : undefined;
            return !dev || !verified(signed, master as Json, me, k, (dev['keys'] as Json | undefined)?.[k]);
          });
          if (bad) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', `Invalid signature ${bad[0]}`);
            continue;
          }
          for (const [k, s] of sigs) rows.push({ user_id: me, key_id: k, target_user_id: me, target_device_id: masterPub, signature: s });
          if (sigs.length > 0) mark(me, '');
        } else {
          // One of the user's own devices, signed by their self-signing key.
          const device = deviceKeys.get(keyId);
          if (!device) {
            fail(userId, keyId, 'M_NOT_FOUND', 'Unknown device');
            continue;
          }
          const ssk = keyOf(me, 'self_signing');
          const sskPub = ssk ? crossSigningPublicKey(ssk) : undefined;
          if (sskPub === undefined) {
            fail(userId, keyId, 'M_NOT_FOUND', 'No self-signing key found');
            continue;
          }
          if (!jsonEqual(signedPart(signed), signedPart(device))) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', 'The signed key does not match the stored device keys');
            continue;
          }
          const sskId = `ed25519:${sskPub}`;
          const sig = signaturesBy(signed, me).find(([k]) => k === sskId);
          if (!sig) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Missing signature by the self-signing key');
            continue;
          }
          if (!verified(signed, device, me, sskId, sskPub)) {
            fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Invalid signature');
            continue;
          }
          rows.push({ user_id: me, key_id: sskId, target_user_id: me, target_device_id: keyId, signature: sig[1] });
          mark(me, keyId);
        }
        continue;
      }
      // Another user's master key, signed by the requester's user-signing key.
      const usk = keyOf(me, 'user_signing');
      const uskPub = usk ? crossSigningPublicKey(usk) : undefined;
      if (uskPub === undefined) {
        fail(userId, keyId, 'M_NOT_FOUND', 'No user-signing key found');
        continue;
      }
      if (!master || masterPub === undefined) {
        fail(userId, keyId, 'M_NOT_FOUND', 'No master key found for this user');
        continue;
      }
      if (keyId !== masterPub) {
        fail(userId, keyId, 'M_INVALID_PARAM', "The key ID does not match the user's master key");
        continue;
      }
      if (!jsonEqual(signedPart(signed), signedPart(master))) {
        fail(userId, keyId, 'M_INVALID_SIGNATURE', 'The signed key does not match the stored master key');
        continue;
      }
      const uskId = `ed25519:${uskPub}`;
      const sig = signaturesBy(signed, me).find(([k]) => k === uskId);
      if (!sig) {
        fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Missing signature by the user-signing key');
        continue;
      }
      if (!verified(signed, master, me, uskId, uskPub)) {
        fail(userId, keyId, 'M_INVALID_SIGNATURE', 'Invalid signature');
        continue;
      }
      rows.push({ user_id: me, key_id: uskId, target_user_id: userId, target_device_id: masterPub, signature: sig[1] });
      // Recorded as a change of the target's list so the signer's clients look again; the federation
      // sender announces only our users' changes, so another server is not told (Synapse keeps these local too).
      mark(userId, '');
    }

    if (rows.length > 0) {
      await this.d.db.transaction().execute(async (tx) => {
        await putSignatures(tx, rows);
        for (const [u, devices] of changed) await recordDeviceListChange(tx, u, [...devices], now);
      });
      await this.d.deviceLists.changed(changed.keys());
    }
    return failures;
  }
}

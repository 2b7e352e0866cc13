/**
 * Real ed25519 keys and signatures for the end-to-end key tests: a device's
 * signed identity keys and one-time keys, and a user's cross-signing keys,
 * made as a client makes them (signed JSON, unpadded base64).
 */
import { randomBytes } from 'node:crypto';
import { encodeBase64 } from '../../src/core/base64.js';
import { publicKeyFromSeed, signJson } from '../../src/core/signing.js';

type Json = Record<string, unknown>;

export interface Ed25519 {
  seed: Uint8Array;
  /** Unpadded base64 public key. */
  pub: string;
}

export function ed25519(): Ed25519 {
  const seed = new Uint8Array(randomBytes(32));
  return { seed, pub: encodeBase64(publicKeyFromSeed(seed)) };
}

/** Signs `obj` as `userId` with the key `keyId` (e.g. `ed25519:DEVICE` or `ed25519:<public key>`). */
export function sign<T extends object>(obj: T, userId: string, keyId: string, key: Ed25519): T & { signatures: Record<string, Record<string, string>> } {
  return signJson(obj, userId, keyId, key.seed) as T & { signatures: Record<string, Record<string, string>> };
}

export interface TestDevice {
  userId: string;
  deviceId: string;
  key: Ed25519;
  curve: string;
  deviceKeys: Json;
}

/** A device's identity keys (`device_keys` for /keys/upload), self-signed as the spec asks. */
export function deviceKeys(userId: string, deviceId: string): TestDevice {
  const key = ed25519();
  const curve = encodeBase64(randomBytes(32));
  const unsigned = {
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${deviceId}`]: curve, [`ed25519:${deviceId}`]: key.pub },
  };
  return { userId, deviceId, key, curve, deviceKeys: sign(unsigned, userId, `ed25519:${deviceId}`, key) };
}

let keyCounter = 0;

/** `n` signed_curve25519 one-time keys signed by the device, with fresh ids. */
export function oneTimeKeys(d: TestDevice, n: number, opts: { fallback?: boolean } = {}): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (let i = 0; i < n; i++) {
    const id = `AAAA${(keyCounter++).toString(36).padStart(4, '0')}`;
    const body: Json = { key: encodeBase64(randomBytes(32)) };
    if (opts.fallback) body['fallback'] = true;
    out[`signed_curve25519:${id}`] = sign(body, d.userId, `ed25519:${d.deviceId}`, d.key);
  }
  return out;
}

export interface CrossSigning {
  master: Ed25519;
  selfSigning: Ed25519;
  userSigning: Ed25519;
  masterKey: Json;
  selfSigningKey: Json;
  userSigningKey: Json;
}

/** A cross-signing key object for `userId`. */
export function crossSigningKey(userId: string, usage: string, key: Ed25519): Json {
  return { user_id: userId, usage: [usage], keys: { [`ed25519:${key.pub}`]: key.pub } };
}

/** A user's three cross-signing keys, the self-signing and user-signing ones signed by the master key. */
export function crossSigning(userId: string): CrossSigning {
  const master = ed25519();
  const selfSigning = ed25519();
  const userSigning = ed25519();
  const mk = `ed25519:${master.pub}`;
  return {
    master,
    selfSigning,
    userSigning,
    masterKey: crossSigningKey(userId, 'master', master),
    selfSigningKey: sign(crossSigningKey(userId, 'self_signing', selfSigning), userId, mk, master),
    userSigningKey: sign(crossSigningKey(userId, 'user_signing', userSigning), userId, mk, master),
  };
}

/** The body of /keys/device_signing/upload for these keys. */
export function signingUpload(cs: CrossSigning): Json {
  return { master_key: cs.masterKey, self_signing_key: cs.selfSigningKey, user_signing_key: cs.userSigningKey };
}

/**
 * Ed25519 signing keys (Synapse's key file format) and JSON signing as the
 * spec's appendix "Signing JSON" defines it, through node:crypto (OpenSSL).
 *
 * Building a KeyObject costs more than a signature, so KeyObjects are cached
 * per seed and per public key.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { Base64Error, decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJsonWithout } from './canonical-json.js';
import { randomAlphanumeric } from './event-id.js';
import type { Signatures } from './pdu.js';
import { isJsonObject } from './json-values.js';

export interface SigningKey {
  algorithm: 'ed25519';
  /** The part after `ed25519:`, e.g. `a_AbCd`. */
  version: string;
  /** `ed25519:<version>` */
  keyId: string;
  /** The 32-byte seed, the secret stored in the key file. */
  seed: Uint8Array;
  /** The 32-byte public key. */
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

export class SigningKeyFileError extends Error {
  constructor(
    message: string,
    /** 1-based line of the key file, when the problem is on one line. */
    readonly line?: number,
  ) {
    super(line === undefined ? message : `signing key file line ${line}: ${message}`);
    this.name = 'SigningKeyFileError';
  }
}

export class SigningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningError';
  }
}

// DER framing around raw Ed25519 keys (RFC 8410), so OpenSSL can import them.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const KEY_VERSION = /^[A-Za-z0-9_]+$/;

/** A small insertion-ordered cache that drops its oldest entry when full. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }
}

const privateKeys = new BoundedCache<KeyObject>(64);
const publicKeys = new BoundedCache<KeyObject>(8192);

function bytesKey(bytes: Uint8Array): string {
  // latin1 maps each byte to one char: cheap and collision-free.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The private KeyObject for a 32-byte seed (cached). */
export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new SigningError('an ed25519 seed is 32 bytes');
  const k = bytesKey(seed);
  let key = privateKeys.get(k);
  if (key === undefined) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    privateKeys.set(k, key);
  }
  return key;
}

/** The 32-byte public key of a 32-byte seed. */
export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyFromSeed(seed)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.length));
}

/** The public KeyObject for a 32-byte public key (cached). Throws for a wrong length. */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new SigningError('an ed25519 public key is 32 bytes');
  }
  const k = bytesKey(publicKey);
  let key = publicKeys.get(k);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    publicKeys.set(k, key);
  }
  return key;
}

/** A SigningKey from its version (e.g. `a_AbCd`) and 32-byte seed. */
export function signingKeyFromSeed(version: string, seed: Uint8Array): SigningKey {
  if (!KEY_VERSION.test(version)) throw new SigningError(`key version ${JSON.stringify(version)} must match [A-Za-z0-9_]+`);
  const seedCopy = new Uint8Array(seed);
  return {
    algorithm: 'ed25519',
    version,
    keyId: `ed25519:${version}`,
    seed: seedCopy,
    publicKey: publicKeyFromSeed(seedCopy),
    privateKey: privateKeyFromSeed(seedCopy),
  };
}

/** A new random key with a version `a_` + 4 random alphanumerics, as Synapse generates. */
export function generateSigningKey(): SigningKey {
  return signingKeyFromSeed(`a_${randomAlphanumeric(4)}`, randomBytes(32));
}

/**
 * Reads Synapse's signing key file: one `ed25519 <version> <base64 seed>` per
 * line. Blank lines are skipped; anything else malformed is an error naming
 * the line (never echoing the secret).
 */
export function parseSigningKeyFile(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3) {
      throw new SigningKeyFileError(`expected "ed25519 <version> <base64 seed>", found ${parts.length} fields`, i + 1);
    }
    const [algorithm, version, seedB64] = parts as [string, string, string];
    if (algorithm !== 'ed25519') {
      throw new SigningKeyFileError(`unsupported algorithm ${JSON.stringify(algorithm.slice(0, 32))}`, i + 1);
    }
    if (!KEY_VERSION.test(version)) {
      throw new SigningKeyFileError('key version must only contain A-Z, a-z, 0-9 and _', i + 1);
    }
    let seed: Uint8Array;
    try {
      seed = decodeBase64(seedB64);
    } catch (err) {
      if (err instanceof Base64Error) throw new SigningKeyFileError('the seed is not valid base64', i + 1);
      throw err;
    }
    if (seed.length !== 32) throw new SigningKeyFileError(`the seed is ${seed.length} bytes, expected 32`, i + 1);
    keys.push(signingKeyFromSeed(version, seed));
  }
  return keys;
}

/** Writes keys in Synapse's signing key file format, one per line, with a trailing newline. */
export function formatSigningKeyFile(keys: readonly SigningKey[]): string {
  return keys.map((k) => `${k.algorithm} ${k.version} ${encodeBase64(k.seed)}\n`).join('');
}

const SIGNING_SKIP: ReadonlySet<string> = new Set(['signatures', 'unsigned']);

/** The canonical JSON that a signature covers: the object without `signatures` and `unsigned`. */
export function signedBytes(obj: object): Buffer {
  return Buffer.from(canonicalJsonWithout(obj, SIGNING_SKIP), 'utf8');
}

/** The unpadded base64 Ed25519 signature of an object's signed bytes. */
export function signatureOf(obj: object, privateKey: KeyObject): string {
  return encodeBase64(sign(null, signedBytes(obj), privateKey));
}

function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** A copy of `obj` whose `signatures[serverName][keyId]` is `signature`, other signatures kept. */
export function withSignature<T extends object>(obj: T, serverName: string, keyId: string, signature: string): T & { signatures: Signatures } {
  const existing = (obj as { signatures?: unknown }).signatures;
  if (existing !== undefined && !isJsonObject(existing)) throw new SigningError('`signatures` is not an object');
  const forServer = existing !== undefined && hasOwn(existing, serverName) ? existing[serverName] : undefined;
  if (forServer !== undefined && !isJsonObject(forServer)) {
    throw new SigningError(`\`signatures[${JSON.stringify(serverName)}]\` is not an object`);
  }
  // Computed keys in literals define own properties, so even `__proto__` is safe here.
  return {
    ...obj,
    signatures: { ...(existing as Signatures | undefined), [serverName]: { ...(forServer as Record<string, string> | undefined), [keyId]: signature } },
  };
}

function checkEd25519KeyId(keyId: string): void {
  if (typeof keyId !== 'string' || !keyId.startsWith('ed25519:') || keyId.length === 8) {
    throw new SigningError(`key id ${JSON.stringify(keyId)} is not an ed25519 key id`);
  }
}

/**
 * A copy of `obj` signed by `serverName` with the key `keyId` made from `seed`.
 * The signature covers the canonical JSON of the object without `signatures`
 * and `unsigned`; signatures already present are kept. Throws
 * CanonicalJsonError if the object is not canonical JSON.
 */
export function signJson<T extends object>(obj: T, serverName: string, keyId: string, seed: Uint8Array): T & { signatures: Signatures } {
  checkEd25519KeyId(keyId);
  return withSignature(obj, serverName, keyId, signatureOf(obj, privateKeyFromSeed(seed)));
}

/** signJson with a prebuilt key (no per-call key lookup). */
export function signJsonWithKey<T extends object>(obj: T, serverName: string, key: Pick<SigningKey, 'keyId' | 'privateKey'>): T & { signatures: Signatures } {
  checkEd25519KeyId(key.keyId);
  return withSignature(obj, serverName, key.keyId, signatureOf(obj, key.privateKey));
}

/** The base64 signature string `signatures[serverName][keyId]`, if there is one. */
export function findSignature(obj: unknown, serverName: string, keyId: string): string | undefined {
  if (!isJsonObject(obj)) return undefined;
  const sigs = obj['signatures'];
  if (!isJsonObject(sigs) || !hasOwn(sigs, serverName)) return undefined;
  const forServer = sigs[serverName];
  if (!isJsonObject(forServer) || !hasOwn(forServer, keyId)) return undefined;
  const sig = forServer[keyId];
  return typeof sig === 'string' ? sig : undefined;
}

/**
 * verifyJson with a prebuilt public KeyObject. False, never a throw, when
 * anything is wrong.
 */
export function verifyJsonWithKey(obj: unknown, serverName: string, keyId: string, publicKey: KeyObject): boolean {
  try {
    if (typeof keyId !== 'string' || !keyId.startsWith('ed25519:')) return false;
    const sig = findSignature(obj, serverName, keyId);
    if (sig === undefined) return false;
    const sigBytes = decodeBase64(sig);
    if (sigBytes.length !== 64) return false;
    return verify(null, signedBytes(obj as object), publicKey, sigBytes);
  } catch {
    return false;
  }
}

/**
 * Whether `obj` carries a valid signature from `serverName` under `keyId` for
 * the 32-byte `publicKey`. Fails closed: false, never a throw, for a missing
 * signature, bad base64, wrong lengths, a non-object, an object that is not
 * canonical JSON, a non-ed25519 key id.
 */
export function verifyJson(obj: unknown, serverName: string, keyId: string, publicKey: Uint8Array): boolean {
  let key: KeyObject;
  try {
    key = publicKeyObject(publicKey);
  } catch {
    return false;
  }
  return verifyJsonWithKey(obj, serverName, keyId, key);
}

/**
 * Reading a server's key document (the answer of GET /_matrix/key/v2/server,
 * or one entry of a notary's `server_keys`): its shape, its server name, its
 * self-signature, and a notary's counter-signature.
 */
import { Base64Error, decodeBase64 } from '../../core/base64.js';
import { isJsonObject } from '../../core/json-values.js';
import { verifyJson } from '../../core/signing.js';

/** The longest validity honoured for a key (room versions 5+): 7 days after it was fetched. */
export const MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000;

export interface KeyDocumentKey {
  keyId: string;
  key: Uint8Array;
  /** The base64 as published. */
  keyBase64: string;
  /** Set for a key of `old_verify_keys`. */
  expiredTs: number | null;
}

export interface KeyDocument {
  serverName: string;
  validUntilTs: number;
  keys: KeyDocumentKey[];
  /** The document as received. */
  json: Record<string, unknown>;
}

/** Why a key document was refused. */
export class KeyDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyDocumentError';
  }
}

const isTimestamp = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function publicKey(v: unknown, where: string): { key: Uint8Array; keyBase64: string } {
  if (!isJsonObject(v) || typeof v['key'] !== 'string') throw new KeyDocumentError(`${where} has no key`);
  let key: Uint8Array;
  try {
    key = decodeBase64(v['key']);
  } catch (err) {
    if (err instanceof Base64Error) throw new KeyDocumentError(`${where} is not valid base64`);
    throw err;
  }
  if (key.length !== 32) throw new KeyDocumentError(`${where} is not a 32-byte ed25519 key`);
  return { key, keyBase64: v['key'] };
}

/**
 * The signatures of `signer` on `doc` that `keys` can check: at least one,
 * and every one of them valid. Returns a reason on failure.
 */
export function signedByAny(doc: Record<string, unknown>, signer: string, keys: ReadonlyMap<string, Uint8Array>): string | undefined {
  const sigs = doc['signatures'];
  const mine = isJsonObject(sigs) && Object.prototype.hasOwnProperty.call(sigs, signer) ? sigs[signer] : undefined;
  if (!isJsonObject(mine)) return `not signed by ${signer}`;
  let checked = 0;
  for (const keyId of Object.keys(mine)) {
    const key = keys.get(keyId);
    if (key === undefined) continue;
    if (!verifyJson(doc, signer, keyId, key)) return `bad signature by ${signer} with ${keyId}`;
    checked++;
  }
  return checked > 0 ? undefined : `not signed by ${signer} with a known key`;
}

/**
 * Parses a key document that must be `serverName`'s and checks it is signed
 * by the keys it lists. Only ed25519 keys are kept. Throws KeyDocumentError.
 */
export function parseKeyDocument(doc: unknown, serverName: string): KeyDocument {
  if (!isJsonObject(doc)) throw new KeyDocumentError('key document is not an object');
  if (doc['server_name'] !== serverName) throw new KeyDocumentError(`key document is for ${JSON.stringify(doc['server_name'])}, not ${serverName}`);
  const validUntilTs = doc['valid_until_ts'];
  if (!isTimestamp(validUntilTs)) throw new KeyDocumentError('key document has no valid_until_ts');
  const verifyKeys = doc['verify_keys'];
  if (!isJsonObject(verifyKeys)) throw new KeyDocumentError('key document has no verify_keys');
  const keys: KeyDocumentKey[] = [];
  const current = new Map<string, Uint8Array>();
  for (const [keyId, v] of Object.entries(verifyKeys)) {
    if (!keyId.startsWith('ed25519:')) continue;
    const k = publicKey(v, `verify_keys[${keyId}]`);
    current.set(keyId, k.key);
    keys.push({ keyId, ...k, expiredTs: null });
  }
  const old = doc['old_verify_keys'];
  if (old !== undefined) {
    if (!isJsonObject(old)) throw new KeyDocumentError('old_verify_keys is not an object');
    for (const [keyId, v] of Object.entries(old)) {
      if (!keyId.startsWith('ed25519:') || current.has(keyId)) continue;
      const k = publicKey(v, `old_verify_keys[${keyId}]`);
      const expiredTs = (v as Record<string, unknown>)['expired_ts'];
      if (!isTimestamp(expiredTs)) throw new KeyDocumentError(`old_verify_keys[${keyId}] has no expired_ts`);
      keys.push({ keyId, ...k, expiredTs });
    }
  }
  const problem = signedByAny(doc, serverName, current);
  if (problem !== undefined) throw new KeyDocumentError(`key document ${problem}`);
  return { serverName, validUntilTs, keys, json: doc };
}

/** A copy of a key document keeping only its own server's signatures (a notary's are dropped before re-serving it). */
export function withOnlyOriginSignatures(doc: Record<string, unknown>): Record<string, unknown> {
  const sigs = doc['signatures'];
  const name = doc['server_name'];
  const own = typeof name === 'string' && isJsonObject(sigs) && Object.prototype.hasOwnProperty.call(sigs, name) ? sigs[name] : undefined;
  return { ...doc, signatures: own === undefined ? {} : { [name as string]: own } };
}

/**
 * The two SHA-256 hashes of an event (server-server API, "Signing Events"):
 * the content hash covers the whole event and goes in `hashes.sha256`; the
 * reference hash covers the redacted event and gives v3+ event ids.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJsonWithout } from './canonical-json.js';
import { redactWith } from './redaction.js';
import { requireRoomVersion, type RoomVersion } from './room-versions.js';

// crypto.hash (Node >= 20.12) skips the Hash object; a namespace import lets
// older Node 20 releases, which lack it, fall back instead of failing to link.
const oneShotHash = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;

/** SHA-256 of a string's UTF-8 bytes (or of bytes). */
export const sha256: (data: string | Uint8Array) => Buffer =
  typeof oneShotHash === 'function' ? (data) => oneShotHash('sha256', data, 'buffer') : (data) => createHash('sha256').update(data).digest();

const CONTENT_HASH_SKIP: ReadonlySet<string> = new Set(['unsigned', 'signatures', 'hashes']);
// `age_ts` is an old top-level field; redaction drops it anyway, listed for clarity.
const REFERENCE_HASH_SKIP: ReadonlySet<string> = new Set(['signatures', 'unsigned', 'age_ts']);

/** The raw SHA-256 content hash. Throws CanonicalJsonError if the event is not canonical JSON. */
export function contentHashBytes(event: object): Buffer {
  return sha256(canonicalJsonWithout(event, CONTENT_HASH_SKIP));
}

/**
 * The content hash as unpadded base64: SHA-256 of the canonical JSON of the
 * event without `unsigned`, `signatures` and `hashes`.
 */
export function contentHash(event: object): string {
  return encodeBase64(contentHashBytes(event));
}

/**
 * Whether `hashes.sha256` matches the event's content. False, never a throw,
 * for a missing or malformed hash or an event that is not canonical JSON.
 */
export function checkContentHash(event: object): boolean {
  try {
    const hashes = (event as { hashes?: unknown }).hashes;
    if (typeof hashes !== 'object' || hashes === null) return false;
    const claimed = (hashes as { sha256?: unknown }).sha256;
    if (typeof claimed !== 'string') return false;
    const expected = decodeBase64(claimed);
    if (expected.length !== 32) return false;
    return timingSafeEqual(expected, contentHashBytes(event));
  } catch {
    return false;
  }
}

/** `referenceHash` with the room version row already looked up. */
export function referenceHashWith(event: object, version: RoomVersion): Buffer {
  return sha256(canonicalJsonWithout(redactWith(event, version), REFERENCE_HASH_SKIP));
}

/**
 * The reference hash: SHA-256 of the canonical JSON of the redacted event
 * without `signatures` and `unsigned`. Throws UnsupportedRoomVersionError or
 * CanonicalJsonError.
 */
export function referenceHash(event: object, roomVersion: string): Uint8Array {
  return referenceHashWith(event, requireRoomVersion(roomVersion));
}

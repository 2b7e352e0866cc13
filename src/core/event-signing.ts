/**
 * Hashing and signing events, and checking their signatures (server-server
 * API, "Signing Events"). The signature covers the redacted event, so it
 * stays checkable after a redaction; the content hash in `hashes.sha256`
 * covers everything else.
 */
import type { KeyObject } from 'node:crypto';
import { contentHash } from './hashes.js';
import type { Signatures } from './pdu.js';
import { redactWith } from './redaction.js';
import { requireRoomVersion, roomVersion as lookupRoomVersion } from './room-versions.js';
import { publicKeyObject, signatureOf, SigningError, verifyJsonWithKey, withSignature, type SigningKey } from './signing.js';
import { serverNameOf } from './event-format.js';

/**
 * A copy of the event with `hashes` set to `{sha256: <content hash>}` and the
 * server's signature of the redacted event added to `signatures` (existing
 * signatures kept). Throws UnsupportedRoomVersionError, CanonicalJsonError.
 */
export function hashAndSignEvent<T extends object>(
  event: T,
  roomVersion: string,
  serverName: string,
  key: Pick<SigningKey, 'keyId' | 'privateKey'>,
): T & { hashes: { sha256: string }; signatures: Signatures } {
  const version = requireRoomVersion(roomVersion);
  if (!key.keyId.startsWith('ed25519:')) throw new SigningError(`key id ${key.keyId} is not an ed25519 key id`);
  const hashed = { ...event, hashes: { sha256: contentHash(event) } };
  const signature = signatureOf(redactWith(hashed, version), key.privateKey);
  return withSignature(hashed, serverName, key.keyId, signature);
}

/**
 * A copy of an already hashed event with the server's signature of its
 * redacted form added (hashes and other signatures untouched): how a
 * resident server co-signs a restricted join, and an invitee's server an
 * invite. Throws UnsupportedRoomVersionError, CanonicalJsonError.
 */
export function addEventSignature<T extends object>(
  event: T,
  roomVersion: string,
  serverName: string,
  key: Pick<SigningKey, 'keyId' | 'privateKey'>,
): T & { signatures: Signatures } {
  const version = requireRoomVersion(roomVersion);
  if (!key.keyId.startsWith('ed25519:')) throw new SigningError(`key id ${key.keyId} is not an ed25519 key id`);
  return withSignature(event, serverName, key.keyId, signatureOf(redactWith(event, version), key.privateKey));
}

/**
 * Whether the event carries a valid signature by `serverName` under `keyId`
 * for `publicKey` (32 bytes, or a KeyObject), checked on the redacted event so
 * that redacted copies verify too. False, never a throw, for any problem,
 * including an unknown room version.
 */
export function verifyEventSignature(event: unknown, roomVersion: string, serverName: string, keyId: string, publicKey: Uint8Array | KeyObject): boolean {
  try {
    const version = lookupRoomVersion(roomVersion);
    if (version === undefined || typeof event !== 'object' || event === null || Array.isArray(event)) return false;
    const key = publicKey instanceof Uint8Array ? publicKeyObject(publicKey) : publicKey;
    return verifyJsonWithKey(redactWith(event, version), serverName, keyId, key);
  } catch {
    return false;
  }
}

export class SigningServersError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningServersError';
  }
}

function serverOf(id: unknown, what: string): string {
  const server = typeof id === 'string' ? serverNameOf(id) : undefined;
  if (server === undefined) throw new SigningServersError(`${what} has no valid server name`);
  return server;
}

/**
 * The servers whose signatures an event needs, per the spec's "Validating
 * hashes and signatures on received events":
 * - the sender's server, except for an invite made from a third-party invite
 *   (`m.room.member`, membership `invite`, with `content.third_party_invite`),
 *   which may come from another server: its proof is the `signed` block the
 *   auth rules check;
 * - v1/v2: also the server in the event id;
 * - restricted-join versions: for a join with
 *   `content.join_authorised_via_users_server`, also that user's server
 *   (joins only, as Synapse does; the auth rules check the same key on any
 *   membership).
 * The list may be empty (a third-party invite in v3+). Throws
 * SigningServersError when an id lacks a server name, so callers fail closed,
 * and UnsupportedRoomVersionError for an unknown room version.
 */
export function requiredSigningServers(event: object, roomVersion: string): string[] {
  const version = requireRoomVersion(roomVersion);
  const ev = event as Record<string, unknown>;
  const content = typeof ev['content'] === 'object' && ev['content'] !== null ? (ev['content'] as Record<string, unknown>) : {};
  const isMember = ev['type'] === 'm.room.member';
  const servers: string[] = [];
  const addServer = (s: string): void => {
    if (!servers.includes(s)) servers.push(s);
  };

  const inviteVia3pid = isMember && content['membership'] === 'invite' && content['third_party_invite'] !== undefined;
  if (!inviteVia3pid) addServer(serverOf(ev['sender'], 'sender'));
  if (version.eventIdFormat === 'v1') addServer(serverOf(ev['event_id'], 'event_id'));
  if (version.restrictedJoinRule && isMember && content['membership'] === 'join' && content['join_authorised_via_users_server'] !== undefined) {
    addServer(serverOf(content['join_authorised_via_users_server'], 'join_authorised_via_users_server'));
  }
  return servers;
}

/** Public keys of one server by key id, e.g. `{"ed25519:a_AbCd": <32 bytes>}`. */
export type ServerKeys = ReadonlyMap<string, Uint8Array | KeyObject>;

export type EventSignatureCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks all signatures an event needs. For each required server, the
 * signatures under key ids in `keysFor(server)` must all verify, and there
 * must be at least one; signatures under key ids we have no key for are
 * skipped, as the spec says. Expired keys (v5+: `valid_until_ts` before the
 * event's `origin_server_ts`) must be left out by `keysFor`. Never throws.
 */
export function checkEventSignatures(event: unknown, roomVersion: string, keysFor: (serverName: string) => ServerKeys | undefined): EventSignatureCheck {
  try {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return { ok: false, reason: 'not an object' };
    const version = lookupRoomVersion(roomVersion);
    if (version === undefined) return { ok: false, reason: `unsupported room version ${roomVersion}` };
    const redacted = redactWith(event, version);
    const signatures = (event as { signatures?: unknown }).signatures;
    for (const server of requiredSigningServers(event, roomVersion)) {
      const sigs =
        typeof signatures === 'object' && signatures !== null && Object.prototype.hasOwnProperty.call(signatures, server)
          ? (signatures as Record<string, unknown>)[server]
          : undefined;
      if (typeof sigs !== 'object' || sigs === null) return { ok: false, reason: `not signed by ${server}` };
      const keys = keysFor(server);
      let checked = 0;
      for (const keyId of Object.keys(sigs)) {
        if (!keyId.startsWith('ed25519:')) continue;
        const key = keys?.get(keyId);
        if (key === undefined) continue;
        const keyObject = key instanceof Uint8Array ? publicKeyObject(key) : key;
        if (!verifyJsonWithKey(redacted, server, keyId, keyObject)) {
          return { ok: false, reason: `bad signature by ${server} with ${keyId}` };
        }
        checked++;
      }
      if (checked === 0) return { ok: false, reason: `no signature by ${server} with a known key` };
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : 'signature check failed' };
  }
}

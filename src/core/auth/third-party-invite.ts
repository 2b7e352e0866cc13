/**
 * The signature test of third-party invites: "if any signature in `signed`
 * matches any public key in the `m.room.third_party_invite` event, allow".
 * The keys are `content.public_key` and each `content.public_keys[].public_key`,
 * unpadded base64 in the standard or URL-safe alphabet.
 */
import { Base64Error, decodeBase64, decodeBase64Url } from '../base64.js';
import type { JsonObject } from '../pdu.js';
import { verifyJson } from '../signing.js';
import { isObject } from './json.js';

function decodeKey(s: string): Uint8Array | undefined {
  try {
    return decodeBase64(s);
  } catch (e) {
    if (!(e instanceof Base64Error)) throw e;
  }
  try {
    return decodeBase64Url(s);
  } catch (e) {
    if (!(e instanceof Base64Error)) throw e;
    return undefined;
  }
}

/** The public keys a third-party invite event offers, decoded; bad entries are skipped. */
function publicKeys(inviteContent: JsonObject): Uint8Array[] {
  const out: Uint8Array[] = [];
  const single = inviteContent['public_key'];
  if (typeof single === 'string') {
    const k = decodeKey(single);
    if (k !== undefined) out.push(k);
  }
  const list = inviteContent['public_keys'];
  if (Array.isArray(list)) {
    for (const entry of list) {
      if (!isObject(entry)) continue;
      const pk = entry['public_key'];
      if (typeof pk !== 'string') continue;
      const k = decodeKey(pk);
      if (k !== undefined) out.push(k);
    }
  }
  return out;
}

/** Whether any Ed25519 signature in `signed` verifies with any key of the invite event. */
export function verifyThirdPartyInviteSigned(signed: JsonObject, inviteContent: JsonObject): boolean {
  const signatures = signed['signatures'];
  if (!isObject(signatures)) return false;
  const keys = publicKeys(inviteContent);
  if (keys.length === 0) return false;
  for (const server of Object.keys(signatures)) {
    const block = signatures[server];
    if (!isObject(block)) continue;
    for (const keyId of Object.keys(block)) {
      if (!keyId.startsWith('ed25519:')) continue;
      for (const key of keys) {
        if (verifyJson(signed, server, keyId, key)) return true;
      }
    }
  }
  return false;
}

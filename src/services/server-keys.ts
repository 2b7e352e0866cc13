/**
 * Our signing keys: loaded from Synapse's key file, and the signed
 * /_matrix/key/v2/server document built from them (re-signed only when it
 * nears expiry, since every remote server asks for it).
 */
import { readFileSync } from 'node:fs';
import { encodeBase64 } from '../core/base64.js';
import { parseSigningKeyFile, signJsonWithKey, type SigningKey } from '../core/signing.js';
import { StartupError } from '../startup-error.js';

export interface ServerKeys {
  readonly serverName: string;
  /** The key new signatures are made with: the first in the file, as Synapse uses. */
  readonly current: SigningKey;
  /** Every key in the file (Synapse's file may hold several; all are published). */
  readonly all: readonly SigningKey[];
  readonly oldVerifyKeys: Readonly<Record<string, { key: string; expired_ts: number }>>;
  readonly validityMs: number;
  /** The signed key document; cached until half its validity has passed. */
  keyDocument(now?: number): Record<string, unknown>;
}

/** A missing or unreadable signing key file: the operator's to fix. */
export class ServerKeysError extends StartupError {}

export function loadServerKeys(serverName: string, path: string, oldVerifyKeys: Record<string, { key: string; expired_ts: number }>, validityMs: number): ServerKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ServerKeysError(
      `cannot read signing key file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}); ` + 'generate one with --generate-config or --generate-keys',
    );
  }
  let keys: SigningKey[];
  try {
    keys = parseSigningKeyFile(text);
  } catch (err) {
    throw new ServerKeysError(`${path}: ${(err as Error).message}`);
  }
  const current = keys[0];
  if (!current) throw new ServerKeysError(`${path}: no signing key in file`);

  let cached: { doc: Record<string, unknown>; refreshAt: number } | undefined;
  return {
    serverName,
    current,
    all: keys,
    oldVerifyKeys,
    validityMs,
    keyDocument(now = Date.now()) {
      if (cached && now < cached.refreshAt) return cached.doc;
      const verifyKeys: Record<string, { key: string }> = {};
      for (const k of keys) verifyKeys[k.keyId] = { key: encodeBase64(k.publicKey) };
      const unsigned = {
        server_name: serverName,
        verify_keys: verifyKeys,
        old_verify_keys: { ...oldVerifyKeys },
        valid_until_ts: now + validityMs,
      };
      let doc = unsigned as Record<string, unknown>;
      for (const k of keys) doc = signJsonWithKey(doc, serverName, k);
      cached = { doc, refreshAt: now + validityMs / 2 };
      return doc;
    },
  };
}

/**
 * The keyring: other servers' verify keys, for checking the signatures on
 * their events and requests. A key is looked up in memory, then in the
 * database (`server_keys`), then fetched: from the server itself
 * (GET /_matrix/key/v2/server) and, when that fails or lacks the key, from
 * each `trusted_key_servers` notary in turn (POST /_matrix/key/v2/query).
 *
 * Validity: a current key is good until the lesser of its document's
 * `valid_until_ts` and 7 days after it was fetched (the spec's cap); a key
 * from `old_verify_keys` only for signatures made before its `expired_ts`.
 * Lookups for one server share one fetch, and a fetch that did not give what
 * was asked for keeps that server from being fetched again for a minute.
 *
 * It also answers notary queries for others (`notaryQuery`): the stored
 * documents (fetched again directly when stale), each keeping only its
 * server's signatures and counter-signed by us.
 */
import type { Logger } from 'pino';
import { decodeBase64, encodeBase64 } from '../../core/base64.js';
import { isJsonObject } from '../../core/json-values.js';
import { signJsonWithKey, verifyJson } from '../../core/signing.js';
import type { Database } from '../../storage/database.js';
import { type ServerKeyRow, serverKeysOf, storeServerKeys } from '../../storage/server-keys.js';
import type { ServerKeys } from '../server-keys.js';
import { type KeyDocument, KeyDocumentError, MAX_KEY_VALIDITY_MS, parseKeyDocument, signedByAny, withOnlyOriginSignatures } from './key-document.js';
import type { KeyFetchTransport } from './key-transport.js';

export interface TrustedKeyServer {
  server_name: string;
  verify_keys?: Record<string, string>;
  accept_keys_insecurely?: boolean;
}

export interface KeyringOptions {
  database: Database;
  /** Our own keys: our name is answered from them, and notary answers are counter-signed with them. */
  keys: ServerKeys;
  transport: KeyFetchTransport;
  trustedKeyServers: readonly TrustedKeyServer[];
  logger: Logger;
  /** How long a fetch that gave nothing keeps a server from being fetched again (default 60 s). */
  failureBackoffMs?: number;
  /** The clock (ms); tests of validity pass their own. */
  now?: () => number;
}

export interface VerifyKeyOptions {
  /** When the signature was made (an event's origin_server_ts): needed for a key of old_verify_keys. */
  atTs?: number;
  /** The key must be valid at least until then (room versions 5+: the event's origin_server_ts). */
  minValidUntilTs?: number;
}

export type SignatureCheck = { ok: true; keyIds: string[] } | { ok: false; reason: string };

/** A notary query: server name to key id to its criteria (an empty object asks for every key). */
export type NotaryRequest = Record<string, Record<string, { minimum_valid_until_ts?: number }>>;

interface CachedKey {
  key: Uint8Array;
  validUntilTs: number;
  expiredTs: number | null;
  fetchedAt: number;
}

/** At most this many servers' keys are held in memory (the oldest loaded is dropped). */
const MAX_CACHED_SERVERS = 10_000;
/** Notary queries fetch at most this many servers at once. */
const NOTARY_FETCH_CONCURRENCY = 8;

/** The moment until which a current key counts as valid: its document's word, capped at 7 days after fetching. */
export function effectiveValidUntil(k: { validUntilTs: number; fetchedAt: number }): number {
  return Math.min(k.validUntilTs, k.fetchedAt + MAX_KEY_VALIDITY_MS);
}

function usable(k: CachedKey, opts: VerifyKeyOptions): boolean {
  if (k.expiredTs !== null) {
    const at = opts.atTs ?? opts.minValidUntilTs;
    return at !== undefined && at < k.expiredTs;
  }
  return opts.minValidUntilTs === undefined || effectiveValidUntil(k) >= opts.minValidUntilTs;
}

export class Keyring {
  private readonly cache = new Map<string, Map<string, CachedKey>>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly failedUntil = new Map<string, number>();
  private readonly now: () => number;
  private readonly backoffMs: number;
  private readonly notaryKeys: ReadonlyMap<string, ReadonlyMap<string, Uint8Array> | undefined>;

  constructor(private readonly o: KeyringOptions) {
    this.now = o.now ?? Date.now;
    this.backoffMs = o.failureBackoffMs ?? 60_000;
    const notaryKeys = new Map<string, Map<string, Uint8Array> | undefined>();
    for (const ks of o.trustedKeyServers) {
      if (ks.verify_keys === undefined) {
        notaryKeys.set(ks.server_name, undefined);
        continue;
      }
      const m = new Map<string, Uint8Array>();
      for (const [keyId, b64] of Object.entries(ks.verify_keys)) {
        try {
          const key = decodeBase64(b64);
          if (key.length === 32) m.set(keyId, key);
          else o.logger.warn({ notary: ks.server_name, key_id: keyId }, 'trusted key server verify key is not 32 bytes; ignored');
        } catch {
          o.logger.warn({ notary: ks.server_name, key_id: keyId }, 'trusted key server verify key is not base64; ignored');
        }
      }
      notaryKeys.set(ks.server_name, m);
    }
    this.notaryKeys = notaryKeys;
  }

  private get serverName(): string {
    return this.o.keys.serverName;
  }

  /**
   * Logs, once at start, the warning about relying on matrix.org as a
   * notary, as Synapse does. (A notary without `verify_keys` is trusted on
   * its TLS certificate, as in Synapse, which refuses such a notary only
   * when certificates are not verified; `accept_keys_insecurely` is then
   * the operator's consent.)
   */
  logStartupWarnings(suppressKeyServerWarning: boolean): void {
    const log = this.o.logger;
    if (!suppressKeyServerWarning && this.o.trustedKeyServers.some((k) => k.server_name === 'matrix.org')) {
      log.warn(
        "trusted_key_servers names 'matrix.org': keys of other servers may be fetched through it. " +
          'It is a reasonable choice, but you may prefer another notary or none (trusted_key_servers: []). ' +
          'Set suppress_key_server_warning: true in homeserver.yaml to keep using matrix.org without this warning.',
      );
    }
  }

  /** The public key `keyId` of `serverName`, if one valid for `opts` can be had. */
  async verifyKey(serverName: string, keyId: string, opts: VerifyKeyOptions = {}): Promise<Uint8Array | undefined> {
    if (serverName === this.serverName) return this.ownKey(keyId, opts);
    let fetchedOurselves = false;
    for (;;) {
      const known = await this.known(serverName, keyId, opts);
      if (known) return known;
      const pending = this.inFlight.get(serverName);
      if (pending) {
        await pending;
        continue;
      }
      if (fetchedOurselves || this.backingOff(serverName)) return undefined;
      fetchedOurselves = true;
      await this.fetchShared(serverName, async () => {
        await this.fetch(serverName, keyId, opts);
        const k = this.cache.get(serverName)?.get(keyId);
        return k !== undefined && usable(k, opts);
      });
    }
  }

  /**
   * Whether `obj` (an event, a request) carries a valid signature of
   * `serverName`: every ed25519 signature of it whose key can be had must
   * verify, and at least one must.
   */
  async verifyJsonSignature(obj: unknown, serverName: string, opts: VerifyKeyOptions = {}): Promise<SignatureCheck> {
    if (!isJsonObject(obj)) return { ok: false, reason: 'not a JSON object' };
    const sigs = obj['signatures'];
    const mine = isJsonObject(sigs) && Object.prototype.hasOwnProperty.call(sigs, serverName) ? sigs[serverName] : undefined;
    const keyIds = isJsonObject(mine) ? Object.keys(mine).filter((k) => k.startsWith('ed25519:')) : [];
    if (keyIds.length === 0) return { ok: false, reason: `not signed by ${serverName}` };
    const verified: string[] = [];
    for (const keyId of keyIds) {
      const key = await this.verifyKey(serverName, keyId, opts);
      if (key === undefined) continue;
      if (!verifyJson(obj, serverName, keyId, key)) return { ok: false, reason: `invalid signature by ${serverName} with ${keyId}` };
      verified.push(keyId);
    }
    if (verified.length === 0) return { ok: false, reason: `no valid key of ${serverName} found for ${keyIds.join(', ')}` };
    return { ok: true, keyIds: verified };
  }

  /**
   * A notary's answer: for each server asked about, its key documents (our
   * own from our keys), each with only its server's signatures and
   * counter-signed by us. Stored documents that do not satisfy the query are
   * fetched again directly first; a server that cannot be had gives nothing.
   * A server asked about with no key ids wants every key valid until
   * `minimumForAllKeys` (default now).
   */
  async notaryQuery(request: NotaryRequest, minimumForAllKeys?: number): Promise<{ server_keys: Record<string, unknown>[] }> {
    const now = this.now();
    const allMinimum = minimumForAllKeys ?? now;
    const names = Object.keys(request);
    const out: Record<string, unknown>[][] = names.map(() => []);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        const name = names[i]!;
        out[i] = await this.notaryDocuments(name, request[name] ?? {}, now, allMinimum);
      }
    };
    await Promise.all(Array.from({ length: Math.min(NOTARY_FETCH_CONCURRENCY, names.length) }, worker));
    return { server_keys: out.flat() };
  }

  private async notaryDocuments(name: string, criteria: Record<string, { minimum_valid_until_ts?: number }>, now: number, allMinimum: number): Promise<Record<string, unknown>[]> {
    if (name === this.serverName) return [this.o.keys.keyDocument()];
    const wanted = Object.entries(criteria);
    const minOf = (c: { minimum_valid_until_ts?: number }) => c.minimum_valid_until_ts ?? now;
    const satisfied = (rows: ServerKeyRow[]) => {
      const current = rows.filter((r) => r.expired_ts === null);
      if (wanted.length === 0) {
        return current.length > 0 && current.every((r) => r.valid_until_ts >= allMinimum);
      }
      return wanted.every(([keyId, c]) => rows.some((r) => r.key_id === keyId && r.valid_until_ts >= minOf(c)));
    };
    let rows = await serverKeysOf(this.o.database.db, name);
    if (!satisfied(rows) && !this.backingOff(name)) {
      const pending = this.inFlight.get(name);
      if (pending) await pending;
      else await this.fetchShared(name, async () => (await this.fetchDirect(name)) && satisfied(await serverKeysOf(this.o.database.db, name)));
      rows = await serverKeysOf(this.o.database.db, name);
    }
    const docs = new Map<string, Record<string, unknown>>();
    for (const r of rows) {
      const doc = withOnlyOriginSignatures(r.key_json);
      const key = JSON.stringify([doc['valid_until_ts'], doc['verify_keys'], doc['old_verify_keys']]);
      if (!docs.has(key)) docs.set(key, doc);
    }
    return [...docs.values()].map((d) => this.counterSign(d));
  }

  private counterSign(doc: Record<string, unknown>): Record<string, unknown> {
    let signed = doc;
    for (const k of this.o.keys.all) signed = signJsonWithKey(signed, this.serverName, k);
    return signed;
  }

  private ownKey(keyId: string, opts: VerifyKeyOptions): Uint8Array | undefined {
    const k = this.o.keys.all.find((x) => x.keyId === keyId);
    if (k) return k.publicKey;
    const old = this.o.keys.oldVerifyKeys[keyId];
    if (!old) return undefined;
    const at = opts.atTs ?? opts.minValidUntilTs;
    if (at === undefined || at >= old.expired_ts) return undefined;
    try {
      return decodeBase64(old.key);
    } catch {
      return undefined;
    }
  }

  /** From memory, else from the database (loading all of the server's keys). */
  private async known(serverName: string, keyId: string, opts: VerifyKeyOptions): Promise<Uint8Array | undefined> {
    let forServer = this.cache.get(serverName);
    const hit = forServer?.get(keyId);
    if (hit && usable(hit, opts)) return hit.key;
    const rows = await serverKeysOf(this.o.database.db, serverName);
    if (rows.length > 0) {
      forServer = this.cacheFor(serverName);
      for (const r of rows) {
        try {
          forServer.set(r.key_id, { key: decodeBase64(r.key), validUntilTs: r.valid_until_ts, expiredTs: r.expired_ts, fetchedAt: r.fetched_at });
        } catch {
          // A row we could not have written; skipped.
        }
      }
    }
    const row = forServer?.get(keyId);
    return row && usable(row, opts) ? row.key : undefined;
  }

  private cacheFor(serverName: string): Map<string, CachedKey> {
    let m = this.cache.get(serverName);
    if (!m) {
      if (this.cache.size >= MAX_CACHED_SERVERS) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      m = new Map();
      this.cache.set(serverName, m);
    }
    return m;
  }

  private backingOff(serverName: string): boolean {
    return (this.failedUntil.get(serverName) ?? 0) > this.now();
  }

  /**
   * Runs one fetch for a server that others may wait on. When it did not
   * give what it was for (`run` answers false, or throws), the server is left
   * alone for the back-off, marked before any waiter wakes.
   */
  private async fetchShared(serverName: string, run: () => Promise<boolean>): Promise<void> {
    const p = run()
      .catch((err: unknown) => {
        this.o.logger.warn({ server: serverName, err: (err as Error).message }, 'key fetch failed');
        return false;
      })
      .then((ok) => {
        if (ok) this.failedUntil.delete(serverName);
        else this.failedUntil.set(serverName, this.now() + this.backoffMs);
      })
      .finally(() => this.inFlight.delete(serverName));
    this.inFlight.set(serverName, p);
    await p;
  }

  /** Direct first; then each notary until the key is had. */
  private async fetch(serverName: string, keyId: string, opts: VerifyKeyOptions): Promise<void> {
    const done = () => {
      const k = this.cache.get(serverName)?.get(keyId);
      return k !== undefined && usable(k, opts);
    };
    await this.fetchDirect(serverName);
    if (done()) return;
    const minimum = Math.max(opts.minValidUntilTs ?? 0, this.now());
    for (const notary of this.o.trustedKeyServers) {
      await this.fetchFromNotary(notary.server_name, serverName, keyId, minimum);
      if (done()) return;
    }
  }

  /** GET the server's own document; false when it could not be had. */
  private async fetchDirect(serverName: string): Promise<boolean> {
    let answer: unknown;
    try {
      answer = await this.o.transport.getServerKeys(serverName);
    } catch (err) {
      this.o.logger.info({ server: serverName, err: (err as Error).message }, 'could not fetch server keys directly');
      return false;
    }
    try {
      await this.accept(parseKeyDocument(answer, serverName), serverName);
      return true;
    } catch (err) {
      if (!(err instanceof KeyDocumentError)) throw err;
      this.o.logger.warn({ server: serverName, reason: err.message }, 'refused key document');
      return false;
    }
  }

  private async fetchFromNotary(notary: string, serverName: string, keyId: string, minimum: number): Promise<void> {
    let answer: unknown;
    try {
      answer = await this.o.transport.queryNotary(notary, { server_keys: { [serverName]: { [keyId]: { minimum_valid_until_ts: minimum } } } });
    } catch (err) {
      this.o.logger.info({ server: serverName, notary, err: (err as Error).message }, 'could not query notary for server keys');
      return;
    }
    const list = isJsonObject(answer) ? answer['server_keys'] : undefined;
    if (!Array.isArray(list)) {
      this.o.logger.warn({ server: serverName, notary }, 'notary answer has no server_keys list');
      return;
    }
    const notaryKeys = this.notaryKeys.get(notary);
    for (const entry of list) {
      if (!isJsonObject(entry) || entry['server_name'] !== serverName) continue;
      try {
        const doc = parseKeyDocument(entry, serverName);
        if (notaryKeys !== undefined) {
          const problem = signedByAny(entry, notary, notaryKeys);
          if (problem !== undefined) throw new KeyDocumentError(`notary answer ${problem}`);
        }
        await this.accept(doc, notary);
      } catch (err) {
        if (!(err instanceof KeyDocumentError)) throw err;
        this.o.logger.warn({ server: serverName, notary, reason: err.message }, 'refused key document from notary');
      }
    }
  }

  /** Stores a checked document and puts its keys in memory. */
  private async accept(doc: KeyDocument, from: string): Promise<void> {
    const fetchedAt = this.now();
    await storeServerKeys(
      this.o.database.db,
      doc.keys.map((k) => ({
        server_name: doc.serverName,
        key_id: k.keyId,
        key: encodeBase64(k.key),
        valid_until_ts: doc.validUntilTs,
        expired_ts: k.expiredTs,
        fetched_at: fetchedAt,
        from_server: from,
        key_json: doc.json,
      })),
    );
    const forServer = this.cacheFor(doc.serverName);
    for (const k of doc.keys) {
      const had = forServer.get(k.keyId);
      if (had && had.validUntilTs > doc.validUntilTs) continue;
      forServer.set(k.keyId, { key: k.key, validUntilTs: doc.validUntilTs, expiredTs: k.expiredTs, fetchedAt });
    }
  }
}

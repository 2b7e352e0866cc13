/**
 * The keyring against a real database (PostgreSQL or embedded, as
 * AXON_TEST_DB says), with transports that hand out real key documents:
 * made by loadServerKeys from generated keys, some tampered with after
 * signing, some answered by a notary that counter-signs them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../src/core/base64.js';
import { formatSigningKeyFile, generateSigningKey, signJsonWithKey, type SigningKey, verifyJson } from '../../src/core/signing.js';
import { createLogger } from '../../src/logger.js';
import type { KeyFetchTransport } from '../../src/services/federation/key-transport.js';
import { Keyring, type TrustedKeyServer } from '../../src/services/federation/keyring.js';
import { loadServerKeys, type ServerKeys } from '../../src/services/server-keys.js';
import type { Database } from '../../src/storage/database.js';
import { type OpenedTestDatabase, openMigratedTestDatabase } from '../helpers/database.js';

const DAY = 24 * 60 * 60 * 1000;
let database: Database;
let opened: OpenedTestDatabase | undefined;
/** Where the test servers' key files go. */
const dir = mkdtempSync(join(tmpdir(), 'axon-keyring-'));

beforeAll(async () => {
  opened = await openMigratedTestDatabase();
  database = opened.database;
});

afterAll(async () => {
  await opened?.close();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
/** A server with real keys, its documents made by loadServerKeys. */
function server(name = `remote${++seq}.test`, opts: { old?: Record<string, { key: string; expired_ts: number }>; validityMs?: number } = {}): ServerKeys {
  const key = generateSigningKey();
  const path = join(dir, `${name}.key`);
  writeFileSync(path, formatSigningKeyFile([key]));
  return loadServerKeys(name, path, opts.old ?? {}, opts.validityMs ?? DAY);
}

interface Counting extends KeyFetchTransport {
  direct: number;
  notary: number;
}

function transport(direct: Record<string, () => unknown>, notaries: Record<string, (body: object) => unknown> = {}): Counting {
  const t: Counting = {
    direct: 0,
    notary: 0,
    async getServerKeys(name) {
      t.direct++;
      const f = direct[name];
      if (!f) throw new Error(`${name} unreachable`);
      return structuredClone(f());
    },
    async queryNotary(notary, body) {
      t.notary++;
      const f = notaries[notary];
      if (!f) throw new Error(`${notary} unreachable`);
      return structuredClone(f(body));
    },
  };
  return t;
}

const me = server('me.test');
function keyring(t: KeyFetchTransport, trusted: TrustedKeyServer[] = [], extra: { now?: () => number } = {}): Keyring {
  return new Keyring({ database, keys: me, transport: t, trustedKeyServers: trusted, logger: createLogger('silent'), ...extra });
}

const signed = (s: ServerKeys, obj: Record<string, unknown> = { hello: 'world', n: ++seq }) => signJsonWithKey(obj, s.serverName, s.current);

describe('direct fetches', () => {
  it('takes a self-signed document and checks signatures with its key', async () => {
    const a = server();
    const t = transport({ [a.serverName]: () => a.keyDocument() });
    const kr = keyring(t);
    const key = await kr.verifyKey(a.serverName, a.current.keyId, { minValidUntilTs: Date.now() });
    expect(key && encodeBase64(key)).toBe(encodeBase64(a.current.publicKey));
    const obj = signed(a);
    expect(await kr.verifyJsonSignature(obj, a.serverName)).toEqual({ ok: true, keyIds: [a.current.keyId] });
    const tampered = { ...obj, hello: 'there' };
    const bad = await kr.verifyJsonSignature(tampered, a.serverName);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.reason).toContain('invalid signature');
    expect((await kr.verifyJsonSignature({ hello: 1 }, a.serverName)).ok).toBe(false);
    // A signature by a key the server does not publish: no key to check it with.
    const stranger = signJsonWithKey({ x: 1 }, a.serverName, generateSigningKey());
    const none = await kr.verifyJsonSignature(stranger, a.serverName);
    expect(!none.ok && none.reason).toContain('no valid key');
    expect(t.direct).toBe(2);
  });

  it('refuses a document for another server name', async () => {
    const a = server();
    const b = server();
    const t = transport({ [a.serverName]: () => b.keyDocument() });
    expect(await keyring(t).verifyKey(a.serverName, b.current.keyId)).toBeUndefined();
    expect(t.direct).toBe(1);
  });

  it('refuses a document whose self-signature does not verify', async () => {
    const a = server();
    const t = transport({ [a.serverName]: () => ({ ...a.keyDocument(), valid_until_ts: Date.now() + 30 * DAY }) });
    expect(await keyring(t).verifyKey(a.serverName, a.current.keyId)).toBeUndefined();
    // Signed by a key it does not list.
    const other = generateSigningKey();
    const doc = a.keyDocument();
    const { signatures: _drop, ...unsigned } = doc;
    const t2 = transport({ [a.serverName]: () => signJsonWithKey(unsigned, a.serverName, other) });
    expect(await keyring(t2).verifyKey(a.serverName, a.current.keyId)).toBeUndefined();
  });

  it('honours valid_until_ts for room versions 5+ and caps it at 7 days after fetching', async () => {
    const now = Date.now();
    const expired = server();
    const t = transport({ [expired.serverName]: () => expired.keyDocument(now - 10 * DAY) });
    const kr = keyring(t);
    expect(await kr.verifyKey(expired.serverName, expired.current.keyId, { minValidUntilTs: now })).toBeUndefined();
    // Rooms v1-4 ignore the validity: the stored key answers, without another fetch.
    expect(await kr.verifyKey(expired.serverName, expired.current.keyId)).toBeDefined();
    expect(await kr.verifyKey(expired.serverName, expired.current.keyId, { minValidUntilTs: now - 10 * DAY })).toBeDefined();

    const long = server(undefined, { validityMs: 30 * DAY });
    const kr2 = keyring(transport({ [long.serverName]: () => long.keyDocument(now) }), [], { now: () => now });
    expect(await kr2.verifyKey(long.serverName, long.current.keyId, { minValidUntilTs: now + 6 * DAY })).toBeDefined();
    expect(await kr2.verifyKey(long.serverName, long.current.keyId, { minValidUntilTs: now + 8 * DAY })).toBeUndefined();
  });

  it('uses a key of old_verify_keys only for signatures made before its expired_ts', async () => {
    const retired = generateSigningKey();
    const expiredTs = Date.now() - DAY;
    const a = server(undefined, { old: { [retired.keyId]: { key: encodeBase64(retired.publicKey), expired_ts: expiredTs } } });
    const kr = keyring(transport({ [a.serverName]: () => a.keyDocument() }));
    expect(await kr.verifyKey(a.serverName, retired.keyId, { atTs: expiredTs - 1 })).toBeDefined();
    expect(await kr.verifyKey(a.serverName, retired.keyId, { atTs: expiredTs + 1 })).toBeUndefined();
    expect(await kr.verifyKey(a.serverName, retired.keyId)).toBeUndefined();
    const old = signJsonWithKey({ old: true }, a.serverName, retired);
    expect((await kr.verifyJsonSignature(old, a.serverName, { atTs: expiredTs - 1000 })).ok).toBe(true);
    expect((await kr.verifyJsonSignature(old, a.serverName, { atTs: expiredTs + 1000 })).ok).toBe(false);
  });
});

describe('notaries', () => {
  const notaryKey = generateSigningKey();
  const notaryName = 'notary.test';
  /** A notary answering from `source` (the documents it holds), counter-signed with `key`. */
  const notary =
    (source: Record<string, ServerKeys>, key: SigningKey = notaryKey) =>
    (body: object) => {
      const asked = Object.keys((body as { server_keys: Record<string, unknown> }).server_keys);
      return { server_keys: asked.filter((n) => source[n]).map((n) => signJsonWithKey(source[n]!.keyDocument(), notaryName, key)) };
    };
  const trusted = (verify = true): TrustedKeyServer[] => [
    verify ? { server_name: notaryName, verify_keys: { [notaryKey.keyId]: encodeBase64(notaryKey.publicKey) } } : { server_name: notaryName },
  ];

  it('asks a notary when the server cannot be reached, with minimum_valid_until_ts', async () => {
    const a = server();
    const bodies: object[] = [];
    const t = transport({}, { [notaryName]: (body) => (bodies.push(body), notary({ [a.serverName]: a })(body)) });
    const min = Date.now() + 1000;
    expect(await keyring(t, trusted()).verifyKey(a.serverName, a.current.keyId, { minValidUntilTs: min })).toBeDefined();
    expect(t.direct).toBe(1);
    expect(bodies).toEqual([{ server_keys: { [a.serverName]: { [a.current.keyId]: { minimum_valid_until_ts: min } } } }]);
  });

  it('refuses a notary answer not signed by the notary key configured', async () => {
    const a = server();
    const t = transport({}, { [notaryName]: notary({ [a.serverName]: a }, generateSigningKey()) });
    expect(await keyring(t, trusted()).verifyKey(a.serverName, a.current.keyId)).toBeUndefined();
    // Without verify_keys configured, the notary's signature is not required (Synapse's rule).
    const t2 = transport({}, { [notaryName]: notary({ [a.serverName]: a }, generateSigningKey()) });
    expect(await keyring(t2, trusted(false)).verifyKey(a.serverName, a.current.keyId)).toBeDefined();
  });

  it('refuses a document from a notary that its server did not sign', async () => {
    const a = server();
    const forged = server(a.serverName);
    // The notary vouches for keys the server never published, signed by someone else's key.
    const t = transport(
      {},
      {
        [notaryName]: () => {
          const doc = { ...a.keyDocument(), verify_keys: forged.keyDocument()['verify_keys'] };
          return { server_keys: [signJsonWithKey(doc, notaryName, notaryKey)] };
        },
      },
    );
    expect(await keyring(t, trusted()).verifyKey(a.serverName, forged.current.keyId)).toBeUndefined();
  });
});

describe('caching and sharing', () => {
  it('a second keyring over the same database answers without fetching', async () => {
    const a = server();
    const t = transport({ [a.serverName]: () => a.keyDocument() });
    expect(await keyring(t).verifyKey(a.serverName, a.current.keyId)).toBeDefined();
    const dead = transport({});
    const again = await keyring(dead).verifyKey(a.serverName, a.current.keyId, { minValidUntilTs: Date.now() });
    expect(again && encodeBase64(again)).toBe(encodeBase64(a.current.publicKey));
    expect(dead.direct + dead.notary).toBe(0);
  });

  it('concurrent lookups for one server share one fetch', async () => {
    const a = server();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let asked!: () => void;
    const askedOnce = new Promise<void>((r) => (asked = r));
    const t = transport({});
    t.getServerKeys = async () => {
      t.direct++;
      asked();
      await gate;
      return a.keyDocument();
    };
    const kr = keyring(t);
    const first = kr.verifyKey(a.serverName, a.current.keyId);
    await askedOnce;
    const others = [kr.verifyKey(a.serverName, a.current.keyId), kr.verifyJsonSignature(signed(a), a.serverName)];
    release();
    const [k1, k2, check] = await Promise.all([first, ...others]);
    expect(k1).toBeDefined();
    expect(k2).toBeDefined();
    expect(check).toMatchObject({ ok: true });
    expect(t.direct).toBe(1);
  });

  it('a server that cannot be had is not asked again at once', async () => {
    const t = transport({}, {});
    const kr = keyring(t, [{ server_name: 'notary.test' }]);
    expect(await kr.verifyKey('dead.test', 'ed25519:x')).toBeUndefined();
    expect(await kr.verifyKey('dead.test', 'ed25519:x')).toBeUndefined();
    expect((await kr.verifyJsonSignature({ signatures: { 'dead.test': { 'ed25519:x': 'AAAA' } } }, 'dead.test')).ok).toBe(false);
    expect([t.direct, t.notary]).toEqual([1, 1]);
    // Concurrent lookups of a dead server: one fetch, and every one of them told no.
    const t3 = transport({});
    const kr3 = keyring(t3);
    expect(await Promise.all([kr3.verifyKey('dead3.test', 'ed25519:x'), kr3.verifyKey('dead3.test', 'ed25519:y'), kr3.verifyKey('dead3.test', 'ed25519:x')])).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(t3.direct).toBe(1);
    // With no back-off, each lookup tries again.
    const t2 = transport({});
    const kr2 = new Keyring({ database, keys: me, transport: t2, trustedKeyServers: [], logger: createLogger('silent'), failureBackoffMs: 0 });
    await kr2.verifyKey('dead2.test', 'ed25519:x');
    await kr2.verifyKey('dead2.test', 'ed25519:x');
    expect(t2.direct).toBe(2);
  });

  it('answers our own keys without fetching', async () => {
    const t = transport({});
    const k = await keyring(t).verifyKey(me.serverName, me.current.keyId);
    expect(k && encodeBase64(k)).toBe(encodeBase64(me.current.publicKey));
    expect(t.direct).toBe(0);
  });
});

describe('notaryQuery', () => {
  it('serves stored documents with only their server signature and ours', async () => {
    const a = server();
    const nk = generateSigningKey();
    // Stored from a notary's answer: the notary's signature is dropped when we serve it.
    const t = transport({}, { 'n.test': () => ({ server_keys: [signJsonWithKey(a.keyDocument(), 'n.test', nk)] }) });
    const kr = keyring(t, [{ server_name: 'n.test', verify_keys: { [nk.keyId]: encodeBase64(nk.publicKey) } }]);
    expect(await kr.verifyKey(a.serverName, a.current.keyId)).toBeDefined();
    const { server_keys } = await kr.notaryQuery({ [a.serverName]: {} }, 0);
    expect(server_keys).toHaveLength(1);
    const doc = server_keys[0]!;
    expect(Object.keys(doc['signatures'] as object).sort()).toEqual([a.serverName, me.serverName].sort());
    expect(verifyJson(doc, a.serverName, a.current.keyId, a.current.publicKey)).toBe(true);
    expect(verifyJson(doc, me.serverName, me.current.keyId, me.current.publicKey)).toBe(true);
    // An unknown, unreachable server gives nothing.
    expect((await kr.notaryQuery({ 'nowhere.test': {} })).server_keys).toEqual([]);
  });
});

describe('the key server warning', () => {
  const linesFor = (trusted: TrustedKeyServer[], suppress: boolean): string[] => {
    const lines: string[] = [];
    const kr = new Keyring({
      database,
      keys: me,
      transport: transport({}),
      trustedKeyServers: trusted,
      logger: createLogger('debug', { write: (s: string) => void lines.push(s) }),
    });
    kr.logStartupWarnings(suppress);
    return lines.filter((l) => l.includes('suppress_key_server_warning'));
  };

  it('is logged once when matrix.org is a trusted key server, unless suppressed', () => {
    expect(linesFor([{ server_name: 'matrix.org' }], false)).toHaveLength(1);
    expect(linesFor([{ server_name: 'matrix.org' }], true)).toHaveLength(0);
    expect(linesFor([{ server_name: 'other.example' }], false)).toHaveLength(0);
    expect(linesFor([], false)).toHaveLength(0);
  });
});

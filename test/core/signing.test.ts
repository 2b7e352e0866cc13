import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.js';
import { canonicalJson, CanonicalJsonError } from '../../src/core/canonical-json.js';
import {
  findSignature,
  formatSigningKeyFile,
  generateSigningKey,
  parseSigningKeyFile,
  publicKeyFromSeed,
  publicKeyObject,
  signingKeyFromSeed,
  SigningError,
  SigningKeyFileError,
  signJson,
  signJsonWithKey,
  verifyJson,
  verifyJsonWithKey,
} from '../../src/core/signing.js';
import { jsonObject } from './json-arbitrary.js';

// The spec's appendix "Cryptographic Test Vectors".
const SEED = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
const SERVER = 'domain';
const KEY_ID = 'ed25519:1';
const PUBLIC = publicKeyFromSeed(SEED);

const other = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));

describe('signJson: spec vectors', () => {
  it('signs the empty object', () => {
    expect(signJson({}, SERVER, KEY_ID, SEED)).toEqual({
      signatures: {
        domain: {
          'ed25519:1': 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
        },
      },
    });
  });

  it('signs an object with data', () => {
    expect(signJson({ one: 1, two: 'Two' }, SERVER, KEY_ID, SEED)).toEqual({
      one: 1,
      signatures: {
        domain: {
          'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
        },
      },
      two: 'Two',
    });
  });

  it('verifies the spec vectors', () => {
    expect(verifyJson(signJson({}, SERVER, KEY_ID, SEED), SERVER, KEY_ID, PUBLIC)).toBe(true);
    expect(
      verifyJson(
        {
          one: 1,
          two: 'Two',
          signatures: {
            domain: {
              'ed25519:1': 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
            },
          },
        },
        SERVER,
        KEY_ID,
        PUBLIC,
      ),
    ).toBe(true);
  });
});

describe('signJson', () => {
  it('derives the same public key as tweetnacl', () => {
    expect(Buffer.from(PUBLIC).equals(Buffer.from(nacl.sign.keyPair.fromSeed(SEED).publicKey))).toBe(true);
  });

  it('does not cover `unsigned` or existing `signatures`, and keeps `unsigned`', () => {
    const plain = signJson({ a: 1 }, SERVER, KEY_ID, SEED);
    const withExtras = signJson({ a: 1, unsigned: { age_ts: 5 }, signatures: { elsewhere: { 'ed25519:x': 'abc' } } }, SERVER, KEY_ID, SEED);
    expect(withExtras.signatures[SERVER]![KEY_ID]).toBe(plain.signatures[SERVER]![KEY_ID]);
    expect(withExtras.unsigned).toEqual({ age_ts: 5 });
  });

  it('keeps signatures already present, for other servers and other keys of the same server', () => {
    const second = signingKeyFromSeed('2', new Uint8Array(32).fill(9));
    const once = signJson({ a: 1 }, SERVER, KEY_ID, SEED);
    const twice = signJsonWithKey(once, SERVER, second);
    const thrice = signJson(twice, 'other.example', 'ed25519:o', new Uint8Array(32).fill(3));
    expect(Object.keys(thrice.signatures[SERVER]!).sort()).toEqual(['ed25519:1', 'ed25519:2']);
    expect(verifyJson(thrice, SERVER, KEY_ID, PUBLIC)).toBe(true);
    expect(verifyJson(thrice, SERVER, 'ed25519:2', second.publicKey)).toBe(true);
    expect(verifyJson(thrice, 'other.example', 'ed25519:o', publicKeyFromSeed(new Uint8Array(32).fill(3)))).toBe(true);
  });

  it('returns a copy and leaves the input untouched', () => {
    const input = { a: 1, signatures: { x: { 'ed25519:1': 's' } } };
    const before = structuredClone(input);
    const out = signJson(input, SERVER, KEY_ID, SEED);
    expect(input).toEqual(before);
    expect(out).not.toBe(input);
    expect(out.signatures).not.toBe(input.signatures);
  });

  it('signJsonWithKey gives the same result as signJson', () => {
    const key = signingKeyFromSeed('1', SEED);
    expect(signJsonWithKey({ one: 1, two: 'Two' }, SERVER, key)).toEqual(signJson({ one: 1, two: 'Two' }, SERVER, KEY_ID, SEED));
  });

  it('refuses what it cannot sign', () => {
    expect(() => signJson({ a: 1.5 }, SERVER, KEY_ID, SEED)).toThrow(CanonicalJsonError);
    expect(() => signJson({}, SERVER, 'rsa:1', SEED)).toThrow(SigningError);
    expect(() => signJson({}, SERVER, KEY_ID, new Uint8Array(31))).toThrow(SigningError);
    expect(() => signJson({ signatures: 'x' }, SERVER, KEY_ID, SEED)).toThrow(SigningError);
  });

  it('handles a server named __proto__ as data', () => {
    const out = signJson({}, '__proto__', KEY_ID, SEED);
    expect(Object.prototype.hasOwnProperty.call(out.signatures, '__proto__')).toBe(true);
    expect(verifyJson(out, '__proto__', KEY_ID, PUBLIC)).toBe(true);
  });
});

describe('tweetnacl cross-check', () => {
  it('our signatures verify with tweetnacl, and tweetnacl’s verify with ours', () => {
    const naclKey = nacl.sign.keyPair.fromSeed(SEED);
    fc.assert(
      fc.property(jsonObject, (obj) => {
        const signed = signJson(obj, SERVER, KEY_ID, SEED);
        const message = new TextEncoder().encode(canonicalJson(obj));
        const ours = decodeBase64(findSignature(signed, SERVER, KEY_ID)!);
        expect(nacl.sign.detached.verify(message, ours, naclKey.publicKey)).toBe(true);

        const theirs = encodeBase64(nacl.sign.detached(message, naclKey.secretKey));
        // Ed25519 is deterministic: both libraries produce the same bytes.
        expect(theirs).toBe(encodeBase64(ours));
        const naclSigned = { ...obj, signatures: { [SERVER]: { [KEY_ID]: theirs } } };
        expect(verifyJson(naclSigned, SERVER, KEY_ID, naclKey.publicKey)).toBe(true);
      }),
      { numRuns: 15 },
    );
  });

  it('a tweetnacl signature by another key does not verify with ours under our key', () => {
    const message = new TextEncoder().encode('{}');
    const sig = encodeBase64(nacl.sign.detached(message, other.secretKey));
    expect(verifyJson({ signatures: { [SERVER]: { [KEY_ID]: sig } } }, SERVER, KEY_ID, PUBLIC)).toBe(false);
    expect(verifyJson({ signatures: { [SERVER]: { [KEY_ID]: sig } } }, SERVER, KEY_ID, other.publicKey)).toBe(true);
  });
});

describe('verifyJson fails closed', () => {
  const good = signJson({ one: 1, two: 'Two' }, SERVER, KEY_ID, SEED);
  const sig = good.signatures[SERVER]![KEY_ID]!;
  const withSig = (s: unknown): unknown => ({ one: 1, two: 'Two', signatures: { [SERVER]: { [KEY_ID]: s } } });

  it('accepts the good one (the baseline of every case below)', () => {
    expect(verifyJson(good, SERVER, KEY_ID, PUBLIC)).toBe(true);
    expect(verifyJson(withSig(sig), SERVER, KEY_ID, PUBLIC)).toBe(true);
    expect(verifyJsonWithKey(good, SERVER, KEY_ID, publicKeyObject(PUBLIC))).toBe(true);
  });

  const cases: [string, () => boolean][] = [
    ['no signatures at all', () => verifyJson({ one: 1, two: 'Two' }, SERVER, KEY_ID, PUBLIC)],
    ['signatures not an object', () => verifyJson({ one: 1, two: 'Two', signatures: 'x' }, SERVER, KEY_ID, PUBLIC)],
    ['signatures an array', () => verifyJson({ one: 1, two: 'Two', signatures: [] }, SERVER, KEY_ID, PUBLIC)],
    ['no entry for the server', () => verifyJson(good, 'other.example', KEY_ID, PUBLIC)],
    ['server entry not an object', () => verifyJson({ ...good, signatures: { [SERVER]: 'x' } }, SERVER, KEY_ID, PUBLIC)],
    ['no signature under the key id', () => verifyJson(good, SERVER, 'ed25519:2', PUBLIC)],
    ['signature not a string', () => verifyJson(withSig(42), SERVER, KEY_ID, PUBLIC)],
    ['signature with invalid base64 characters', () => verifyJson(withSig(sig.slice(0, -1) + '!'), SERVER, KEY_ID, PUBLIC)],
    ['signature in URL-safe base64', () => verifyJson(withSig(sig.replace(/\+/g, '-').replace(/\//g, '_')), SERVER, KEY_ID, PUBLIC)],
    ['signature one byte short', () => verifyJson(withSig(encodeBase64(decodeBase64(sig).subarray(0, 63))), SERVER, KEY_ID, PUBLIC)],
    ['signature one byte long', () => verifyJson(withSig(encodeBase64(Buffer.concat([decodeBase64(sig), Buffer.from([0])]))), SERVER, KEY_ID, PUBLIC)],
    ['empty signature', () => verifyJson(withSig(''), SERVER, KEY_ID, PUBLIC)],
    [
      'a flipped bit',
      () => {
        const b = Buffer.from(decodeBase64(sig));
        b[10]! ^= 1;
        return verifyJson(withSig(encodeBase64(b)), SERVER, KEY_ID, PUBLIC);
      },
    ],
    ['signed content changed', () => verifyJson({ ...good, one: 2 }, SERVER, KEY_ID, PUBLIC)],
    ['a signed key added', () => verifyJson({ ...good, three: 3 }, SERVER, KEY_ID, PUBLIC)],
    ['the wrong public key', () => verifyJson(good, SERVER, KEY_ID, other.publicKey)],
    ['a public key of 31 bytes', () => verifyJson(good, SERVER, KEY_ID, PUBLIC.subarray(0, 31))],
    ['a public key of 33 bytes', () => verifyJson(good, SERVER, KEY_ID, new Uint8Array(33))],
    ['a public key that is not bytes', () => verifyJson(good, SERVER, KEY_ID, 'abc' as unknown as Uint8Array)],
    ['a key id of another algorithm', () => verifyJson({ ...good, signatures: { [SERVER]: { 'curve25519:1': sig } } }, SERVER, 'curve25519:1', PUBLIC)],
    ['null', () => verifyJson(null, SERVER, KEY_ID, PUBLIC)],
    ['an array', () => verifyJson([good], SERVER, KEY_ID, PUBLIC)],
    ['a string', () => verifyJson(JSON.stringify(good), SERVER, KEY_ID, PUBLIC)],
    ['a number', () => verifyJson(5, SERVER, KEY_ID, PUBLIC)],
    ['undefined', () => verifyJson(undefined, SERVER, KEY_ID, PUBLIC)],
    ['an object that is not canonical JSON (float)', () => verifyJson({ ...good, x: 1.5 }, SERVER, KEY_ID, PUBLIC)],
    ['an object that is not canonical JSON (big integer)', () => verifyJson({ ...good, x: 2 ** 60 }, SERVER, KEY_ID, PUBLIC)],
    ['a server name from the prototype', () => verifyJson(good, 'constructor', 'name', PUBLIC)],
    ['a key id from the prototype', () => verifyJson({ ...good, signatures: { [SERVER]: {} } }, SERVER, 'toString', PUBLIC)],
  ];
  it.each(cases)('false for %s', (_name, run) => {
    expect(run()).toBe(false);
  });

  it('the KeyObject variant is false for a mismatching key too', () => {
    expect(verifyJsonWithKey(good, SERVER, KEY_ID, publicKeyObject(other.publicKey))).toBe(false);
    expect(verifyJsonWithKey({ ...good, one: 5 }, SERVER, KEY_ID, publicKeyObject(PUBLIC))).toBe(false);
  });
});

describe('signing key file', () => {
  it('generates keys as Synapse does: version a_ + 4 alphanumerics', () => {
    const versions = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const k = generateSigningKey();
      expect(k.algorithm).toBe('ed25519');
      expect(k.version).toMatch(/^a_[A-Za-z0-9]{4}$/);
      expect(k.keyId).toBe(`ed25519:${k.version}`);
      expect(k.seed.length).toBe(32);
      expect(Buffer.from(k.publicKey).equals(Buffer.from(nacl.sign.keyPair.fromSeed(k.seed).publicKey))).toBe(true);
      expect(k.privateKey.asymmetricKeyType).toBe('ed25519');
      versions.add(k.version);
    }
    expect(versions.size).toBeGreaterThan(15);
  });

  it('writes one line per key with a trailing newline, and reads it back', () => {
    const keys = [generateSigningKey(), signingKeyFromSeed('1', SEED)];
    const text = formatSigningKeyFile(keys);
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toBe('ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0');
    expect(lines[0]).toMatch(/^ed25519 a_[A-Za-z0-9]{4} [A-Za-z0-9+/]{43}$/);
    const back = parseSigningKeyFile(text);
    expect(back.map((k) => k.keyId)).toEqual(keys.map((k) => k.keyId));
    for (let i = 0; i < keys.length; i++) {
      expect(Buffer.from(back[i]!.seed).equals(Buffer.from(keys[i]!.seed))).toBe(true);
      expect(Buffer.from(back[i]!.publicKey).equals(Buffer.from(keys[i]!.publicKey))).toBe(true);
    }
  });

  it('reads a Synapse key file (CRLF, extra spaces, blank lines) and signs with it as the spec does', () => {
    const [key] = parseSigningKeyFile('\r\ned25519   1\tYJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\r\n\r\n');
    expect(key!.keyId).toBe('ed25519:1');
    expect(signJsonWithKey({}, SERVER, key!).signatures[SERVER]![KEY_ID]).toBe('K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ');
    // The KeyObject is the seed's key.
    const pkcs8 = key!.privateKey.export({ format: 'der', type: 'pkcs8' });
    expect(Buffer.from(pkcs8.subarray(-32)).equals(Buffer.from(SEED))).toBe(true);
  });

  it('parses an empty file as no keys', () => {
    expect(parseSigningKeyFile('')).toEqual([]);
  });

  const secret = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';
  it.each([
    ['ed25519 1', 1],
    [`ed25519 1 ${secret} extra`, 1],
    [`rsa 1 ${secret}`, 1],
    [`ed25519 a:b ${secret}`, 1],
    [`ed25519 1 ${secret}\ned25519 2 not*base64`, 2],
    [`ed25519 1 ${secret}\n\ned25519 2 Zm9vYmFy`, 3],
    [`ed25519 1 ${secret}AAAA`, 1],
  ] as [string, number][])('rejects %j with the line number and without echoing the seed', (text, line) => {
    let caught: unknown;
    try {
      parseSigningKeyFile(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SigningKeyFileError);
    expect((caught as SigningKeyFileError).line).toBe(line);
    expect((caught as Error).message).toContain(`line ${line}`);
    expect((caught as Error).message).not.toContain(secret.slice(0, 20));
  });
});

import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.js';
import { canonicalJsonBytes } from '../../src/core/canonical-json.js';
import { signingKeyFromSeed } from '../../src/core/signing.js';
import { formatXMatrix, parseXMatrix, signRequest, verifyRequest, xMatrixAuthorization, XMatrixParseError } from '../../src/core/x-matrix.js';

const key = signingKeyFromSeed('k1', new Uint8Array(32).fill(3));
const otherKey = signingKeyFromSeed('k2', new Uint8Array(32).fill(4));
const req = {
  method: 'PUT',
  uri: '/_matrix/federation/v1/send/txn1?x=1',
  origin: 'origin.example.com',
  destination: 'dest.example.com:8448',
  content: { pdus: [], edus: [{ edu_type: 'm.typing', content: { a: 1 } }] },
};

describe('signing a request', () => {
  it('signs the canonical JSON of {method, uri, origin, destination, content} (checked with tweetnacl)', () => {
    const sig = decodeBase64(signRequest(req, key));
    const bytes = canonicalJsonBytes({ method: req.method, uri: req.uri, origin: req.origin, destination: req.destination, content: req.content });
    expect(nacl.sign.detached.verify(bytes, sig, key.publicKey)).toBe(true);
  });

  it('leaves content out when there is no body', () => {
    const r = { method: 'GET', uri: '/_matrix/federation/v1/version', origin: 'a', destination: 'b' };
    const sig = decodeBase64(signRequest(r, key));
    expect(nacl.sign.detached.verify(canonicalJsonBytes(r), sig, key.publicKey)).toBe(true);
    expect(nacl.sign.detached.verify(canonicalJsonBytes({ ...r, content: {} }), sig, key.publicKey)).toBe(false);
  });
});

describe('X-Matrix header round trip', () => {
  it('formats, parses and verifies', () => {
    const header = xMatrixAuthorization(req, key);
    expect(header).toMatch(/^X-Matrix origin="origin\.example\.com",destination="dest\.example\.com:8448",key="ed25519:k1",sig="[A-Za-z0-9+/]+"$/);
    const auth = parseXMatrix(header);
    expect(auth).toMatchObject({ origin: req.origin, destination: req.destination, key: 'ed25519:k1' });
    expect(verifyRequest({ auth, method: req.method, uri: req.uri, content: req.content, ourName: req.destination, publicKey: key.publicKey })).toEqual({ ok: true });
  });

  const auth = parseXMatrix(xMatrixAuthorization(req, key));
  const base = { auth, method: req.method, uri: req.uri, content: req.content, ourName: req.destination, publicKey: key.publicKey };

  it.each([
    ['uri', { uri: '/_matrix/federation/v1/send/txn2?x=1' }],
    ['query', { uri: '/_matrix/federation/v1/send/txn1?x=2' }],
    ['method', { method: 'POST' }],
    ['body', { content: { pdus: [], edus: [] } }],
    ['missing body', { content: undefined }],
    ['destination (our name)', { ourName: 'other.example.com' }],
    ['key', { publicKey: otherKey.publicKey }],
  ])('fails when the %s differs', (_what, change) => {
    const r = verifyRequest({ ...base, ...change });
    expect(r.ok).toBe(false);
  });

  it('fails for a header naming another destination, a bad signature, or a non-ed25519 key', () => {
    expect(verifyRequest({ ...base, auth: { ...auth, destination: 'elsewhere' } })).toMatchObject({ ok: false, reason: expect.stringContaining('elsewhere') });
    expect(verifyRequest({ ...base, auth: { ...auth, sig: 'not base64!' } }).ok).toBe(false);
    expect(verifyRequest({ ...base, auth: { ...auth, sig: encodeBase64(new Uint8Array(64)) } }).ok).toBe(false);
    expect(verifyRequest({ ...base, auth: { ...auth, key: 'curve25519:k1' } }).ok).toBe(false);
  });

  it('verifies a header without destination (older senders) against our name', () => {
    const { destination: _d, ...noDest } = auth;
    expect(verifyRequest({ ...base, auth: noDest })).toEqual({ ok: true });
  });

  it('escapes quotes and backslashes when formatting', () => {
    const h = formatXMatrix({ origin: 'a"b\\c', key: 'ed25519:k', sig: 's' });
    expect(parseXMatrix(h)).toEqual({ origin: 'a"b\\c', key: 'ed25519:k', sig: 's' });
  });
});

describe('parseXMatrix', () => {
  it('parses the spec example', () => {
    expect(parseXMatrix('X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."')).toEqual({
      origin: 'origin.hs.example.com',
      destination: 'destination.hs.example.com',
      key: 'ed25519:key1',
      sig: 'ABCDEF...',
    });
  });

  it('accepts unquoted values, colons in unquoted values, spaces around commas and =, any case', () => {
    expect(parseXMatrix('x-matrix  Origin=origin.example.com:8448 , KEY = "ed25519:key1",sig=ABC+/def')).toEqual({
      origin: 'origin.example.com:8448',
      key: 'ed25519:key1',
      sig: 'ABC+/def',
    });
  });

  it('accepts an unquoted IPv6 server name with port', () => {
    expect(parseXMatrix('X-Matrix origin=[::1]:8448,key=ed25519:a,sig=s').origin).toBe('[::1]:8448');
  });

  it('ignores unknown parameters and empty list elements', () => {
    expect(parseXMatrix('X-Matrix ,origin="o",,future="x, y",key="ed25519:a",sig="s",')).toEqual({ origin: 'o', key: 'ed25519:a', sig: 's' });
  });

  it('undoes backslash escapes in quoted values', () => {
    expect(parseXMatrix('X-Matrix origin="a\\"b",key="ed25519:\\a",sig="s"').origin).toBe('a"b');
  });

  it.each([
    ['another scheme', 'Bearer abc'],
    ['no params', 'X-Matrix'],
    ['missing origin', 'X-Matrix key="ed25519:a",sig="s"'],
    ['missing key', 'X-Matrix origin="o",sig="s"'],
    ['missing sig', 'X-Matrix origin="o",key="ed25519:a"'],
    ['empty origin', 'X-Matrix origin="",key="ed25519:a",sig="s"'],
    ['unterminated quote', 'X-Matrix origin="o,key="ed25519:a",sig="s'],
    ['repeated param', 'X-Matrix origin="o",origin="p",key="ed25519:a",sig="s"'],
    ['a param without value', 'X-Matrix origin,key="ed25519:a",sig="s"'],
    ['garbage between params', 'X-Matrix origin="o" junk,key="ed25519:a",sig="s"'],
  ])('refuses %s', (_what, header) => {
    expect(() => parseXMatrix(header)).toThrow(XMatrixParseError);
  });
});

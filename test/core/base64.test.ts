import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Base64Error, decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from '../../src/core/base64.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('unpadded base64', () => {
  // The spec's appendix "Unpadded Base64" examples.
  it.each([
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ])('UNPADDED_BASE64(%j) = %j, and back', (plain, encoded) => {
    expect(encodeBase64(bytes(plain))).toBe(encoded);
    expect(encodeBase64Url(bytes(plain))).toBe(encoded);
    expect(Buffer.from(decodeBase64(encoded)).toString()).toBe(plain);
    expect(Buffer.from(decodeBase64Url(encoded)).toString()).toBe(plain);
  });

  it('uses + and / in the standard alphabet and - and _ in the URL-safe one', () => {
    const b = Uint8Array.from([0xfb, 0xff, 0xbf]);
    expect(encodeBase64(b)).toBe('+/+/');
    expect(encodeBase64Url(b)).toBe('-_-_');
    expect(decodeBase64('+/+/')).toEqual(Buffer.from(b));
    expect(decodeBase64Url('-_-_')).toEqual(Buffer.from(b));
  });

  it('encodes a Uint8Array view without reading outside it', () => {
    const backing = Uint8Array.from([1, 2, 102, 111, 111, 3]);
    expect(encodeBase64(backing.subarray(2, 5))).toBe('Zm9v');
  });

  it('accepts padded input', () => {
    expect(Buffer.from(decodeBase64('Zg==')).toString()).toBe('f');
    expect(Buffer.from(decodeBase64('Zm8=')).toString()).toBe('fo');
    expect(Buffer.from(decodeBase64Url('Zg==')).toString()).toBe('f');
  });

  it('accepts non-zero trailing bits, as in the spec’s test-vector seed', () => {
    const seed = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
    expect(seed.length).toBe(32);
  });

  it.each(['Z', 'Zg=', 'Zg===', 'Zm9v=', '=', 'Z===', 'Zm 9v', 'Zm9v\n', 'Zm9v!', 'Zm=9v', 'Zm9-', 'Zm9_'])('standard decoding rejects %j', (input) => {
    expect(() => decodeBase64(input)).toThrow(Base64Error);
  });

  it.each(['Z', 'Zm9+', 'Zm9/', 'Zm 9v', 'Zg='])('URL-safe decoding rejects %j', (input) => {
    expect(() => decodeBase64Url(input)).toThrow(Base64Error);
  });

  it('rejects non-strings', () => {
    expect(() => decodeBase64(42 as unknown as string)).toThrow(Base64Error);
  });

  it('round-trips any bytes, and matches RFC 4648 with the padding removed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const std = encodeBase64(b);
        const url = encodeBase64Url(b);
        expect(std).toBe(Buffer.from(b).toString('base64').replace(/=+$/, ''));
        expect(url).toBe(std.replace(/\+/g, '-').replace(/\//g, '_'));
        expect(std).not.toContain('=');
        expect(Buffer.from(decodeBase64(std)).equals(Buffer.from(b))).toBe(true);
        expect(Buffer.from(decodeBase64Url(url)).equals(Buffer.from(b))).toBe(true);
        expect(Buffer.from(decodeBase64(Buffer.from(b).toString('base64'))).equals(Buffer.from(b))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

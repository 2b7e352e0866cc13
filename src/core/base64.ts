/**
 * Unpadded base64 as the spec's appendix defines it: RFC 4648 without `=`,
 * in the standard alphabet (keys, signatures, hashes, v3 event ids) and the
 * URL-safe one (v4+ event ids, v12 room ids).
 *
 * Node's own decoder is lenient (it skips characters it does not know), so
 * input is checked against the alphabet first. Non-zero trailing bits are
 * accepted: the spec's own test-vector seed has them.
 */

export class Base64Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Base64Error';
  }
}

const STANDARD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Standard alphabet, no padding. */
export function encodeBase64(bytes: Uint8Array): string {
  const s = asBuffer(bytes).toString('base64');
  // At most two `=` at the end; slicing is cheaper than a regex.
  if (s.endsWith('==')) return s.slice(0, -2);
  if (s.endsWith('=')) return s.slice(0, -1);
  return s;
}

/** URL-safe alphabet (`-`, `_`), no padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  // Node's base64url output is already unpadded.
  return asBuffer(bytes).toString('base64url');
}

function stripPadding(input: string): string {
  let end = input.length;
  while (end > 0 && input.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const pad = input.length - end;
  if (pad === 0) return input;
  if (pad > 2 || input.length % 4 !== 0) throw new Base64Error('invalid base64 padding');
  return input.slice(0, end);
}

function decodeWith(input: string, alphabet: RegExp, encoding: 'base64' | 'base64url', name: string): Uint8Array {
  if (typeof input !== 'string') throw new Base64Error(`${name} input must be a string`);
  const body = stripPadding(input);
  // A single leftover character carries only 6 bits: not a whole byte.
  if (body.length % 4 === 1) throw new Base64Error(`invalid ${name} length`);
  if (!alphabet.test(body)) throw new Base64Error(`invalid character in ${name}`);
  return Buffer.from(body, encoding);
}

/** Decodes standard base64, padded or not; throws Base64Error on anything else. */
export function decodeBase64(input: string): Uint8Array {
  return decodeWith(input, STANDARD, 'base64', 'base64');
}

/** Decodes URL-safe base64, padded or not; throws Base64Error on anything else. */
export function decodeBase64Url(input: string): Uint8Array {
  return decodeWith(input, URL_SAFE, 'base64url', 'URL-safe base64');
}

/**
 * Canonical JSON as the spec's appendix defines it: shortest form, object keys
 * sorted by Unicode code point, integers only (within ±(2^53−1)), strings
 * escaped minimally (only `"`, `\` and control characters; `\b \f \n \r \t`
 * short forms, the rest `\u00xx` in lowercase hex), everything else raw UTF-8.
 *
 * This is the hot path of signing, hashing and event ids, so it builds one
 * string in a single recursive walk and relies on V8's native JSON.stringify
 * only for escaping strings, whose escaping rules match the spec's exactly
 * for well-formed strings (it would escape lone surrogates as `\udxxx`, which
 * the spec's grammar does not allow, so those are rejected instead).
 */

export type CanonicalJsonErrorKind = 'non_integer' | 'integer_range' | 'non_finite' | 'unsupported_type' | 'lone_surrogate' | 'too_deep';

export class CanonicalJsonError extends Error {
  /** Where in the value the problem is, e.g. `content.body[2]`; empty at the root. */
  path: string;
  constructor(
    readonly kind: CanonicalJsonErrorKind,
    readonly reason: string,
    path = '',
  ) {
    super(path ? `${reason} at ${path}` : reason);
    this.name = 'CanonicalJsonError';
    this.path = path;
  }
}

/** Deeper nesting than this is refused (Synapse, through Python's json, stops near 1000 too). */
export const MAX_CANONICAL_DEPTH = 1000;

interface WellFormed {
  isWellFormed(): boolean;
}

// Anything that needs escaping, or might be a lone surrogate. Strings without
// any of these (nearly all) are emitted as they are after one regex test.
const SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/;
// Keys with these need the slow path: escaping, or code-point sorting.
const SPECIAL_KEY = /["\\\u0000-\u001f\ud800-\uffff]/;

function encodeString(s: string): string {
  if (!SPECIAL.test(s)) return `"${s}"`;
  if (!(s as unknown as WellFormed).isWellFormed()) {
    throw new CanonicalJsonError('lone_surrogate', 'string contains a lone UTF-16 surrogate');
  }
  return JSON.stringify(s);
}

/**
 * Code-point order. UTF-16 unit order differs from it only when a surrogate
 * (a code point above U+FFFF) meets a unit in U+E000..U+FFFF: surrogates must
 * sort after those, so both are shifted before comparing.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/**
 * Whether no key needs escaping or code-point sorting. Default sort compares
 * UTF-16 units, which equals code-point order unless a key has a unit at or
 * above U+D800.
 */
function plainKeys(keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) if (SPECIAL_KEY.test(keys[i]!)) return false;
  return true;
}

/** The error for a value canonical JSON cannot hold (shared with the validator). */
export function unencodable(value: unknown): CanonicalJsonError {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return new CanonicalJsonError('non_finite', `number ${value} is not allowed`);
    if (Number.isInteger(value)) {
      return new CanonicalJsonError('integer_range', `integer ${value} is outside ±(2^53−1)`);
    }
    return new CanonicalJsonError('non_integer', `non-integer number ${value} is not allowed`);
  }
  let what: string = typeof value;
  if (typeof value === 'object' && value !== null) {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor;
    what = `object of class ${typeof ctor?.name === 'string' ? ctor.name : 'unknown'}`;
  }
  return new CanonicalJsonError('unsupported_type', `${what} cannot be encoded as canonical JSON`);
}

function fail(value: unknown): never {
  throw unencodable(value);
}

/** Rethrows a CanonicalJsonError with one more path segment in front (as the stack unwinds). */
export function withPath(err: unknown, segment: string): never {
  if (err instanceof CanonicalJsonError) {
    const path = err.path === '' ? segment : err.path[0] === '[' ? segment + err.path : `${segment}.${err.path}`;
    throw new CanonicalJsonError(err.kind, err.reason, path);
  }
  throw err;
}

/** A path segment for an object key. */
export function keySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function encodeValue(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      // String(-0) is "0", as the spec's example wants.
      return Number.isSafeInteger(value) ? String(value) : fail(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_DEPTH) {
        throw new CanonicalJsonError('too_deep', `nesting deeper than ${MAX_CANONICAL_DEPTH} (or a cycle)`);
      }
      if (Array.isArray(value)) return encodeArray(value, depth + 1);
      if (!isPlainObject(value)) return fail(value);
      return encodeObject(value as Record<string, unknown>, depth + 1, undefined);
    default:
      return fail(value);
  }
}

function encodeArray(arr: readonly unknown[], depth: number): string {
  const n = arr.length;
  if (n === 0) return '[]';
  let i = 0;
  try {
    let out = '[' + encodeValue(arr[0], depth);
    for (i = 1; i < n; i++) out += ',' + encodeValue(arr[i], depth);
    return out + ']';
  } catch (err) {
    return withPath(err, `[${i}]`);
  }
}

function encodeObject(obj: Record<string, unknown>, depth: number, skip: ReadonlySet<string> | undefined): string {
  const keys = Object.keys(obj);
  const plain = plainKeys(keys);
  if (keys.length > 1) {
    if (plain) keys.sort();
    else keys.sort(compareCodePoints);
  }
  let out = '{';
  let first = true;
  let key = '';
  try {
    for (let i = 0; i < keys.length; i++) {
      key = keys[i]!;
      if (skip !== undefined && skip.has(key)) continue;
      const encoded = (plain ? `"${key}":` : encodeString(key) + ':') + encodeValue(obj[key], depth);
      if (first) {
        out += encoded;
        first = false;
      } else {
        out += ',' + encoded;
      }
    }
  } catch (err) {
    return withPath(err, keySegment(key));
  }
  return out + '}';
}

/**
 * The canonical JSON text of a JSON value. Throws CanonicalJsonError for
 * anything that is not JSON within the spec's limits: non-integer numbers,
 * integers outside ±(2^53−1), NaN, ±Infinity, undefined (also as an object
 * property), bigint, functions, symbols, non-plain objects, lone surrogates.
 */
export function canonicalJson(value: unknown): string {
  return encodeValue(value, 0);
}

/**
 * Canonical JSON of an object with some top-level keys left out, without
 * copying the object (signing and hashing leave out `signatures`, `unsigned`,
 * `hashes`).
 */
export function canonicalJsonWithout(obj: object, skip: ReadonlySet<string>): string {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || !isPlainObject(obj)) {
    throw new CanonicalJsonError('unsupported_type', 'expected a JSON object');
  }
  return encodeObject(obj as Record<string, unknown>, 1, skip);
}

/** Canonical JSON as UTF-8 bytes, the form that is signed and hashed. */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

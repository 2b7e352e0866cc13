/**
 * Parsing incoming JSON under the spec's strict canonical JSON rules (room
 * versions 6+ and the APIs that follow them): no fractions, no exponents, no
 * integers outside ±(2^53−1), no NaN/Infinity (JSON.parse refuses those).
 *
 * JSON.parse turns `1.0` and `1e2` into integers, so the text itself is
 * scanned for number tokens with a fraction or an exponent; Synapse (Python's
 * json) parses those as floats and rejects them, and so must we or the two
 * would accept different events.
 */
import type { JsonValue } from './pdu.js';
import { CanonicalJsonError, MAX_CANONICAL_DEPTH, keySegment, unencodable, withPath } from './canonical-json.js';

/** `syntax`: not JSON; `float`: a fraction or exponent; the rest as CanonicalJsonError's kinds. */
export type JsonParseErrorKind = 'syntax' | 'float' | 'integer_range' | 'too_deep' | 'lone_surrogate';

export class JsonParseError extends Error {
  constructor(
    readonly kind: JsonParseErrorKind,
    message: string,
    /** Where in the value, when known (e.g. `content.count`). */
    readonly path = '',
  ) {
    super(message);
    this.name = 'JsonParseError';
  }
}

export interface ParseStrictJsonOptions {
  /**
   * Enforce the strict rules (default true). With false only JSON syntax is
   * checked, for room versions 1-5 whose events may hold floats and big integers.
   */
  strict?: boolean;
}

/**
 * Parses JSON text, throwing JsonParseError (never SyntaxError) when it is not
 * JSON or, in strict mode, breaks the canonical JSON number rules.
 */
export function parseStrictJson(text: string, opts?: ParseStrictJsonOptions): JsonValue {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new JsonParseError('syntax', `invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (opts?.strict === false) return value;
  const { tooDeep, longDigitRun } = scanOutsideStrings(text, true, MAX_CANONICAL_DEPTH);
  if (tooDeep) {
    throw new JsonParseError('too_deep', `nesting deeper than ${MAX_CANONICAL_DEPTH}`);
  }
  // The value walk is only needed when the text could hold an out-of-range
  // integer (16+ digits) or a lone surrogate (raw, or as a \ud8xx escape).
  if (longDigitRun || !(text as unknown as WellFormed).isWellFormed() || text.includes('\\ud') || text.includes('\\uD')) {
    try {
      assertCanonicalCompatible(value);
    } catch (err) {
      if (err instanceof CanonicalJsonError) {
        // After the text scan and JSON.parse only these kinds can remain.
        const kind: JsonParseErrorKind = err.kind === 'lone_surrogate' ? err.kind : 'integer_range';
        throw new JsonParseError(kind, err.message, err.path);
      }
      throw err;
    }
  }
  return value;
}

const BACKSLASH = 0x5c;
// 2^53 has 16 digits: anything shorter is within range.
const SAFE_DIGITS = 15;

/**
 * One pass over the text outside strings: reports whether `[`/`{` nest
 * deeper than `depthLimit` (stopping there) and, with `numbers`, throws for a
 * number with a fraction or an exponent and reports whether any digit run is
 * long enough to be out of range. Jumps from string to string with indexOf
 * (native), so only the short stretches between strings are looked at
 * character by character. Text that is not JSON is passed over without
 * complaint (JSON.parse judges it); with `numbers` it must already be JSON.
 */
function scanOutsideStrings(text: string, numbers: boolean, depthLimit: number): { tooDeep: boolean; longDigitRun: boolean } {
  let pos = 0;
  let depth = 0;
  let digits = 0;
  let longDigitRun = false;
  const n = text.length;
  while (pos < n) {
    const q = text.indexOf('"', pos);
    const end = q === -1 ? n : q;
    for (let i = pos; i < end; i++) {
      const c = text.charCodeAt(i);
      if (numbers) {
        if (c >= 0x30 && c <= 0x39) {
          if (++digits > SAFE_DIGITS) longDigitRun = true;
          continue;
        }
        if (c === 0x2e /* . */) {
          throw new JsonParseError('float', `number with a fraction at offset ${i}: not allowed in canonical JSON`);
        }
        // Outside strings `e`/`E` is either in true/false or an exponent; only
        // an exponent follows a digit.
        if ((c === 0x65 || c === 0x45) && digits > 0) {
          throw new JsonParseError('float', `number with an exponent at offset ${i}: not allowed in canonical JSON`);
        }
        digits = 0;
      }
      if (c === 0x5b || c === 0x7b) {
        if (++depth > depthLimit) return { tooDeep: true, longDigitRun };
      } else if (c === 0x5d || c === 0x7d) {
        depth--;
      }
    }
    digits = 0;
    if (q === -1) break;
    pos = closingQuote(text, q + 1) + 1;
  }
  return { tooDeep: false, longDigitRun };
}

/** Index of the quote closing the string whose body starts at `from`. */
function closingQuote(text: string, from: number): number {
  let i = from;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q === -1) return text.length; // unreachable for valid JSON
    // The quote is escaped iff an odd number of backslashes precede it.
    let b = q - 1;
    while (b >= from && text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q;
    i = q + 1;
  }
}

interface WellFormed {
  isWellFormed(): boolean;
}

/**
 * Checks an already-parsed value against the canonical JSON rules without
 * building any output: integers within ±(2^53−1) only, plain objects and
 * arrays, no undefined/bigint/functions, no lone surrogates, bounded depth.
 * Throws CanonicalJsonError naming the first offending path.
 */
export function assertCanonicalCompatible(value: unknown): void {
  check(value, 0);
}

/** As assertCanonicalCompatible, as a boolean. */
export function isCanonicalCompatible(value: unknown): boolean {
  try {
    check(value, 0);
    return true;
  } catch (err) {
    if (err instanceof CanonicalJsonError) return false;
    throw err;
  }
}

function checkString(s: string): void {
  if (!(s as unknown as WellFormed).isWellFormed()) {
    throw new CanonicalJsonError('lone_surrogate', 'string contains a lone UTF-16 surrogate');
  }
}

function check(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      return checkString(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw unencodable(value);
      return;
    case 'boolean':
      return;
    case 'object': {
      if (value === null) return;
      if (depth >= MAX_CANONICAL_DEPTH) {
        throw new CanonicalJsonError('too_deep', `nesting deeper than ${MAX_CANONICAL_DEPTH} (or a cycle)`);
      }
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          try {
            check(value[i], depth + 1);
          } catch (err) {
            withPath(err, `[${i}]`);
          }
        }
        return;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw unencodable(value);
      const obj = value as Record<string, unknown>;
      for (const key of Object.keys(obj)) {
        try {
          checkString(key);
          check(obj[key], depth + 1);
        } catch (err) {
          withPath(err, keySegment(key));
        }
      }
      return;
    }
    default:
      throw unencodable(value);
  }
}

/**
 * Parses a request body: plain JSON (floats allowed, as Synapse's client
 * APIs take them), refused with JsonParseError when nested deeper than
 * `maxDepth` (`too_deep`, judged from the text before parsing) or when a
 * string or key holds a lone UTF-16 surrogate (`lone_surrogate`: `"\ud800"`
 * is JSON syntax but no Unicode text, and cannot be signed or stored).
 *
 * The value is walked only when the text has a `\ud`/`\uD` escape or is not
 * well-formed itself; text decoded from valid UTF-8 never is, so for nearly
 * every body the cost beyond JSON.parse is one jump from string to string.
 */
export function parseJsonBody(text: string, maxDepth: number): unknown {
  if (scanOutsideStrings(text, false, maxDepth).tooDeep) {
    throw new JsonParseError('too_deep', `JSON nested deeper than ${maxDepth} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new JsonParseError('syntax', `invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (text.includes('\\ud') || text.includes('\\uD') || !(text as unknown as WellFormed).isWellFormed()) {
    const path = loneSurrogatePath(value);
    if (path !== undefined) {
      throw new JsonParseError('lone_surrogate', `lone UTF-16 surrogate in a string${path ? ` at ${path}` : ''}`, path);
    }
  }
  return value;
}

/** The path of the first key or string with a lone surrogate ('' for the root), or undefined. */
function loneSurrogatePath(value: unknown): string | undefined {
  if (typeof value === 'string') return (value as unknown as WellFormed).isWellFormed() ? undefined : '';
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = loneSurrogatePath(value[i]);
      if (inner !== undefined) return joinPath(`[${i}]`, inner);
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!(key as unknown as WellFormed).isWellFormed()) return keySegment(key);
    const inner = loneSurrogatePath((value as Record<string, unknown>)[key]);
    if (inner !== undefined) return joinPath(keySegment(key), inner);
  }
  return undefined;
}

function joinPath(segment: string, inner: string): string {
  return inner === '' ? segment : inner[0] === '[' ? segment + inner : `${segment}.${inner}`;
}

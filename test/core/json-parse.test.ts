import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { canonicalJson, CanonicalJsonError } from '../../src/core/canonical-json.js';
import { assertCanonicalCompatible, isCanonicalCompatible, JsonParseError, parseJsonBody, parseStrictJson } from '../../src/core/json-parse.js';
import { jsonValue } from './json-arbitrary.js';

function parseError(text: string): JsonParseError {
  try {
    parseStrictJson(text);
  } catch (err) {
    if (err instanceof JsonParseError) return err;
    throw err;
  }
  throw new Error(`expected ${text} to be rejected`);
}

describe('parseStrictJson', () => {
  it('parses ordinary JSON, whitespace and all', () => {
    expect(parseStrictJson(' {"a": [1, -2, true, false, null, "x"], "b": {"c": -0}} ')).toEqual({
      a: [1, -2, true, false, null, 'x'],
      b: { c: -0 },
    });
  });

  it.each(['1.0', '1.5', '-0.5', '1e2', '1E2', '2e-3', '1e+2', '[1e400]', '{"a":{"b":[0,3.25]}}', '0.0'])('rejects a fraction or exponent: %s', (text) => {
    expect(parseError(text).kind).toBe('float');
  });

  it.each(['9007199254740992', '-9007199254740992', '123456789012345678901234567890', '{"depth":18446744073709551615}'])('rejects integers outside ±(2^53−1): %s', (text) => {
    expect(parseError(text).kind).toBe('integer_range');
  });

  it('accepts the integer limits themselves', () => {
    expect(parseStrictJson('[9007199254740991,-9007199254740991]')).toEqual([2 ** 53 - 1, -(2 ** 53 - 1)]);
  });

  it('names where an out-of-range integer is', () => {
    expect(parseError('{"content":{"n":[1,9007199254740993]}}').path).toBe('content.n[1]');
  });

  it.each(['{"a":"1.5"}', '{"a":"1e5","b":2}', '{"a":"\\"1.5","b":1}', '{"a":"x\\\\","b":1}', '{"a":"\\\\\\"2.5\\\\"}', '{"1.5":1}', '[true,false,null,1]', '{"e":1,"E":2}'])(
    'does not mistake text inside strings or literals for floats: %s',
    (text) => {
      expect(parseStrictJson(text)).toEqual(JSON.parse(text));
    },
  );

  it('finds a float after a string ending in escaped backslashes', () => {
    expect(parseError('{"a":"x\\\\","b":1.5}').kind).toBe('float');
    expect(parseError('{"a":"\\"","b":1.5}').kind).toBe('float');
  });

  it.each(['NaN', 'Infinity', '-Infinity', '{"a":NaN}', '{', '', '01', '{"a":1,}', "{'a':1}"])('rejects non-JSON with a JsonParseError, not a SyntaxError: %s', (text) => {
    const err = parseError(text);
    expect(err.kind).toBe('syntax');
    expect(err).not.toBeInstanceOf(SyntaxError);
  });

  it('accepts 16-digit integers within range', () => {
    expect(parseStrictJson('[1234567890123456,-1234567890123456]')).toEqual([1234567890123456, -1234567890123456]);
  });

  it('rejects a lone surrogate, escaped in either case or raw', () => {
    expect(parseError('{"a":"\\ud800"}').kind).toBe('lone_surrogate');
    expect(parseError('{"a":"x\\uDFFF"}').kind).toBe('lone_surrogate');
    expect(parseError('{"\\udbff":1}').kind).toBe('lone_surrogate');
    expect(parseError('{"a":"\ud800"}').kind).toBe('lone_surrogate');
    expect(parseStrictJson('{"a":"\\ud83d\\ude00"}')).toEqual({ a: '😀' });
  });

  it('rejects nesting deeper than canonical JSON allows', () => {
    expect(parseError('['.repeat(1001) + ']'.repeat(1001)).kind).toBe('too_deep');
    expect(parseError('{"a":'.repeat(1001) + '1' + '}'.repeat(1001)).kind).toBe('too_deep');
    expect(() => parseStrictJson('['.repeat(1000) + ']'.repeat(1000))).not.toThrow();
    expect(() => parseStrictJson('[' + '"[[[[",'.repeat(2000) + '1]')).not.toThrow();
  });

  it('with strict: false accepts floats and big integers (room versions 1-5)', () => {
    expect(parseStrictJson('{"a":1.5,"b":1e2,"c":9007199254740993}', { strict: false })).toEqual({
      a: 1.5,
      b: 100,
      c: 9007199254740992,
    });
    expect(() => parseStrictJson('NaN', { strict: false })).toThrow(JsonParseError);
  });

  it('parses everything canonicalJson writes, pretty-printed or not, back to the same value', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        expect(isDeepStrictEqual(parseStrictJson(canonicalJson(x)), x)).toBe(true);
        expect(isDeepStrictEqual(parseStrictJson(JSON.stringify(x, null, 2)), x)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects every non-integer number, wherever it is', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
        jsonValue,
        (d, other) => {
          expect(() => parseStrictJson(JSON.stringify({ other, x: [d] }))).toThrow(JsonParseError);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('assertCanonicalCompatible', () => {
  it('accepts canonical JSON values', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        expect(() => assertCanonicalCompatible(x)).not.toThrow();
        expect(isCanonicalCompatible(x)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    [{ a: [1, 2.5] }, 'a[1]', 'non_integer'],
    [{ a: { b: 2 ** 53 } }, 'a.b', 'integer_range'],
    [{ 'x y': NaN }, '"x y"', 'non_finite'],
    [[undefined], '[0]', 'unsupported_type'],
    [{ d: new Date(0) }, 'd', 'unsupported_type'],
    [{ s: '\udfff' }, 's', 'lone_surrogate'],
    [{ n: 1n }, 'n', 'unsupported_type'],
  ] as [unknown, string, string][])('rejects %o at %s', (value, path, kind) => {
    let caught: unknown;
    try {
      assertCanonicalCompatible(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CanonicalJsonError);
    expect((caught as CanonicalJsonError).path).toBe(path);
    expect((caught as CanonicalJsonError).kind).toBe(kind);
    expect(isCanonicalCompatible(value)).toBe(false);
  });

  it('agrees with canonicalJson on what can be encoded', () => {
    const samples: unknown[] = [1.5, 2 ** 53, [1, [2, [3.5]]], { a: undefined }, new Map(), 'ok', { a: [1, 'b'] }, null];
    for (const s of samples) {
      let encodable = true;
      try {
        canonicalJson(s);
      } catch {
        encodable = false;
      }
      expect(isCanonicalCompatible(s)).toBe(encodable);
    }
  });
});

describe('parseJsonBody', () => {
  const refusal = (text: string, depth = 100): JsonParseError => {
    try {
      parseJsonBody(text, depth);
    } catch (err) {
      if (err instanceof JsonParseError) return err;
      throw err;
    }
    throw new Error(`expected ${text} to be refused`);
  };
  const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);

  it('parses what JSON.parse parses, floats and big integers included', () => {
    expect(parseJsonBody('{"a":1.5,"b":[1e3,12345678901234567890],"c":"x"}', 100)).toEqual({ a: 1.5, b: [1000, 12345678901234567890], c: 'x' });
  });

  it('allows nesting up to the limit and refuses one level more, before parsing', () => {
    expect(parseJsonBody(nest(100), 100)).toBeDefined();
    expect(refusal(nest(101)).kind).toBe('too_deep');
    // Not JSON at all past the limit: still too_deep, found without parsing.
    expect(refusal('{"a":'.repeat(5000)).kind).toBe('too_deep');
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(parseJsonBody(JSON.stringify({ s: '[{'.repeat(500) + '\\"[[' }), 3)).toEqual({ s: '[{'.repeat(500) + '\\"[[' });
  });

  it('refuses lone surrogates in values and keys, either half and either case, with the path', () => {
    expect(refusal('{"a":"\\ud800"}')).toMatchObject({ kind: 'lone_surrogate', path: 'a' });
    expect(refusal('{"a":["ok","x\\uDC00"]}')).toMatchObject({ kind: 'lone_surrogate', path: 'a[1]' });
    expect(refusal('{"b":{"\\uD83D":1}}')).toMatchObject({ kind: 'lone_surrogate', path: 'b."\\ud83d"' });
    expect(refusal('"\\udfff\\ud800"')).toMatchObject({ kind: 'lone_surrogate', path: '' });
    // A lone surrogate as a raw code unit (text not from UTF-8) is found too.
    expect(refusal('{"a":"\ud800"}').kind).toBe('lone_surrogate');
  });

  it('accepts valid pairs, and a backslash-escaped "\\ud800" that is no escape', () => {
    expect(parseJsonBody('{"a":"\\ud83d\\ude00","\\uD83D\\uDE00":1}', 100)).toEqual({ a: '😀', '😀': 1 });
    expect(parseJsonBody('{"a":"\\\\ud800"}', 100)).toEqual({ a: '\\ud800' });
  });

  it('refuses text that is not JSON as syntax', () => {
    expect(refusal('{"a":').kind).toBe('syntax');
    expect(refusal('{"a":NaN}').kind).toBe('syntax');
  });
});

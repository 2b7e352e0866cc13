import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { canonicalJson, canonicalJsonBytes, canonicalJsonWithout, CanonicalJsonError, compareCodePoints, MAX_CANONICAL_DEPTH } from '../../src/core/canonical-json.js';
import { jsonObject, jsonValue, reverseKeyOrder, type Json } from './json-arbitrary.js';

// The spec's appendix "Canonical JSON" examples, input text -> expected output.
const SPEC_EXAMPLES: [string, string][] = [
  ['{}', '{}'],
  ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
  ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
  ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
  [
    `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`,
    '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
  ],
  ['{\n    "a": "日本語"\n}', '{"a":"日本語"}'],
  ['{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'],
  ['{\n    "a": "\\u65E5"\n}', '{"a":"日"}'],
  ['{\n    "a": null\n}', '{"a":null}'],
  ['{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'],
];

/** An independent reference: keys ordered by their UTF-8 bytes, which is code-point order. */
function reference(v: Json): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(v[k]!)}`).join(',')}}`;
}

function errorOf(f: () => unknown): CanonicalJsonError {
  try {
    f();
  } catch (err) {
    if (err instanceof CanonicalJsonError) return err;
    throw err;
  }
  throw new Error('expected a CanonicalJsonError');
}

describe('canonicalJson: spec examples', () => {
  it.each(SPEC_EXAMPLES)('%s', (input, expected) => {
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });
});

describe('canonicalJson: ordering and escaping', () => {
  it('matches bytes produced by the spec’s Python reference (json.dumps) for awkward keys and strings', () => {
    // Generated with the spec's Python canonical_json (sort_keys, ensure_ascii=False, UTF-8).
    const value = {
      '\uffff': 1,
      '😀': 2,
      a: '\u0000\u0001\u0008\u0009\u000a\u000b\u000c\u000d\u001f\u007f\u2028"\\/é',
      '10': 1,
      '9': 2,
      '': [true, false, null, -0, 9007199254740991, -9007199254740991],
    };
    expect(canonicalJsonBytes(value).toString('hex')).toBe(
      '7b22223a5b747275652c66616c73652c6e756c6c2c302c393030373139393235343734303939312c2d393030373139393235343734303939315d2c223130223a312c2239223a322c2261223a225c75303030305c75303030315c625c745c6e5c75303030625c665c725c75303031667fe280a85c225c5c2fc3a9222c22efbfbf223a312c22f09f9880223a327d',
    );
  });

  it('orders integer-like keys as strings, not numerically as JavaScript enumerates them', () => {
    expect(canonicalJson({ '10': 1, '9': 2, '1': 0, a: 3 })).toBe('{"1":0,"10":1,"9":2,"a":3}');
  });

  it('orders by code point: U+FFFF before U+1F600 although its UTF-16 unit is larger', () => {
    expect(canonicalJson({ '😀': 1, '\uffff': 2 })).toBe('{"\uffff":2,"😀":1}');
    expect(canonicalJson({ 'a😀': 1, 'a\ue000': 2, a: 0 })).toBe('{"a":0,"a\ue000":2,"a😀":1}');
  });

  it('escapes only quote, backslash and control characters, with the short forms where they exist', () => {
    expect(canonicalJson('\b\f\n\r\t')).toBe('"\\b\\f\\n\\r\\t"');
    expect(canonicalJson('\u0000\u000b\u001f\u001a')).toBe('"\\u0000\\u000b\\u001f\\u001a"');
    expect(canonicalJson('"\\')).toBe('"\\"\\\\"');
    expect(canonicalJson('/\u007f\u2028\u2029é😀')).toBe('"/\u007f\u2028\u2029é😀"');
  });

  it('emits non-ASCII as raw UTF-8 bytes', () => {
    expect(canonicalJsonBytes({ a: 'é' }).toString('hex')).toBe('7b2261223a22c3a9227d');
  });

  it('writes integers without exponent up to the limit and -0 as 0', () => {
    expect(canonicalJson([2 ** 53 - 1, -(2 ** 53 - 1), -0, 1e10])).toBe('[9007199254740991,-9007199254740991,0,10000000000]');
  });

  it('accepts objects with a null prototype', () => {
    const o = Object.create(null) as Record<string, number>;
    o['b'] = 1;
    o['a'] = 2;
    expect(canonicalJson(o)).toBe('{"a":2,"b":1}');
  });

  it('keeps an own "__proto__" key as data', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":1}'))).toBe('{"__proto__":{"x":1},"a":1}');
  });

  it('compareCodePoints agrees with UTF-8 byte order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('canonicalJson: rejects what canonical JSON cannot hold', () => {
  const bad: [string, unknown, CanonicalJsonError['kind']][] = [
    ['a float', 1.5, 'non_integer'],
    ['NaN', NaN, 'non_finite'],
    ['Infinity', Infinity, 'non_finite'],
    ['-Infinity', -Infinity, 'non_finite'],
    ['2^53', 2 ** 53, 'integer_range'],
    ['-(2^53)', -(2 ** 53), 'integer_range'],
    ['1e21', 1e21, 'integer_range'],
    ['undefined', undefined, 'unsupported_type'],
    ['a bigint', 1n, 'unsupported_type'],
    ['a function', () => 1, 'unsupported_type'],
    ['a symbol', Symbol('x'), 'unsupported_type'],
    ['a Date', new Date(0), 'unsupported_type'],
    ['a Map', new Map(), 'unsupported_type'],
    ['a Uint8Array', new Uint8Array(1), 'unsupported_type'],
    ['a lone high surrogate', 'a\ud800b', 'lone_surrogate'],
    ['a lone low surrogate', '\udc00', 'lone_surrogate'],
  ];
  it.each(bad)('%s', (_name, value, kind) => {
    const err = errorOf(() => canonicalJson(value));
    expect(err.kind).toBe(kind);
    expect(err.message.length).toBeGreaterThan(10);
    // Nested, the error names where it is.
    const nested = errorOf(() => canonicalJson({ content: { list: [0, value] } }));
    expect(nested.kind).toBe(kind);
    expect(nested.path).toBe('content.list[1]');
  });

  it('rejects an undefined property instead of dropping it as JSON.stringify does', () => {
    expect(errorOf(() => canonicalJson({ a: 1, b: undefined })).path).toBe('b');
  });

  it('rejects a lone surrogate in a key', () => {
    expect(errorOf(() => canonicalJson({ ['\ud83d']: 1 })).kind).toBe('lone_surrogate');
  });

  it('rejects cycles and over-deep nesting with a clear error, not a stack overflow', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(errorOf(() => canonicalJson(cyclic)).kind).toBe('too_deep');
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH + 1; i++) deep = [deep];
    expect(errorOf(() => canonicalJson(deep)).kind).toBe('too_deep');
    let ok: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) ok = [ok];
    expect(canonicalJson(ok)).toBe('['.repeat(MAX_CANONICAL_DEPTH) + '1' + ']'.repeat(MAX_CANONICAL_DEPTH));
  });
});

describe('canonicalJsonWithout', () => {
  it('leaves out the named top-level keys only', () => {
    const skip = new Set(['signatures', 'unsigned']);
    expect(canonicalJsonWithout({ b: 1, signatures: {}, a: { unsigned: 1 }, unsigned: 2 }, skip)).toBe('{"a":{"unsigned":1},"b":1}');
    expect(canonicalJsonWithout({ signatures: {} }, skip)).toBe('{}');
  });
  it('requires an object', () => {
    expect(() => canonicalJsonWithout([] as unknown as object, new Set())).toThrow(CanonicalJsonError);
  });
});

describe('canonicalJson: properties', () => {
  it('round-trips: JSON.parse(canonicalJson(x)) deep-equals x', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        // node's deep equality: vitest's is confused by own `constructor` keys.
        expect(isDeepStrictEqual(JSON.parse(canonicalJson(x)), x)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        const once = canonicalJson(x);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(jsonObject, (x) => {
        expect(canonicalJson(reverseKeyOrder(x))).toBe(canonicalJson(x));
      }),
      { numRuns: 1000 },
    );
  });

  it('matches an independent reference encoder (UTF-8 byte key order, JSON.stringify leaves)', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        expect(canonicalJson(x)).toBe(reference(x));
      }),
      { numRuns: 1000 },
    );
  });

  it('has no insignificant whitespace', () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        const outsideStrings = canonicalJson(x).replace(/"(?:[^"\\]|\\.)*"/g, '""');
        expect(outsideStrings).not.toMatch(/\s/);
      }),
      { numRuns: 300 },
    );
  });
});

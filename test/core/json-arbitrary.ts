/** fast-check arbitraries for JSON values that canonical JSON can hold. */
import fc from 'fast-check';

/** Keys biased towards the awkward cases: integer-like, astral, U+E000..U+FFFF, empty. */
export const jsonKey: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.stringMatching(/^[0-9]{1,3}$/),
  fc.constantFrom('', 'a', '\uffff', '\ue000', '😀', '\u{10ffff}', 'é', '__proto__', 'constructor'),
);

export const jsonInteger: fc.Arbitrary<number> = fc.oneof(fc.maxSafeInteger(), fc.constantFrom(0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 31, -(2 ** 31)));

export const jsonString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\n', '\u001f', '\u007f', '\u2028', 'a', '/'), maxLength: 8 }),
);

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const tree = fc.letrec<{ value: Json; array: Json[]; object: { [k: string]: Json } }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 5 }, fc.constant(null), fc.boolean(), jsonInteger, jsonString, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(jsonKey, tie('value'), { maxKeys: 6, noNullPrototype: true }),
}));

/** Any JSON value within canonical JSON's limits (integers within ±(2^53−1), no lone surrogates). */
export const jsonValue: fc.Arbitrary<Json> = tree.value;
export const jsonObject: fc.Arbitrary<{ [k: string]: Json }> = tree.object;

/** The same value with every object's keys inserted in reverse order. */
export function reverseKeyOrder(v: Json): Json {
  if (Array.isArray(v)) return v.map(reverseKeyOrder);
  if (v !== null && typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const k of Object.keys(v).reverse()) Object.defineProperty(out, k, { value: reverseKeyOrder(v[k]!), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

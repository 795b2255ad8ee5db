import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, deriveKey, topLayerInputs } from '../../src/images/key.js';
import { isKey } from '../../src/images/store.js';

describe('key derivation', () => {
  it('is independent of object key order and yields store-safe keys', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.boolean())), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(deriveKey(record)).toBe(deriveKey(reversed));
        expect(isKey(deriveKey(record))).toBe(true);
      }),
    );
  });

  it('canonical JSON sorts nested keys and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"x":2,"y":1}]},"b":1}');
  });

  it('top layer: package order and duplicates do not matter; packages, setup, base and version do', () => {
    const key = (base: string, packages: string[], setup?: string, version = '1.0.0') =>
      deriveKey(topLayerInputs(base, packages, setup, version));
    expect(key('b1', ['make', 'gcc', 'make'])).toBe(key('b1', ['gcc', 'make']));
    const reference = key('b1', ['gcc']);
    expect(key('b1', ['gcc', 'make'])).not.toBe(reference);
    expect(key('b1', ['gcc'], 'echo hi')).not.toBe(reference);
    expect(key('b2', ['gcc'])).not.toBe(reference);
    expect(key('b1', ['gcc'], undefined, '1.0.1')).not.toBe(reference);
  });
});

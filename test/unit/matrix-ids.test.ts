import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cellIds, expandMatrix, ID_MAX, parseMatrix, slugify } from '../../src/matrix/index.js';
import type { MatrixValue } from '../../src/matrix/index.js';

const SAFE_ID = /^[a-z0-9_-][a-z0-9._-]*$/;

describe('cell ids', () => {
  it('are readable slugs of the values', () => {
    expect(cellIds([{ image: 'debian:bookworm', cc: 'gcc' }, { image: 'oci:docker.io/library/debian@sha256:ab', py: 3.11 }])).toEqual([
      'debian-bookworm_cc-gcc',
      'oci-docker.io-library-debian-sha256-ab_py-3.11',
    ]);
  });

  it('are stable: derived from the values only, not from position or the other cells', () => {
    const a = { image: 'debian:sid', cc: 'gcc' };
    const b = { image: 'debian:trixie', cc: 'clang' };
    expect(cellIds([a, b])).toEqual([...cellIds([b, a])].reverse());
    expect(cellIds([a])[0]).toBe(cellIds([b, { image: 'x:y' }, a])[2]);
    const text = `matrix:\n  image: [debian:sid, debian:trixie]\n  cc: [gcc, clang]\nsteps:\n  - { name: s, run: 'true' }\n`;
    const first = expandMatrix(parseMatrix(text, 'm.yaml')).map((c) => c.id);
    const reordered = text.replace('[gcc, clang]', '[clang, gcc]');
    expect(expandMatrix(parseMatrix(reordered, 'm.yaml')).map((c) => c.id).sort()).toEqual([...first].sort());
  });

  it('are safe for hostile values: ../, /, NUL, control characters, unicode, long', () => {
    const hostile: Record<string, MatrixValue>[] = [
      { image: '../../etc', x: '../..' },
      { image: '/', x: '/root/.ssh' },
      { image: 'a\0b', x: '\u0000\n\u001b[31m' },
      { image: 'débian:ünstable', x: '日本語' },
      { image: '.hidden', x: '.' },
      { image: 'x'.repeat(500), y: 'z'.repeat(500) },
      { image: '-rf', x: '--force' },
    ];
    const ids = cellIds(hostile);
    for (const id of ids) {
      expect(id).toMatch(SAFE_ID);
      expect(id.length).toBeLessThanOrEqual(ID_MAX);
      expect(id).not.toContain('..');
    }
    expect(ids[3]).toBe('debian-unstable_x');
    expect(ids[5]).toMatch(/^x+-[0-9a-f]{8}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('get a hash suffix when slugs collide, and a counter for identical values', () => {
    const ids = cellIds([{ image: 'a:b', v: 1 }, { image: 'a:b', v: '1' }, { image: 'A:B', v: 1 }, { image: 'a:b', v: 1 }]);
    expect(ids[0]).toMatch(/^a-b_v-1-[0-9a-f]{8}$/);
    expect(ids[1]).toMatch(/^a-b_v-1-[0-9a-f]{8}$/);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[2]).toMatch(/^a-b_v-1-[0-9a-f]{8}$/);
    expect(ids[3]).toBe(`${ids[0]}-2`);
    expect(new Set(ids).size).toBe(4);
  });

  it('slugify keeps [a-z0-9._-] only and never leads with a dot', () => {
    expect(slugify('Debian:Bookworm')).toBe('debian-bookworm');
    expect(slugify('...x')).toBe('x');
    expect(slugify('a..b')).toBe('a.b');
  });

  it('property: any values give safe, bounded, unique ids', () => {
    const value = fc.oneof(fc.string({ unit: 'binary', maxLength: 150 }), fc.integer(), fc.double(), fc.boolean());
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,20}$/);
    const values = fc.tuple(value, fc.dictionary(key, value, { maxKeys: 5 })).map(([image, rest]) => {
      const out: Record<string, MatrixValue> = { image: image as MatrixValue };
      for (const [k, v] of Object.entries(rest)) if (k !== 'image') out[k] = v as MatrixValue;
      return out;
    });
    fc.assert(
      fc.property(fc.array(values, { maxLength: 20 }), (sets) => {
        const ids = cellIds(sets);
        expect(ids).toHaveLength(sets.length);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of ids) {
          expect(id).toMatch(SAFE_ID);
          expect(id.length).toBeLessThanOrEqual(ID_MAX);
        }
        expect(cellIds(sets)).toEqual(ids);
      }),
      { numRuns: 300 },
    );
  });
});

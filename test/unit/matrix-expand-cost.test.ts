/**
 * What expansion costs: a matrix file must not buy minutes of CPU with many exclude (or include) entries. The cost
 * is asserted as a count of visited combinations (no wall clock), and the semantics against a naive reference
 * implementation of GitHub's algorithm.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { expandCombinations, expandMatrix, parseMatrix } from '../../src/matrix/index.js';
import type { Axis, MatrixValue } from '../../src/matrix/index.js';

type Values = Record<string, MatrixValue>;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const SIDE = 316;
const EXCLUDES = range(3000).map((i) => ({ a: i % SIDE, b: Math.floor(i / SIDE) }));
const BIG_AXES: Axis[] = [
  { key: 'image', values: ['debian:sid'] },
  { key: 'a', values: range(SIDE) },
  { key: 'b', values: range(SIDE) },
];

function bigFile(): string {
  const exclude = EXCLUDES.map(({ a, b }) => `    - { a: ${a}, b: ${b} }`).join('\n');
  return `matrix:\n  image: [debian:sid]\n  a: [${range(SIDE).join(', ')}]\n  b: [${range(SIDE).join(', ')}]\n  exclude:\n${exclude}\nsteps:\n  - { name: s, run: 'true' }\n`;
}

/** GitHub's algorithm written the obvious way: every combination against every entry. */
function reference(axes: readonly Axis[], exclude: readonly Values[], include: readonly Values[]): Values[] {
  let product: Values[] = axes.length === 0 ? [] : [{}];
  for (const axis of axes) product = product.flatMap((partial) => axis.values.map((value) => ({ ...partial, [axis.key]: value })));
  const matches = (values: Values, partial: Values) =>
    Object.entries(partial).every(([key, value]) => Object.hasOwn(values, key) && values[key] === value);
  const originals = product.filter((values) => !exclude.some((entry) => matches(values, entry)));
  const axisKeys = new Set(axes.map((axis) => axis.key));
  const added: Values[] = [];
  for (const entry of include) {
    let extended = false;
    for (const values of originals) {
      if (Object.entries(entry).some(([key, value]) => axisKeys.has(key) && values[key] !== value)) continue;
      Object.assign(values, entry);
      extended = true;
    }
    if (!extended) added.push({ ...entry });
  }
  return [...originals, ...added];
}

describe('expansion cost', () => {
  it('316 x 316 values and 3,000 excludes: each exclude visits only what it matches', () => {
    const stats = { visits: 0 };
    const combos = expandCombinations(BIG_AXES, EXCLUDES, [], stats);
    expect(combos).toHaveLength(SIDE * SIDE - EXCLUDES.length);
    expect(combos[0]!.values).toEqual({ image: 'debian:sid', a: 0, b: 10 });
    // One visit per exclude entry (each names a single combination), not 99,856 x 3,000 comparisons.
    expect(stats.visits).toBe(EXCLUDES.length);
  }, 20_000);

  // Its cost is asserted by the visit count above (a wall-clock bound failed under load); this checks the whole
  // validate path on the same file: about a second here, where the quadratic expansion took over a minute.
  it('validate (parse, check, expand) of that matrix file gives the right cells and the size error', () => {
    const model = parseMatrix(bigFile(), 'big.yaml');
    expect(expandMatrix(model, { maxCells: 100_000 })).toHaveLength(SIDE * SIDE - EXCLUDES.length);
    expect(() => expandMatrix(model)).toThrow(/expands to 96856 cells, more than the limit of 256/);
  });

  it('include entries cost what they extend; entries repeated visit nothing more', () => {
    const stats = { visits: 0 };
    const include = [{ a: 5, extra: 1 }, { b: 7, other: 'x' }, { a: 999, b: 1 }];
    const combos = expandCombinations(BIG_AXES, [...EXCLUDES, ...EXCLUDES], include, stats);
    expect(stats.visits).toBe(EXCLUDES.length + SIDE + SIDE);
    expect(combos.at(-1)).toEqual({ values: { a: 999, b: 1 }, fromInclude: 2 });
    expect(combos.filter((c) => c.values.extra === 1)).toHaveLength(SIDE - 10);
  }, 20_000);

  it('a matrix whose entries would visit too many combinations is refused with a positioned error', () => {
    // 16 two-valued axes (65,536 combinations) and 3,000 entries that each fix only one to three axes.
    const keys = range(16).map((i) => `x${i}`);
    const exclude: string[] = [];
    const fixing = (chosen: string[], bits: number) => `    - { ${chosen.map((key, n) => `${key}: ${(bits >> n) & 1}`).join(', ')} }`;
    for (const i of range(16)) for (const bits of range(2)) exclude.push(fixing([keys[i]!], bits));
    for (const i of range(16)) for (const j of range(16).slice(i + 1)) for (const bits of range(4)) exclude.push(fixing([keys[i]!, keys[j]!], bits));
    for (const i of range(16)) {
      for (const j of range(16).slice(i + 1)) {
        for (const k of range(16).slice(j + 1)) for (const bits of range(8)) if (exclude.length < 3000) exclude.push(fixing([keys[i]!, keys[j]!, keys[k]!], bits));
      }
    }
    const text = `matrix:\n  image: [debian:sid]\n${keys.map((k) => `  ${k}: [0, 1]`).join('\n')}\n  exclude:\n${exclude.join('\n')}\nsteps:\n  - { name: s, run: 'true' }\n`;
    let error: unknown;
    try {
      parseMatrix(text, 'adv.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).lines).toEqual([
      expect.stringMatching(/^adv\.yaml:1:1: matrix: include and exclude entries would visit \d+ combinations, more than 20000000 \(use fewer axis values or entries\)$/),
    ]);
  }, 20_000);

  it('a product too large to expand is refused by validate, not expanded without limit', () => {
    const values = range(100).join(', ');
    const text = `matrix:\n  image: [debian:sid]\n  a: [${values}]\n  b: [${values}]\n  c: [${values}]\n  d: [${values}]\nsteps:\n  - { name: s, run: 'true' }\n`;
    const model = parseMatrix(text, 'huge.yaml');
    expect(() => expandMatrix(model)).toThrow(/^huge\.yaml:\d+:\d+: matrix: the axes multiply to 100000000 combinations, more than 100000/);
  }, 20_000);

  it('gives exactly what the naive algorithm gives (strict values, repeated values, NaN, -0)', () => {
    const value = fc.constantFrom<MatrixValue>(0, -0, 1, '1', '0', true, 'true', Number.NaN, 'x');
    const keyName = fc.constantFrom('a', 'b', 'c', 'd');
    const entry = fc.dictionary(keyName, value, { maxKeys: 3 });
    const axesArb = fc
      .uniqueArray(keyName, { maxLength: 3 })
      .chain((names) => fc.tuple(...names.map((key) => fc.array(value, { minLength: 1, maxLength: 4 }).map((values) => ({ key, values })))));
    fc.assert(
      fc.property(axesArb, fc.array(entry, { maxLength: 4 }), fc.array(entry, { maxLength: 4 }), (axes, exclude, include) => {
        const ours = expandCombinations(axes, exclude, include).map((c) => c.values);
        expect(ours).toEqual(reference(axes, exclude, include));
      }),
      { numRuns: 2000 },
    );
  });
});

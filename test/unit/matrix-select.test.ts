import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { expandMatrix, parseMatrix, parseShard, selectCells } from '../../src/matrix/index.js';
import type { Cell } from '../../src/matrix/index.js';

const model = parseMatrix(
  `matrix:
  image: [debian:bookworm, debian:trixie, debian:sid]
  cc: [gcc, clang]
  opt: [0, 2]
  include:
    - { image: debian:sid, cc: gcc, opt: 2, experimental: true }
steps:
  - { name: build, run: make }
`,
  'm.yaml',
);
const cells = expandMatrix(model);
const ids = (list: Cell[]) => list.map((cell) => cell.id);

function usageLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).lines;
  }
  throw new Error('expected a UsageError');
}

describe('parseShard', () => {
  it('reads I/N, 1-based', () => {
    expect(parseShard('1/1')).toEqual({ index: 1, total: 1 });
    expect(parseShard('3/4')).toEqual({ index: 3, total: 4 });
    expect(parseShard(' 2 / 5 ')).toEqual({ index: 2, total: 5 });
  });

  it.each(['0/2', '3/2', '1/0', '1', 'a/b', '1/2/3', '-1/2', '1.5/2', ''])('refuses %j naming --shard', (text) => {
    const lines = usageLines(() => parseShard(text));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^--shard .*: expected I\/N with 1 <= I <= N/);
  });
});

describe('selectCells: --filter', () => {
  it('keeps every cell without filters', () => {
    expect(selectCells(cells)).toEqual(cells);
  });

  it('ANDs across keys', () => {
    const picked = selectCells(cells, { filter: ['image=debian:sid', 'cc=gcc'] });
    expect(picked.map((c) => c.name)).toEqual(['debian:sid [cc=gcc, opt=0]', 'debian:sid [cc=gcc, opt=2, experimental=true]']);
  });

  it('ORs within one key', () => {
    const picked = selectCells(cells, { filter: ['image=debian:sid', 'image=debian:trixie', 'opt=0', 'cc=clang'] });
    expect(picked.map((c) => c.name)).toEqual(['debian:trixie [cc=clang, opt=0]', 'debian:sid [cc=clang, opt=0]']);
  });

  it('compares values as text (numbers and booleans included) and matches include-only keys', () => {
    expect(selectCells(cells, { filter: ['opt=2'] })).toHaveLength(6);
    expect(selectCells(cells, { filter: ['experimental=true'] }).map((c) => c.id)).toEqual(['debian-sid_cc-gcc_opt-2_experimental-true']);
  });

  it('selects by cell id with the nsmatrix-cell key, as printed by list --format github', () => {
    const target = cells[4]!;
    expect(selectCells(cells, { filter: [`nsmatrix-cell=${target.id}`] })).toEqual([target]);
  });

  it('a value only after the first "=" is part of the value', () => {
    expect(selectCells(cells, { filter: ['cc=gcc=x'] })).toEqual([]);
  });

  it('refuses an unknown key with a hint, and a filter without "="', () => {
    expect(usageLines(() => selectCells(cells, { filter: ['imgae=debian:sid'] }))).toEqual([
      '--filter "imgae": no cell has this key (did you mean "image"?)',
    ]);
    expect(usageLines(() => selectCells(cells, { filter: ['zzz=1'] }))).toEqual([
      '--filter "zzz": no cell has this key (keys: image, cc, opt, experimental, nsmatrix-cell)',
    ]);
    expect(usageLines(() => selectCells(cells, { filter: ['image'] }))[0]).toMatch(/^--filter "image": expected KEY=VALUE/);
    expect(usageLines(() => selectCells(cells, { filter: ['=x'] }))[0]).toMatch(/^--filter "=x": expected KEY=VALUE/);
  });
});

describe('selectCells: --shard', () => {
  it('is round-robin over expansion order', () => {
    expect(ids(selectCells(cells, { shard: '1/3' }))).toEqual([0, 3, 6, 9].map((i) => cells[i]!.id));
    expect(ids(selectCells(cells, { shard: '3/3' }))).toEqual([2, 5, 8, 11].map((i) => cells[i]!.id));
  });

  it('applies after the filter', () => {
    const filtered = selectCells(cells, { filter: ['cc=gcc'] });
    expect(selectCells(cells, { filter: ['cc=gcc'], shard: '2/2' })).toEqual(filtered.filter((_, i) => i % 2 === 1));
  });

  it('property: for any N, the shards partition the cells, each exactly once, in order, deterministically', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 50 }), (count, total) => {
        const pool: Cell[] = Array.from({ length: count }, (_, i) => ({
          id: `c${i}`,
          name: `c${i}`,
          image: 'debian:sid',
          values: { image: 'debian:sid', n: i },
          continueOnError: false,
          steps: [],
        }));
        const shards = Array.from({ length: total }, (_, i) => selectCells(pool, { shard: `${i + 1}/${total}` }));
        const seen = shards.flat().map((cell) => cell.id);
        expect(seen.slice().sort()).toEqual(pool.map((cell) => cell.id).sort());
        expect(new Set(seen).size).toBe(count);
        // Sizes differ by at most one, and each shard keeps expansion order.
        const sizes = shards.map((shard) => shard.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        for (const shard of shards) expect(shard.map((c) => c.values.n)).toEqual([...shard.map((c) => c.values.n)].sort((a, b) => Number(a) - Number(b)));
        expect(selectCells(pool, { shard: `1/${total}` })).toEqual(shards[0]);
      }),
      { numRuns: 300 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { hostArch } from '../../src/lib/arch.js';
import { cellEnvironment, expandCombinations, expandMatrix, parseMatrix } from '../../src/matrix/index.js';
import type { Axis, MatrixValue } from '../../src/matrix/index.js';

type Values = Record<string, MatrixValue>;
const axes = (spec: Record<string, MatrixValue[]>): Axis[] => Object.entries(spec).map(([key, values]) => ({ key, values }));
const expand = (spec: Record<string, MatrixValue[]>, options: { include?: Values[]; exclude?: Values[] } = {}) =>
  expandCombinations(axes(spec), options.exclude ?? [], options.include ?? []).map((c) => c.values);

// Every worked example of GitHub's "Running variations of jobs in a workflow" (strategy.matrix) documentation.
describe('GitHub Actions documented matrix examples', () => {
  it('single-dimension matrix: version [10, 12, 14] runs three jobs', () => {
    expect(expand({ version: [10, 12, 14] })).toEqual([{ version: 10 }, { version: 12 }, { version: 14 }]);
  });

  it('multi-dimension matrix: 2 os x 3 versions = 6 jobs, first key slowest', () => {
    expect(expand({ os: ['ubuntu-22.04', 'ubuntu-20.04'], version: [10, 12, 14] })).toEqual([
      { os: 'ubuntu-22.04', version: 10 },
      { os: 'ubuntu-22.04', version: 12 },
      { os: 'ubuntu-22.04', version: 14 },
      { os: 'ubuntu-20.04', version: 10 },
      { os: 'ubuntu-20.04', version: 12 },
      { os: 'ubuntu-20.04', version: 14 },
    ]);
  });

  it('include: the fruit/animal example gives exactly the six documented combinations', () => {
    const result = expand(
      { fruit: ['apple', 'pear'], animal: ['cat', 'dog'] },
      {
        include: [
          { color: 'green' },
          { color: 'pink', animal: 'cat' },
          { fruit: 'apple', shape: 'circle' },
          { fruit: 'banana' },
          { fruit: 'banana', animal: 'cat' },
        ],
      },
    );
    expect(result).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
  });

  it('include: perl example runs seven jobs, five ubuntu and two macos', () => {
    const result = expand(
      { os: ['ubuntu-latest'], perl: ['5.16', '5.20', '5.26', '5.30', 'latest'] },
      { include: [{ os: 'macos-latest', perl: '5.26' }, { os: 'macos-latest', perl: 'latest' }] },
    );
    expect(result).toHaveLength(7);
    expect(result.filter((v) => v.os === 'ubuntu-latest').map((v) => v.perl)).toEqual(['5.16', '5.20', '5.26', '5.30', 'latest']);
    expect(result.slice(5)).toEqual([
      { os: 'macos-latest', perl: '5.26' },
      { os: 'macos-latest', perl: 'latest' },
    ]);
  });

  it('expanding configurations: npm 6 is added only to windows-latest / node 16, six jobs', () => {
    const result = expand(
      { os: ['windows-latest', 'ubuntu-latest'], node: [12, 14, 16] },
      { include: [{ os: 'windows-latest', node: 16, npm: 6 }] },
    );
    expect(result).toHaveLength(6);
    expect(result.filter((v) => 'npm' in v)).toEqual([{ os: 'windows-latest', node: 16, npm: 6 }]);
  });

  it('adding configurations: 3 x 3 plus windows-latest / 17 is ten jobs', () => {
    const result = expand(
      { os: ['macos-latest', 'windows-latest', 'ubuntu-latest'], version: [12, 14, 16] },
      { include: [{ os: 'windows-latest', version: 17 }] },
    );
    expect(result).toHaveLength(10);
    expect(result[9]).toEqual({ os: 'windows-latest', version: 17 });
  });

  it('include only (no matrix variables): every include entry is one job', () => {
    const include = [
      { site: 'production', datacenter: 'site-a' },
      { site: 'staging', datacenter: 'site-b' },
    ];
    expect(expand({}, { include })).toEqual(include);
  });

  it('exclude: 12 configurations minus a full and a partial match leave nine', () => {
    const result = expand(
      { os: ['macos-latest', 'windows-latest'], version: [12, 14, 16], environment: ['staging', 'production'] },
      {
        exclude: [
          { os: 'macos-latest', version: 12, environment: 'production' },
          { os: 'windows-latest', version: 16 },
        ],
      },
    );
    expect(result).toHaveLength(9);
    expect(result).not.toContainEqual({ os: 'macos-latest', version: 12, environment: 'production' });
    expect(result.filter((v) => v.os === 'windows-latest' && v.version === 16)).toEqual([]);
    expect(result).toContainEqual({ os: 'macos-latest', version: 12, environment: 'staging' });
  });

  it('include is processed after exclude, so it can add back an excluded combination', () => {
    const result = expand(
      { os: ['macos-latest', 'windows-latest'], version: [12, 16] },
      { exclude: [{ os: 'windows-latest', version: 16 }], include: [{ os: 'windows-latest', version: 16 }] },
    );
    expect(result).toEqual([
      { os: 'macos-latest', version: 12 },
      { os: 'macos-latest', version: 16 },
      { os: 'windows-latest', version: 12 },
      { os: 'windows-latest', version: 16 },
    ]);
  });
});

describe('expandCombinations details', () => {
  it('compares values strictly: 16 and "16" differ', () => {
    const result = expand({ node: [16] }, { include: [{ node: '16', extra: 1 }] });
    expect(result).toEqual([{ node: 16 }, { node: '16', extra: 1 }]);
  });

  it('marks combinations created by include with the entry index', () => {
    const combos = expandCombinations(axes({ a: [1] }), [], [{ a: 1, x: 1 }, { a: 2 }]);
    expect(combos.map((c) => c.fromInclude)).toEqual([undefined, 1]);
  });

  it('a new combination from include is not extended by later entries', () => {
    expect(expand({ a: [1] }, { include: [{ a: 2 }, { b: 3 }] })).toEqual([{ a: 1, b: 3 }, { a: 2 }]);
  });
});

const FILE = `name: demo
matrix:
  image: [debian:bookworm, debian:trixie]
  cc: [gcc, clang]
  exclude:
    - { image: debian:bookworm, cc: clang }
  include:
    - { image: debian:trixie, cc: clang, experimental: true }
env:
  FLAVOUR: \${{ matrix.cc }}
timeout: 5m
retries: 1
continue-on-error: \${{matrix.experimental}}
steps:
  - name: build \${{ matrix.cc }}
    run: make CC=\${{   matrix.cc }} IMG=\${{ matrix.image }}
    env: { STEP: one }
  - name: test
    run: make check
    timeout: 10s
    retries: 3
    continue-on-error: \${{ matrix.experimental }}
`;

describe('expandMatrix', () => {
  const model = parseMatrix(FILE, 'demo.yaml');
  const cells = expandMatrix(model);

  it('names cells "image [k=v, ...]" with axis values first, then include-added keys', () => {
    expect(cells.map((c) => c.name)).toEqual([
      'debian:bookworm [cc=gcc]',
      'debian:trixie [cc=gcc]',
      'debian:trixie [cc=clang, experimental=true]',
    ]);
    expect(cells.map((c) => c.id)).toEqual(['debian-bookworm_cc-gcc', 'debian-trixie_cc-gcc', 'debian-trixie_cc-clang_experimental-true']);
  });

  it('interpolates ${{ matrix.KEY }} (whitespace-tolerant) in step names, run and env', () => {
    const [step] = cells[2]!.steps;
    expect(step).toMatchObject({ index: 0, name: 'build clang', run: 'make CC=clang IMG=debian:trixie' });
    expect(step!.env).toEqual({ FLAVOUR: 'clang', STEP: 'one' });
    expect(cells[0]!.steps[1]!.env).toEqual({ FLAVOUR: 'gcc' });
  });

  it('resolves continue-on-error per cell; an unset ${{ matrix.experimental }} is false', () => {
    expect(cells.map((c) => c.continueOnError)).toEqual([false, false, true]);
    expect(cells.map((c) => c.steps[1]!.continueOnError)).toEqual([false, false, true]);
  });

  it('applies matrix-level timeout and retries unless the step sets its own', () => {
    expect(cells[0]!.steps.map((s) => [s.timeoutMs, s.retries])).toEqual([
      [300_000, 1],
      [10_000, 3],
    ]);
  });

  it('cellEnvironment gives MATRIX_<KEY> for every value, the matrix env, CI and NSMATRIX_CELL', () => {
    expect(cellEnvironment(cells[2]!, model)).toEqual({
      CI: 'true',
      FLAVOUR: 'clang',
      MATRIX_ARCH: hostArch(),
      MATRIX_IMAGE: 'debian:trixie',
      MATRIX_CC: 'clang',
      MATRIX_EXPERIMENTAL: 'true',
      NSMATRIX_CELL: 'debian-trixie_cc-clang_experimental-true',
    });
  });

  it('refuses more cells than --max-cells, positioned at matrix:', () => {
    const error = (() => {
      try {
        expandMatrix(model, { maxCells: 2 });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).lines).toEqual([
      'demo.yaml:2:1: matrix: expands to 3 cells, more than the limit of 2 (raise it with --max-cells)',
    ]);
  });

  it('the default limit is 256 cells, like GitHub', () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => i).join(', ');
    const big = `matrix:\n  image: [debian:sid]\n  a: [${values(16)}]\n  b: [${values(16)}]\nsteps:\n  - { name: s, run: 'true' }\n`;
    expect(expandMatrix(parseMatrix(big, 'big.yaml'))).toHaveLength(256);
    const bigger = big.replace(`b: [${values(16)}]`, `b: [${values(17)}]`);
    expect(() => expandMatrix(parseMatrix(bigger, 'big.yaml'))).toThrow(/272 cells, more than the limit of 256/);
  });

  it('interpolates an image built from another axis and checks the result', () => {
    const text = `matrix:\n  suite: [bookworm, trixie]\n  image: ['debian:\${{ matrix.suite }}']\nsteps:\n  - { name: s, run: 'true' }\n`;
    expect(expandMatrix(parseMatrix(text, 'x.yaml')).map((c) => c.image)).toEqual(['debian:bookworm', 'debian:trixie']);
  });

  it('gives duplicate combinations distinct names and ids', () => {
    const text = `matrix:\n  include:\n    - { image: debian:sid }\n    - { image: debian:sid }\nsteps:\n  - { name: s, run: 'true' }\n`;
    const twins = expandMatrix(parseMatrix(text, 'x.yaml'));
    expect(twins.map((c) => c.name)).toEqual(['debian:sid', 'debian:sid #2']);
    expect(new Set(twins.map((c) => c.id)).size).toBe(2);
  });

  it('works on a model built by hand (no origin): positions fall back to line 1', () => {
    const { origin: _origin, ...bare } = model;
    expect(() => expandMatrix(bare, { maxCells: 1 })).toThrow(/:1:1: matrix: expands to 3 cells/);
  });
});

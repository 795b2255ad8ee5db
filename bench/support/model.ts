/** Builders for matrix models and cells in tests that exercise later stages without a matrix file. */
import type { Cell, CellStep, MatrixModel } from '../../src/matrix/types.js';

export function makeModel(overrides: Partial<MatrixModel> = {}): MatrixModel {
  return {
    file: '/tmp/nsmatrix-test/nsmatrix.yaml',
    dir: '/tmp/nsmatrix-test',
    name: 'test',
    axes: [{ key: 'image', values: ['debian:bookworm'] }],
    include: [],
    exclude: [],
    images: {},
    packages: [],
    source: 'overlay',
    env: {},
    boot: false,
    network: 'host',
    privateUsers: false,
    failFast: true,
    timeoutMs: 60_000,
    retries: 0,
    continueOnError: false,
    bind: [],
    nspawn: [],
    steps: [],
    ...overrides,
  };
}

export function makeStep(index: number, name: string, run: string, overrides: Partial<CellStep> = {}): CellStep {
  return { index, name, run, timeoutMs: 60_000, retries: 0, continueOnError: false, env: {}, ...overrides };
}

export function makeCell(id: string, steps: CellStep[], overrides: Partial<Cell> = {}): Cell {
  return { id, name: `debian:bookworm [n=${id}]`, image: 'debian:bookworm', values: { image: 'debian:bookworm', n: id }, continueOnError: false, steps, ...overrides };
}

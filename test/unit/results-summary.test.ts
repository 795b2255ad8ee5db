/** The terminal summary's per-cell test counts. */
import { describe, expect, it } from 'vitest';
import { RESULT_VERSION, type CellResult, type RunResult, type TestRecord } from '../../src/run/result.js';
import { palette } from '../../src/ui/colors.js';
import { summaryTable } from '../../src/ui/summary.js';

const c = palette(false);

function cell(id: string, tests?: TestRecord[], warnings: string[] = []): CellResult {
  const attempt = { attempt: 1, startedAt: '2026-11-22T03:40:00.000Z', durationMs: 1000, exitCode: 0, signal: null, timedOut: false, logPath: `${id}/01-t.log`, tail: [] };
  return {
    id,
    position: 0,
    name: id,
    image: 'debian:sid',
    values: {},
    outcome: 'passed',
    continueOnError: false,
    startedAt: attempt.startedAt,
    durationMs: 1000,
    steps: [{ index: 0, name: 't', outcome: 'passed', continueOnError: false, flaky: false, attempts: [tests ? { ...attempt, results: { tests, files: [], warnings } } : attempt] }],
    outputDir: id,
    artifactsDir: `${id}/artifacts`,
    rerun: '',
  };
}

const run = (cells: CellResult[]): RunResult => ({
  version: RESULT_VERSION,
  tool: { name: 'nsmatrix', version: '0' },
  matrix: { name: 'm', file: 'm.yaml', axes: [], stepNames: ['t'] },
  host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: true },
  startedAt: '2026-11-22T03:40:00.000Z',
  durationMs: 1000,
  outcome: 'passed',
  interrupted: false,
  cells,
});

describe('terminal summary: test counts per cell', () => {
  it('adds a tests column when a step declares results', () => {
    const t = (outcome: TestRecord['outcome']): TestRecord => ({ name: 'x', suite: '', outcome });
    const table = summaryTable(run([cell('a', [t('passed'), t('failed'), t('error'), t('skipped')], ['w']), cell('b', [t('passed')]), cell('c')]), c).split('\n');
    expect(table[0]).toMatch(/result\s+tests\s+time$/);
    expect(table[1]).toMatch(/PASS\s+4 tests, 2 failed, 1 skipped, 1 warning\s+1\.0s$/);
    expect(table[2]).toMatch(/PASS\s+1 test\s+1\.0s$/);
    expect(table[3]).toMatch(/PASS\s+-\s+1\.0s$/);
  });

  it('has no tests column otherwise', () => {
    expect(summaryTable(run([cell('a')]), c).split('\n')[0]).toMatch(/result\s+time$/);
  });
});

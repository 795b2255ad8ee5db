import { describe, expect, it } from 'vitest';
import { colorsEnabled, palette, terminalSafe } from '../../src/ui/colors.js';
import { createPlainView } from '../../src/ui/plain.js';
import { summaryTable, totals } from '../../src/ui/summary.js';
import type { CellResult, RunResult } from '../../src/run/result.js';
import { makeCell, makeStep } from '../../bench/support/model.js';

describe('colours', () => {
  it('follow FORCE_COLOR, then NO_COLOR, then whether the stream is a terminal', () => {
    expect(colorsEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorsEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorsEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorsEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorsEnabled({ isTTY: true }, { FORCE_COLOR: '0' })).toBe(false);
    expect(colorsEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(palette(false).red('x')).toBe('x');
    expect(palette(true).red('x')).toBe('\u001b[31mx\u001b[39m');
  });

  it('never lets step output drive the terminal', () => {
    const hostile = 'a\u001b[2J\u001b]0;pwned\u0007b\u0000c\u009bd';
    const safe = terminalSafe(hostile);
    expect(safe).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(safe).toBe('ab\\x00c\\x9bd');
  });
});

function result(cells: CellResult[]): RunResult {
  return {
    version: 1, tool: { name: 'nsmatrix', version: '0' }, matrix: { name: 'm', file: '/m.yaml', axes: [], stepNames: ['build', 'test'] },
    host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 65_000,
    outcome: 'failed', interrupted: false, cells,
  };
}
const attempt = (exitCode: number) => ({ attempt: 1, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 1500, exitCode, signal: null, timedOut: false, logPath: 'c/01-build.log', tail: ['boom'] });
const cell = (id: string, outcome: CellResult['outcome'], exit: number): CellResult => ({
  id, position: 0, name: `debian:sid [n=${id}]`, image: 'debian:sid', values: {}, outcome, continueOnError: false, startedAt: '2026-11-22T00:00:00.000Z',
  durationMs: 3000, outputDir: id, artifactsDir: `${id}/artifacts`, rerun: `nsmatrix run m.yaml --filter n=${id}`,
  steps: [
    { index: 0, name: 'build', outcome: exit === 0 ? 'passed' : 'failed', continueOnError: false, flaky: false, attempts: [attempt(exit)] },
    { index: 1, name: 'test', outcome: 'not-run', reason: 'not run', continueOnError: false, flaky: false, attempts: [] },
  ],
});

describe('summary and plain view', () => {
  it('tabulates cells by steps and totals the run', () => {
    const table = summaryTable(result([cell('1', 'passed', 0), cell('2', 'failed', 2)]), palette(false)).split('\n');
    expect(table[0]).toMatch(/^cell\s+build\s+test\s+result\s+time$/);
    expect(table[1]).toMatch(/^debian:sid \[n=1\]\s+ok 1\.5s\s+-\s+PASS\s+3\.0s$/);
    expect(table[2]).toMatch(/FAIL 1\.5s\s+-\s+FAIL/);
    expect(totals(result([cell('1', 'passed', 0), cell('2', 'failed', 2)]))).toBe('2 cells: 1 passed, 1 failed in 1m05s');
  });

  it('prints timestamped lines, and on a failure the log tail and the rerun command', () => {
    const lines: string[] = [];
    const view = createPlainView({ write: (t) => lines.push(t), colors: palette(false), now: () => new Date('2026-11-22T10:11:12Z') });
    const c = makeCell('2', [makeStep(0, 'build', 'false')]);
    view({ type: 'run-start', matrixName: 'm', file: '/m.yaml', cells: [c], outputDir: '/out', startedAt: '' });
    view({ type: 'step-start', cell: c, step: 0, name: 'build', attempt: 1 });
    view({ type: 'cell-end', cell: c, result: cell('2', 'failed', 2) });
    const text = lines.join('');
    expect(text).toMatch(/^10:11:12 m: 1 cell \(output: \/out\)$/m);
    expect(text).toMatch(/^10:11:12 .*step "build"$/m);
    expect(text).toContain('step "build": exit status 2; log: /out/c/01-build.log');
    expect(text).toContain('  | boom');
    expect(text).toContain('rerun: nsmatrix run m.yaml --filter n=2');
    expect(text).not.toContain('\u001b');
  });
});

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { shellQuote, rerunCommand } from '../../src/run/rerun.js';
import { parseDuration, formatDuration } from '../../src/lib/duration.js';
import { stepLogName, attemptOutcome } from '../../src/run/cell.js';
import { mergeResults, exitCodeFor } from '../../src/run/merge.js';
import { UsageError } from '../../src/errors.js';
import type { CellResult, RunResult } from '../../src/run/result.js';

describe('shellQuote and rerunCommand', () => {
  it('produces words a POSIX shell reads back unchanged', () => {
    for (const word of ['plain', "it's", 'a b', '$(rm -rf /)', '`x`', 'é;|&', '']) {
      const echoed = execFileSync('sh', ['-c', `printf %s ${shellQuote(word)}`], { encoding: 'utf8' });
      expect(echoed).toBe(word);
    }
  });
  it('filters on every value of the cell', () => {
    expect(rerunCommand('m.yaml', { values: { image: 'debian:sid', cc: 'gcc', experimental: true } })).toBe(
      'nsmatrix run m.yaml --filter image=debian:sid --filter cc=gcc --filter experimental=true',
    );
    expect(rerunCommand('my dir/m.yaml', { values: { msg: "o'k" } })).toBe(`nsmatrix run 'my dir/m.yaml' --filter 'msg=o'\\''k'`);
  });
});

describe('durations', () => {
  it.each([
    ['30m', 1_800_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['2d', 172_800_000],
    ['45', 45_000],
    [10, 10_000],
  ])('parses %s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '0', '-5s', '5 minutes', 'm', '1x', '0s'])('rejects %j', (text) => expect(parseDuration(text)).toBeUndefined());
  it('formats for people', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(61_000)).toBe('1m01s');
    expect(formatDuration(3_720_000)).toBe('1h02m');
  });
});

describe('step outcomes', () => {
  const exec = { exitCode: 0, signal: null, timedOut: false, durationMs: 1, tail: [] };
  it('maps exit statuses and signals', () => {
    expect(attemptOutcome(exec)).toBe('passed');
    expect(attemptOutcome({ ...exec, exitCode: 77 })).toBe('skipped');
    expect(attemptOutcome({ ...exec, exitCode: 1 })).toBe('failed');
    expect(attemptOutcome({ ...exec, exitCode: null, signal: 'SIGKILL' })).toBe('failed');
    expect(attemptOutcome({ ...exec, exitCode: null, timedOut: true })).toBe('timed-out');
  });
  it('names logs by position and a safe slug', () => {
    expect(stepLogName({ index: 0, name: 'Build it!' }, 1)).toBe('01-build-it.log');
    expect(stepLogName({ index: 11, name: '../../etc/passwd' }, 2)).toBe('12-etc-passwd.attempt2.log');
    expect(stepLogName({ index: 2, name: 'ü' }, 1)).toBe('03-step.log');
  });
});

function cell(id: string, position: number, outcome: CellResult['outcome']): CellResult {
  return {
    id, position, name: id, image: 'debian:sid', values: { image: 'debian:sid', n: id }, outcome, continueOnError: false,
    startedAt: '2026-11-22T00:00:00.000Z', durationMs: 10, steps: [], outputDir: id, artifactsDir: `${id}/artifacts`, rerun: '',
  };
}
function result(cells: CellResult[], startedAt: string, durationMs: number, shard?: RunResult['shard']): RunResult {
  return {
    version: 1, tool: { name: 'nsmatrix', version: '0' }, matrix: { name: 'm', file: '/m.yaml', axes: [], stepNames: [] },
    host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt, durationMs, outcome: 'passed', interrupted: false,
    ...(shard ? { shard } : {}), cells,
  };
}

describe('mergeResults', () => {
  it('restores the matrix order, spans the shards in time and recomputes the outcome', () => {
    const failing = { ...cell('c2', 2, 'failed'), steps: [{ index: 0, name: 's', outcome: 'failed' as const, continueOnError: false, flaky: false, attempts: [] }] };
    const a = result([cell('c0', 0, 'passed'), failing], '2026-11-22T00:00:00.000Z', 1000, { index: 1, total: 2 });
    const b = result([cell('c1', 1, 'passed')], '2026-11-22T00:00:05.000Z', 1000, { index: 2, total: 2 });
    const merged = mergeResults([{ source: 'a', result: a }, { source: 'b', result: b }]);
    expect(merged.cells.map((c) => c.id)).toEqual(['c0', 'c1', 'c2']);
    expect(merged.durationMs).toBe(6000);
    expect(merged.outcome).toBe('failed');
    expect(merged.shard).toBeUndefined();
    expect(exitCodeFor(merged)).toBe(1);
  });
  it('refuses overlapping shards and different matrices', () => {
    const a = result([cell('c0', 0, 'passed')], '2026-11-22T00:00:00.000Z', 1);
    expect(() => mergeResults([{ source: 'a', result: a }, { source: 'b', result: a }])).toThrow(UsageError);
    const other = { ...result([cell('z', 0, 'passed')], '2026-11-22T00:00:00.000Z', 1), matrix: { name: 'other', file: '', axes: [], stepNames: [] } };
    expect(() => mergeResults([{ source: 'a', result: a }, { source: 'o', result: other }])).toThrow(/cannot be merged/);
  });
});

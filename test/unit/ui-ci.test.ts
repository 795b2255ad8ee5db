/** CI-native output of the plain view: GitHub folds and annotations, GitLab sections, --stream's prefixed lines. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { palette } from '../../src/ui/colors.js';
import { createPlainView, githubData, githubProperty } from '../../src/ui/plain.js';
import { appendStepSummary } from '../../src/cli/reporting.js';
import { ciFlavour } from '../../src/cli/terminal.js';
import type { RunEvent } from '../../src/run/events.js';
import type { RunResult, StepResult } from '../../src/run/result.js';
import { makeCell, makeStep } from '../../bench/support/model.js';

const a = makeCell('a', [makeStep(0, 'build', 'true')], { name: 'cell a', image: 'debian:sid' });
const b = makeCell('b', [makeStep(0, 'build', 'true')], { name: 'cell b', image: 'debian:sid' });

function step(outcome: StepResult['outcome'], exitCode = 0): StepResult {
  return {
    index: 0, name: 'build', outcome, continueOnError: false, flaky: false,
    attempts: [{ attempt: 1, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 1500, exitCode, signal: null, timedOut: false, logPath: 'a/01-build.log', tail: ['boom, 100%'] }],
  };
}

/** Two cells whose output interleaves, one failing. */
function drive(ci: 'github' | 'gitlab' | undefined, stream = false): string {
  const out: string[] = [];
  const view = createPlainView({ write: (t) => out.push(t), colors: palette(false), ci, stream, now: () => new Date(0) });
  const events: RunEvent[] = [
    { type: 'run-start', matrixName: 'm', file: '/m.yaml', cells: [a, b], outputDir: '/out', startedAt: '' },
    { type: 'step-start', cell: a, step: 0, name: 'build', attempt: 1 },
    { type: 'step-start', cell: b, step: 0, name: 'build', attempt: 1 },
    { type: 'step-output', cell: a, step: 0, stream: 'stdout', chunk: Buffer.from('a one\na tw') },
    { type: 'step-output', cell: b, step: 0, stream: 'stdout', chunk: Buffer.from('b one\n') },
    { type: 'step-output', cell: a, step: 0, stream: 'stdout', chunk: Buffer.from('o \u20ac\n').subarray(0, 4) },
    { type: 'step-output', cell: a, step: 0, stream: 'stdout', chunk: Buffer.from('o \u20ac\n').subarray(4) },
    { type: 'step-end', cell: b, result: step('passed') },
    { type: 'step-end', cell: a, result: step('failed', 2) },
  ];
  for (const e of events) view(e);
  return out.join('');
}

describe('CI-native plain output', () => {
  it('GitHub Actions: one ::group:: per step with its whole output, never interleaved, and ::error for a failing step', () => {
    const text = drive('github');
    expect(text).toContain('::group::cell b: build (passed)\nb one\n::endgroup::\n');
    expect(text).toContain('::group::cell a: build (failed)\na one\na two €\n::endgroup::\n');
    expect(text).toContain('::error title=cell a%3A step build failed::exit status 2; log: /out/a/01-build.log%0Aboom, 100%25\n');
    expect(text.match(/::error/g)).toHaveLength(1);
  });

  it('GitLab CI: collapsible sections', () => {
    const text = drive('gitlab');
    expect(text).toMatch(/\u001b\[0Ksection_start:0:nsmatrix_step_1\[collapsed=true\]\r\u001b\[0Kcell b: build \(passed\)\nb one\n\u001b\[0Ksection_end:0:nsmatrix_step_1\r\u001b\[0K\n/);
    expect(text).toContain('section_start:0:nsmatrix_step_2');
  });

  it('--stream: every line as it comes, prefixed by its cell; partial lines wait for their end', () => {
    const text = drive(undefined, true);
    expect(text.split('\n').filter((l) => l.startsWith('['))).toEqual(['[cell a] a one', '[cell b] b one', '[cell a] a two €']);
    expect(drive(undefined, false)).not.toContain('a one');
  });

  it('escapes workflow command data and properties; recognises the CI system', () => {
    expect(githubData('50%\r\nx')).toBe('50%25%0D%0Ax');
    expect(githubProperty('a:b,c')).toBe('a%3Ab%2Cc');
    expect(ciFlavour({ GITHUB_ACTIONS: 'true' })).toBe('github');
    expect(ciFlavour({ GITLAB_CI: 'true' })).toBe('gitlab');
    expect(ciFlavour({ CI: 'true' })).toBeUndefined();
  });

  it('appends the Markdown summary to $GITHUB_STEP_SUMMARY under GitHub Actions only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsm-summary-'));
    const target = join(dir, 'summary');
    writeFileSync(target, 'before\n');
    const result: RunResult = {
      version: 1, tool: { name: 'nsmatrix', version: '0' }, matrix: { name: 'm', file: '/m.yaml', axes: [], stepNames: ['build'] },
      host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 5000,
      outcome: 'passed', interrupted: false, cells: [],
    };
    await appendStepSummary(result, dir, { GITHUB_STEP_SUMMARY: target });
    expect(readFileSync(target, 'utf8')).toBe('before\n');
    await appendStepSummary(result, dir, { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: target });
    expect(readFileSync(target, 'utf8')).toMatch(/^before\n.*m/s);
    expect(readFileSync(target, 'utf8').length).toBeGreaterThan('before\n'.length + 10);
  });
});

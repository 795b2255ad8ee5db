/**
 * Per-test results in boot mode (a booted systemd in the cell): gathered through the in-container agent after
 * every step, including one that timed out. The timeout kills the step's unit, not the container, so its result
 * files are still there to gather and later steps still run.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult, TestRecord } from '../../src/run/result.js';
import { junitSchemaErrors, leftovers, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-results-boot-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const brief = (tests: TestRecord[]) => tests.map((t) => `${t.name}: ${t.outcome}`);

/** Nothing of the run's cells (mounts, processes, cgroups) is left, nor a process matching `marker`. */
function expectNothingLeft(out: string, run: RunResult, marker: RegExp): void {
  const left = leftovers([out]);
  const ours = (line: string) => run.cells.some((c) => line.includes(c.machine!)) || line.includes(out) || marker.test(line);
  expect({ mounts: left.mounts.filter(ours), processes: left.processes.filter(ours), cgroups: left.cgroups.filter(ours) }).toEqual({ mounts: [], processes: [], cgroups: [] });
}

/** Runs the matrix `lines` (boot: true, debian:bookworm) from work/NAME with the JSON reporter and `extra` ones. */
function runBootMatrix(name: string, lines: string[], code: number, extra: string[] = []): { out: string; run: RunResult } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nsmatrix.yaml');
  writeFileSync(file, ['matrix:', '  image: [debian:bookworm]', ...lines].join('\n') + '\n');
  const out = join(dir, 'out');
  const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '-r', 'json', ...extra.flatMap((x) => ['-r', x])], { timeoutMs: 600_000 });
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(code);
  return { out, run: JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult };
}

describe('boot mode', () => {
  it('gathers through the in-container agent; a step that timed out still has its results, and the cell goes on', () => {
    const tap = (name: string, plan = 1) => `      printf '1..${plan}\\nok 1 - ${name}\\n' > /tmp/${name}.tap`;
    // The timed-out step is continue-on-error: the run passes (exit 0), the timeout stays in the reports.
    const { out, run: boot } = runBootMatrix(
      'boot',
      [
        'boot: true',
        'steps:',
        '  - name: quick',
        '    run: |',
        tap('quick'),
        '    results: [{ format: tap, path: /tmp/quick.tap }]',
        '  - name: hang',
        '    timeout: 5s',
        '    continue-on-error: true',
        '    run: |',
        // Two tests planned, one ran before the hang: the second is reported missing by the TAP plan.
        tap('hang', 2),
        "      trap '' TERM",
        '      sleep 6203 & sleep 6203',
        '    results: [{ format: tap, path: /tmp/hang.tap }]',
        '  - name: after',
        '    run: |',
        // The timed-out step's whole unit is gone (its background child too), in the same booted container.
        '      test -f /tmp/hang.tap',
        '      ! grep -qx sleep /proc/[0-9]*/comm',
        '      echo after-ran',
      ],
      0,
      ['junit'],
    );
    const [quick, hang, after] = boot.cells[0]!.steps;
    expect(brief(quick!.attempts[0]!.results!.tests)).toEqual(['quick: passed']);
    expect(hang!.outcome).toBe('timed-out');
    const hung = hang!.attempts[0]!.results!;
    expect(hung.files).toEqual([{ path: '/tmp/hang.tap', format: 'tap', tests: 2 }]);
    expect(brief(hung.tests)).toEqual(['hang: passed', expect.stringMatching(/: error$/)]);
    expect(after!.outcome).toBe('passed');
    expect(after!.attempts[0]!.tail).toContain('after-ran');
    const xml = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(xml).toContain('<testcase classname="nsmatrix.debian-bookworm--hang" name="hang"');
    expect(junitSchemaErrors(join(out, 'junit.xml'))).toBe('');
    expectNothingLeft(out, boot, /sleep 6203/);
  }, 600_000);

  it('fail-fast: the cancelled booted step still has its results gathered', () => {
    const shared = join(work, 'cancel-shared');
    mkdirSync(shared);
    const { out, run } = runBootMatrix(
      'cancel',
      [
        '  role: [fails, cancelled]',
        'boot: true',
        'fail-fast: true',
        'max-parallel: 2',
        `bind: ["${shared}:/shared"]`,
        'steps:',
        '  - name: work',
        '    timeout: 10m',
        '    run: |',
        // The failing cell fails only once the other one is inside its step, whatever the load.
        '      if [ "$MATRIX_ROLE" = fails ]; then',
        '        while [ ! -e /shared/started ]; do sleep 0.2; done',
        '        exit 1',
        '      fi',
        "      printf '1..2\\nok 1 - before the cancel\\n' > /tmp/work.tap",
        '      touch /shared/started',
        '      sleep 6401',
        '    results: [{ format: tap, path: /tmp/work.tap }]',
      ],
      1,
    );
    const cancelled = run.cells.find((c) => c.values.role === 'cancelled')!;
    expect(cancelled.outcome).toBe('cancelled');
    const work0 = cancelled.steps[0]!;
    expect(work0.outcome).toBe('not-run');
    expect(work0.attempts[0]!.results!.warnings).toEqual(['/tmp/work.tap: plan 1..2 but 1 test points']);
    expect(brief(work0.attempts[0]!.results!.tests)).toEqual(['before the cancel: passed', 'missing tests: error']);
    expectNothingLeft(out, run, /sleep 6401/);
  }, 600_000);

  it('a timed-out step that keeps its output open from another unit: the container is stopped after the grace, its results reported missing', () => {
    const { out, run: boot } = runBootMatrix(
      'escape',
      [
        'boot: true',
        'steps:',
        '  - name: escape',
        '    timeout: 3s',
        '    run: |',
        "      printf '1..1\\nok 1 - escape\\n' > /tmp/escape.tap",
        // A service of its own holds the step's stdout: killing the step's unit does not end its output.
        '      systemd-run --quiet --pipe --unit=nsm-escapee sleep 6301 &',
        '      sleep 6302',
        '    results: [{ format: tap, path: /tmp/escape.tap }]',
      ],
      1,
    );
    const escape = boot.cells[0]!.steps[0]!;
    expect(escape.outcome).toBe('timed-out');
    expect(escape.attempts[0]!.results!.warnings).toEqual([expect.stringMatching(/^result files missing: the container is gone/)]);
    expect(readFileSync(join(out, escape.attempts[0]!.logPath), 'utf8')).toMatch(/did not end within 30000 ms of its stop: container stopped/);
    expectNothingLeft(out, boot, /sleep 630[12]/);
  }, 600_000);
});

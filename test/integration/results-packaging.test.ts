/**
 * matrices/packaging.yaml declares its test suite's result files (libsodium's automake parallel harness): every
 * upstream test is in the JUnit, JSON and HTML reports, and the counts equal what the harness's own summary in the
 * step log says. One release (bookworm): examples.test.ts runs all four on the same images.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { junitSchemaErrors, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;
let result: RunResult;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-results-packaging-');
  const r = runCli(['run', 'matrices/packaging.yaml', '--filter', 'image=debian:bookworm', '--state-dir', stateDir, '-o', work, '-r', 'junit', '-r', 'json', '-r', 'html'], {
    timeoutMs: 1_500_000,
  });
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  result = JSON.parse(readFileSync(join(work, 'results.json'), 'utf8')) as RunResult;
}, 1_600_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The harness's own summary (`# TOTAL: 77`, `# PASS: 77`, ...) in the step log. */
function harnessCounts(logPath: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of readFileSync(join(work, logPath), 'utf8').split('\n')) {
    const m = /\| # (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):\s+(\d+)$/.exec(line);
    if (m) counts[m[1]!] = Number(m[2]);
  }
  return counts;
}

describe('packaging.yaml: per-test results', () => {
  it('every upstream test in JSON, JUnit and HTML, the counts equal to the harness summary in the log', () => {
    const cell = result.cells[0]!;
    const step = cell.steps.find((s) => s.name === 'test suite')!;
    const attempt = step.attempts.at(-1)!;
    const tests = attempt.results!.tests;
    expect(attempt.results!.warnings).toEqual([]);
    const harness = harnessCounts(attempt.logPath);
    expect(harness.TOTAL).toBeGreaterThan(20);
    expect(tests).toHaveLength(harness.TOTAL!);
    const count = (o: string) => tests.filter((t) => t.outcome === o).length;
    expect(count('passed')).toBe(harness.PASS! + harness.XFAIL!);
    expect(count('failed')).toBe(harness.FAIL! + harness.XPASS!);
    expect(count('skipped')).toBe(harness.SKIP!);
    expect(count('error')).toBe(harness.ERROR!);

    const junit = join(work, 'junit.xml');
    expect(junitSchemaErrors(junit)).toBe('');
    const xml = readFileSync(junit, 'utf8');
    const names = [...xml.matchAll(/<testcase classname="packaging\.[^".]+--test-suite" name="([^"]+)"/g)].map((m) => m[1]!.replace(/^.*::/, ''));
    expect(names.sort()).toEqual(tests.map((t) => t.name).sort());

    const html = readFileSync(join(work, 'report.html'), 'utf8');
    expect(html).toContain(`${harness.TOTAL} tests: ${count('passed')} passed`);
    for (const t of tests) expect(html).toContain(`<td class="test">${t.suite} › ${t.name}</td>`);
  });
});

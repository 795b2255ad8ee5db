/**
 * Per-test results from real harnesses in real containers (test/fixtures/results-projects/results.yaml): automake's
 * parallel and serial harnesses, pytest's and ctest's JUnit, Test::More's TAP, go test -json, auto-detection, a
 * flaky test across retries and a step that times out. Each harness has one test failing on flavour b only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult, TestRecord } from '../../src/run/result.js';
import { junitSchemaErrors, leftovers, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
const MATRIX = resolve('test/fixtures/results-projects/results.yaml');
let work: string;
let result: RunResult;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-results-');
  const r = runCli(['run', MATRIX, '--state-dir', stateDir, '-o', work, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown', '--plain'], { timeoutMs: 1_500_000 });
  // Every failing step is continue-on-error: the run passes, the failures stay in the reports.
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  result = JSON.parse(readFileSync(join(work, 'results.json'), 'utf8')) as RunResult;
}, 1_500_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const brief = (tests: TestRecord[]) => tests.map((t) => `${t.suite === '' ? '' : `${t.suite} :: `}${t.name}: ${t.outcome}${t.flaky ? ' (flaky)' : ''}`);
const testsOf = (flavour: string, step: string, attempt = -1) => {
  const cell = result.cells.find((c) => c.values.flavour === flavour)!;
  return cell.steps.find((s) => s.name === step)!.attempts.at(attempt)!.results!;
};
/** The flavour-dependent test: passed on a, failed on b. */
const both = (flavour: string, line: string) => line.replace('FLAVOUR', flavour === 'a' ? 'passed' : 'failed');

describe.each(['a', 'b'])('real harnesses, flavour %s', (flavour) => {
  it('automake parallel harness: the .trs files, one test each', () => {
    const r = testsOf(flavour, 'automake parallel');
    expect(r.warnings).toEqual([]);
    expect(brief(r.tests)).toEqual(['/tmp/amp :: t-fail.sh: failed', both(flavour, '/tmp/amp :: t-flavour.sh: FLAVOUR'), '/tmp/amp :: t-pass.sh: passed', '/tmp/amp :: t-skip.sh: skipped', '/tmp/amp :: t-xfail.sh: passed']);
  });

  it('automake serial harness: PASS:/FAIL: lines of the console log', () => {
    expect(brief(testsOf(flavour, 'automake serial').tests)).toEqual([
      '/tmp/ams :: t-pass.sh: passed',
      '/tmp/ams :: t-fail.sh: failed',
      '/tmp/ams :: t-skip.sh: skipped',
      '/tmp/ams :: t-xfail.sh: passed',
      both(flavour, '/tmp/ams :: t-flavour.sh: FLAVOUR'),
    ]);
  });

  it("pytest's JUnit (written to /artifacts)", () => {
    const r = testsOf(flavour, 'pytest');
    expect(brief(r.tests)).toEqual([
      'test_sample :: test_adds: passed',
      'test_sample :: test_fails: failed',
      'test_sample :: test_skipped: skipped',
      'test_sample :: test_xfail: skipped',
      both(flavour, 'test_sample :: test_flavour: FLAVOUR'),
      'test_sample.TestGroup :: test_in_class: passed',
      'test_sample.TestGroup :: test_error_in_fixture: error',
    ]);
    expect(r.tests[1]!.message).toBe('AssertionError: lists differ');
  });

  it("ctest's JUnit", () => {
    expect(brief(testsOf(flavour, 'ctest').tests)).toEqual(['passes :: passes: passed', 'fails :: fails: failed', 'skips :: skips: skipped', 'disabled :: disabled: skipped', both(flavour, 'flavour :: flavour: FLAVOUR')]);
  });

  it("Test::More's TAP with nested subtests", () => {
    expect(brief(testsOf(flavour, 'tap').tests)).toEqual([
      'first passes: passed',
      'second fails: failed',
      'test 3: skipped',
      'future feature: skipped',
      'parser :: reads numbers: passed',
      'parser :: reads strings: failed',
      'parser > nested :: deep one: passed',
      both(flavour, 'flavour: FLAVOUR'),
    ]);
  });

  it('go test -json from the mirror\'s golang', () => {
    expect(brief(testsOf(flavour, 'go test').tests)).toEqual([
      'example.com/sample :: TestPasses: passed',
      'example.com/sample :: TestFails: failed',
      'example.com/sample :: TestSkips: skipped',
      'example.com/sample :: TestTable/one: passed',
      'example.com/sample :: TestTable/two: failed',
      'example.com/sample :: TestTable: failed',
      both(flavour, 'example.com/sample :: TestFlavour: FLAVOUR'),
    ]);
  });

  it('auto: each file recognised; an unrecognised file and a glob matching nothing are warnings', () => {
    const r = testsOf(flavour, 'auto and missing');
    expect(r.files.map((f) => [f.path, f.format, f.tests])).toEqual([
      ['/tmp/auto/ctest.xml', 'junit', 5],
      ['/tmp/auto/garbage.txt', 'unknown', 0],
      ['/tmp/auto/go.json', 'go-json', 7],
      ['/tmp/auto/t.tap', 'tap', 8],
    ]);
    expect(r.warnings).toEqual(['no/such/*.xml: no regular file matches', '/tmp/auto/garbage.txt: format not recognised (declare format: junit, tap, automake or go-json)']);
  });

  it('retries: a test failing in the first attempt and passing in the second is flaky', () => {
    expect(brief(testsOf(flavour, 'flaky', 0).tests)).toEqual(['steady: passed', 'wobbly: failed']);
    expect(brief(testsOf(flavour, 'flaky').tests)).toEqual(['steady: passed', 'wobbly: passed (flaky)']);
  });

  it('a step that timed out still has its results gathered', () => {
    const r = testsOf(flavour, 'hangs');
    expect(brief(r.tests)).toEqual(['before the hang: passed', 'missing tests: error']);
  });
});

describe('the reports of the run', () => {
  it('JUnit: every test of every cell, valid for every consumer schema', () => {
    const file = join(work, 'junit.xml');
    expect(junitSchemaErrors(file)).toBe('');
    const xml = readFileSync(file, 'utf8');
    const total = result.cells.reduce((n, c) => n + c.steps.reduce((m, s) => m + (s.attempts.at(-1)?.results?.tests.length ?? 0), 0), 0);
    const upstream = [...xml.matchAll(/<testcase classname="results\.[^".]+--[^".]+"/g)].length;
    expect(upstream).toBe(total);
    expect(xml).toContain('<testcase classname="results.debian-bookworm_flavour-b--pytest" name="test_sample::test_flavour"');
  });

  it('HTML and Markdown: the tests failing on flavour b only come first', () => {
    const html = readFileSync(join(work, 'report.html'), 'utf8');
    const view = html.slice(html.indexOf('id="tests"'));
    const firstRows = [...view.matchAll(/<tr class="(differs|same)"><td class="test">([^<]*)</g)].slice(0, 9).map((m) => [m[1], m[2]]);
    expect(firstRows.every(([kind, name]) => kind === 'differs' && /flavour|Flavour/.test(name!))).toBe(true);
    const md = readFileSync(join(work, 'summary.md'), 'utf8');
    expect(md).toMatch(/### Tests that differ between cells \(9\)/);
  });

  it('leaves nothing behind (gathering is one more exec of the cell: no mount, process or cgroup of its own)', () => {
    // Only this run's containers: other test files may run containers of their own at the same time.
    const machines = result.cells.map((c) => c.machine!);
    const left = leftovers([stateDir, work]);
    const ours = (line: string) => machines.some((m) => line.includes(m)) || line.includes(work);
    expect({ mounts: left.mounts.filter(ours), processes: left.processes.filter(ours), cgroups: left.cgroups.filter(ours) }).toEqual({ mounts: [], processes: [], cgroups: [] });
  });
});

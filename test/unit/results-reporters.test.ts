/** Per-test results in every report: JUnit (valid for every consumer schema), JSON and merge, HTML, Markdown. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHtml } from '../../reporters/html.js';
import { buildJunitXml } from '../../reporters/junit.js';
import { buildMarkdown } from '../../reporters/markdown.js';
import { cellTestCounts, testMatrix } from '../../reporters/tests.js';
import { mergeResults } from '../../src/run/merge.js';
import { RESULT_VERSION, parseRunResult, serializeRunResult, type CellResult, type RunResult, type StepResult, type TestRecord } from '../../src/run/result.js';
import { validateJunit } from '../fixtures/results/xmllint.js';

const out = mkdtempSync(join(tmpdir(), 'nsm-results-reporters-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const HOSTILE = 'bad ]]> \x1b[31mred\x1b[0m \x07 <b>&amp;</b> \ud800 end';

function tests(image: string): TestRecord[] {
  return [
    { name: 'test_adds', suite: 'test_math', outcome: 'passed', durationMs: 1.5 },
    { name: 'test_io', suite: 'test_math', outcome: image === 'debian:sid' ? 'failed' : 'passed', message: 'EOF on sid', details: 'Traceback\n  line 3' },
    { name: 'test_always_fails', suite: 'test_math', outcome: 'failed', message: HOSTILE, details: HOSTILE },
    { name: 'test_skip', suite: 'test_math', outcome: 'skipped', message: 'no GPU' },
    { name: 'test_setup', suite: 'test_math', outcome: 'error' },
    { name: `  ${HOSTILE}  `, suite: `suite ${HOSTILE}`, outcome: 'passed' },
    { name: 'dup', suite: '', outcome: 'passed' },
    { name: 'dup', suite: '', outcome: 'passed' },
    { name: 'retried', suite: 'r', outcome: 'passed', flaky: true },
    ...(image === 'debian:bookworm' ? [] : [{ name: 'only_elsewhere', suite: 'x', outcome: 'passed' as const }]),
  ];
}

function cell(image: string, position: number): CellResult {
  const id = image.replace(':', '-');
  const logPath = `${id}/01-test.log`;
  writeFileSync(join(out, `${id}-01.log`), '');
  const step: StepResult = {
    index: 0,
    name: 'test',
    outcome: 'failed',
    continueOnError: false,
    flaky: false,
    attempts: [
      {
        attempt: 1,
        startedAt: '2026-11-22T03:40:00.000Z',
        durationMs: 1000,
        exitCode: 1,
        signal: null,
        timedOut: false,
        logPath,
        tail: ['FAIL'],
        results: { tests: tests(image), files: [{ path: '/src/report.xml', format: 'junit', tests: 9 }], warnings: [`/src/x.xml: not well-formed XML: ${HOSTILE}`], logPath: `${id}/01-test.results.log` },
      },
    ],
  };
  const plain: StepResult = { index: 1, name: 'package', outcome: 'not-run', reason: 'not run', continueOnError: false, flaky: false, attempts: [] };
  return {
    id,
    position,
    name: image,
    image,
    values: { image },
    outcome: 'failed',
    continueOnError: false,
    startedAt: '2026-11-22T03:40:00.000Z',
    durationMs: 2000,
    steps: [step, plain],
    outputDir: id,
    artifactsDir: `${id}/artifacts`,
    rerun: `nsmatrix run --filter image=${image}`,
  };
}

function result(images: string[], from = 0): RunResult {
  return {
    version: RESULT_VERSION,
    tool: { name: 'nsmatrix', version: '0.1.0' },
    matrix: { name: 'per-test', file: 'm.yaml', axes: [{ key: 'image', values: images }], stepNames: ['test', 'package'] },
    host: { hostname: 'h', nspawnVersion: '252', systemdIsPid1: true },
    startedAt: '2026-11-22T03:40:00.000Z',
    durationMs: 3000,
    outcome: 'failed',
    interrupted: false,
    cells: images.map((image, i) => cell(image, from + i)),
  };
}

const IMAGES = ['debian:bullseye', 'debian:bookworm', 'debian:sid'];

describe('per-test results in the reports', () => {
  it('JUnit: each test a case after its step, classname naming cell and step, valid for every consumer schema', async () => {
    const xml = await buildJunitXml(result(IMAGES), { outputDir: out });
    const file = join(out, 'junit.xml');
    writeFileSync(file, xml);
    expect(validateJunit(file)).toEqual({ ok: true, errors: [] });
    const cases = [...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    // container-start, the step, its 9 or 10 tests, the step that did not run: per cell.
    expect(cases.filter(([c]) => c!.startsWith('per-test.debian-sid'))).toHaveLength(1 + 1 + 10 + 1);
    // The contract's classname has exactly one dot (Jenkins splits at the last one): `<matrix>.<cell>--<step>`.
    expect(cases.filter(([c]) => c!.split('.').length !== 2)).toEqual([]);
    expect(cases).toContainEqual(['per-test.debian-sid--test', 'test_math::test_io']);
    expect(cases).toContainEqual(['per-test.debian-sid--test', 'dup (2)']);
    expect(cases).toContainEqual(['per-test.debian-sid', 'test']);
    // The step's own failure, test_io and test_always_fails; test_setup; test_skip and the step that did not run.
    expect(xml).toMatch(/<testsuite name="debian:sid" [^>]*tests="13" failures="3" errors="1" skipped="2">/);
    expect(xml).toContain('<failure message="EOF on sid" type="TestFailed">');
    expect(xml).toContain('type="TestError"');
    expect(xml).toContain('<skipped>no GPU</skipped>');
    expect(xml).toContain('results: 10 tests: 6 passed, 2 failed, 1 error, 1 skipped, 1 flaky, 1 warning from 1 file');
    expect(xml).toContain('flaky: failed in an earlier attempt');
    expect(xml).not.toMatch(/\x1b|\x07/);
  });

  it('JUnit: steps whose names slug alike keep their tests apart, one dot per classname even with dots in every name', async () => {
    const run = result(['debian:sid']);
    run.matrix.name = 'my.matrix v1.2';
    const only = run.cells[0]!;
    only.id = 'debian-sid.x';
    const first = only.steps[0]!;
    const twin = (index: number, name: string): StepResult => ({
      ...first,
      index,
      name,
      attempts: [{ ...first.attempts[0]!, results: { tests: [{ name: 'same', suite: 'a.b', outcome: 'passed' }], files: [], warnings: [] } }],
    });
    only.steps = [twin(0, 'make.check'), twin(1, 'make check'), twin(2, 'make--check')];
    const xml = await buildJunitXml(run, { outputDir: out });
    const file = join(out, 'junit-twins.xml');
    writeFileSync(file, xml);
    expect(validateJunit(file)).toEqual({ ok: true, errors: [] });
    const cases = [...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"/g)].map((m) => [m[1], m[2]]);
    expect(cases.filter(([c]) => c!.split('.').length !== 2)).toEqual([]);
    expect(cases.filter(([, n]) => n === 'a.b::same').map(([c]) => c)).toEqual([
      'my-matrix-v1-2.debian-sid-x--make-check',
      'my-matrix-v1-2.debian-sid-x--make-check-2',
      'my-matrix-v1-2.debian-sid-x--make-check-3',
    ]);
  });

  it('JSON: the tests survive serialisation, validation and a merge of shards', () => {
    const a = parseRunResult(JSON.parse(serializeRunResult(result(IMAGES.slice(0, 2)))), 'a');
    const b = parseRunResult(JSON.parse(serializeRunResult(result(IMAGES.slice(2), 2))), 'b');
    const merged = mergeResults([{ source: 'a', result: a }, { source: 'b', result: b }]);
    expect(merged.cells.map((c) => c.steps[0]!.attempts[0]!.results!.tests.length)).toEqual([10, 9, 10]);
    expect(merged.cells[2]!.steps[0]!.attempts[0]!.results!.tests[1]).toEqual({ name: 'test_io', suite: 'test_math', outcome: 'failed', message: 'EOF on sid', details: 'Traceback\n  line 3' });
    expect(() => parseRunResult({ ...a, cells: [{ ...a.cells[0]!, steps: [{ ...a.cells[0]!.steps[0]!, attempts: [{ ...a.cells[0]!.steps[0]!.attempts[0]!, results: { tests: [{ name: 'x', suite: '', outcome: 'exploded' }], files: [], warnings: [] } }] }] }] }, 'c')).toThrow(/not an nsmatrix result/);
  });

  it('the test × cell view puts the test failing on one release only first, then the tests missing somewhere', () => {
    const matrix = testMatrix(result(IMAGES));
    expect(matrix.rows[0]).toMatchObject({ suite: 'test_math', name: 'test_io', differs: true, outcomes: ['passed', 'passed', 'failed'] });
    expect(matrix.rows[1]).toMatchObject({ name: 'only_elsewhere', differs: true, outcomes: ['passed', 'missing', 'passed'] });
    expect(matrix.differing).toBe(2);
    expect(matrix.rows[2]).toMatchObject({ name: 'test_always_fails', differs: false });
    expect(cellTestCounts(result(IMAGES).cells[2]!)).toEqual({ total: 10, passed: 6, failed: 2, error: 1, skipped: 1, flaky: 1, warnings: 1 });
  });

  it('HTML: counts and failing tests per cell, the differing test at the top of the test × cell view, all escaped', async () => {
    const html = await buildHtml(result(IMAGES), { outputDir: out, reportPath: join(out, 'report.html') });
    expect(html).toContain('10 tests: 6 passed, 2 failed, 1 error, 1 skipped, 1 flaky, 1 warning');
    expect(html).toContain('2 of 9 tests have an outcome that differs between cells; they come first.');
    const view = html.slice(html.indexOf('id="tests"'));
    expect(view.indexOf('test_math › test_io')).toBeLessThan(view.indexOf('test_math › test_always_fails'));
    expect(view).toMatch(/<tr class="differs"><td class="test">test_math › test_io<\/td>/);
    expect(html).not.toMatch(/<b>|\x1b|\x07/);
  });

  it('Markdown: the differing tests and each cell\'s failing tests', async () => {
    const md = await buildMarkdown(result(IMAGES), out);
    expect(md).toContain('### Tests that differ between cells (2)');
    expect(md).toMatch(/\| test\\_math › test\\_io \| test \| ✅ \| ✅ \| ❌ \|/);
    expect(md).toContain('### Failing tests');
    expect(md).toMatch(/debian:sid<\/strong>: 3 failing tests/);
    expect(md).toContain('❌ test\\_math › test\\_io (test): EOF on sid');
    expect(md).not.toMatch(/<b>|\x1b|\x07/);
  });
});

/**
 * Per-test results at scale: a matrix whose steps produce 100,000 testcases in total (4 cells x 25,000, pytest-style
 * JUnit, 3 % failing with a message and a traceback), run through the scheduler with the gathering script, then
 * every reporter. Cells run as host processes (bench/support/host-container.ts): the gathering script is the real
 * one, only nspawn is left out. Also the parsers alone on one 25,000-test file of each format.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReporter, reporterNames } from '../reporters/index.js';
import { parseResultFile } from '../src/results/parse.js';
import { RunEvents } from '../src/run/events.js';
import { runOnHost } from './support/host-container.js';
import { makeCell, makeStep } from './support/model.js';
import { report, timeIt } from './stats.js';

const fails = (i: number) => i % 33 === 0;

function junitFile(tests: number, cell: number): string {
  const parts = ['<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'];
  for (let i = 0; i < tests; i++) {
    const head = `<testcase classname="tests.test_module_${i % 200}" name="test_case_${i}[param-${cell}]" time="0.00${i % 10}"`;
    parts.push(fails(i) ? `${head}><failure message="AssertionError: value ${i} != ${i + 1}">def test():\n&gt;   assert f(${i}) == ${i + 1}\nE   AssertionError\n\ntests/test_module.py:${i}: AssertionError</failure></testcase>` : `${head} />`);
  }
  parts.push('</testsuite></testsuites>\n');
  return parts.join('\n');
}

function tapFile(tests: number): string {
  const lines = ['TAP version 14', `1..${tests}`];
  for (let i = 1; i <= tests; i++) lines.push(fails(i) ? `not ok ${i} - case ${i}\n  ---\n  message: 'value ${i}'\n  ...` : `ok ${i} - case ${i}`);
  return `${lines.join('\n')}\n`;
}

function goJsonFile(tests: number): string {
  const lines: string[] = [];
  for (let i = 0; i < tests; i++) {
    const t = `"Package":"example.com/p${i % 50}","Test":"TestCase${i}"`;
    lines.push(`{"Action":"run",${t}}`, `{"Action":"output",${t},"Output":"=== RUN   TestCase${i}\\n"}`, `{"Action":"${fails(i) ? 'fail' : 'pass'}",${t},"Elapsed":0.001}`);
  }
  return `${lines.join('\n')}\n`;
}

function trsFiles(tests: number): string[] {
  return Array.from({ length: tests }, (_, i) => `:test-result: ${fails(i) ? 'FAIL' : 'PASS'}\n:global-test-result: PASS\n:recheck: no\n:copy-in-global-log: no\n`);
}

export async function benchResults(cellCount = 4, testsPerCell = 25_000): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-bench-results-'));
  const outputDir = join(dir, 'out');
  mkdirSync(outputDir);
  try {
    const files = Array.from({ length: cellCount }, (_, c) => {
      const file = join(dir, `cell${c}.xml`);
      writeFileSync(file, junitFile(testsPerCell, c));
      return file;
    });
    const xmlBytes = files.reduce((n, f) => n + statSync(f).size, 0);

    // Parsers alone, one 25,000-test file of each format (medians of 3).
    const junit = Buffer.from(junitFile(testsPerCell, 0));
    const tap = Buffer.from(tapFile(testsPerCell));
    const goJson = Buffer.from(goJsonFile(testsPerCell));
    const trs = trsFiles(testsPerCell).map((t) => Buffer.from(t));
    const parseJunit = await timeIt(3, () => parseResultFile('junit', '/r.xml', junit));
    const parseTap = await timeIt(3, () => parseResultFile('tap', '/r.tap', tap));
    const parseGo = await timeIt(3, () => parseResultFile('go-json', '/r.json', goJson));
    const parseTrs = await timeIt(3, () => trs.forEach((b, i) => parseResultFile('automake', `/t/t${i}.trs`, b)));

    // The whole pipeline: steps whose result files hold 100,000 tests, gathered, parsed, in the model, reported.
    const cells = files.map((file, c) => makeCell(`c${c}`, [makeStep(0, 'test', 'true', { results: [{ format: 'junit', path: file }] })]));
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
    const start = performance.now();
    const result = await runOnHost({ cells, steps: [{ name: 'test', run: 'true', env: {} }], outputDir, events: new RunEvents() });
    const runMs = performance.now() - start;
    if (result.cells.some((c) => c.steps[0]!.attempts.length === 0)) throw new Error(`bench: a cell did not run: ${JSON.stringify(result.cells.map((c) => [c.outcome, c.infrastructureError, c.steps[0]!.reason]))}`);
    const gathered = result.cells.reduce((n, c) => n + (c.steps[0]!.attempts[0]!.results?.tests.length ?? 0), 0);
    if (gathered !== cellCount * testsPerCell) throw new Error(`bench: ${gathered} tests gathered, expected ${cellCount * testsPerCell}`);
    const afterRun = peakRss;
    const perReporter: [string, number, string?][] = [];
    for (const name of reporterNames) {
      const t0 = performance.now();
      const written = await createReporter(name).onRunEnd?.(result, { outputDir });
      const size = (written ?? []).reduce((n, f) => n + statSync(f).size, 0);
      perReporter.push([`reporter ${name}`, performance.now() - t0, `${(size / 2 ** 20).toFixed(1)} MiB written`]);
    }
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    const reportMs = perReporter.reduce((n, [, ms]) => n + ms, 0);
    report(`${cellCount * testsPerCell} testcases: ${cellCount} cells x ${testsPerCell} (JUnit, ${(xmlBytes / 2 ** 20).toFixed(1)} MiB), host processes instead of containers`, [
      ['parse one 25,000-test JUnit file, pytest style', parseJunit.median],
      ['parse one 25,000-test TAP 14 file', parseTap.median],
      ['parse one 25,000-test go test -json file', parseGo.median],
      ['parse 25,000 automake .trs files', parseTrs.median],
      ['run: steps, gathering script, parsing, model', runMs, `${gathered} tests`],
      ...perReporter,
      ['peak RSS after the run (MiB)', afterRun / 2 ** 20],
      ['peak RSS of the whole process (MiB)', peakRss / 2 ** 20],
    ]);
    return {
      parseJunitMs: parseJunit.median,
      parseTapMs: parseTap.median,
      parseGoJsonMs: parseGo.median,
      parseTrsMs: parseTrs.median,
      runMs,
      reportMs,
      peakRssMiB: peakRss / 2 ** 20,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

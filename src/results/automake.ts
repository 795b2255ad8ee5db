/**
 * Automake's test harnesses. The parallel harness writes, per test, a `.trs` file (`:test-result: PASS` lines; one
 * per TAP test point with the TAP driver) and a `.log` ending in `PASS name (exit status: 0)`, and a
 * `test-suite.log` that names only the tests that did not pass (with their logs) under its `# TOTAL:` counts. The
 * serial harness prints `PASS: name` lines to the console, as the parallel one does too: a console log saved by the
 * step (`make check 2>&1 | tee check.log`) is read for those lines.
 */
import { makeTest, type ParseOutcome, type TestOutcome, type TestResult } from './types.js';

const RESULTS: Record<string, TestOutcome> = {
  PASS: 'passed',
  XFAIL: 'passed', // an expected failure: automake counts it as success
  FAIL: 'failed',
  XPASS: 'failed', // an unexpected pass: automake counts it as failure
  SKIP: 'skipped',
  ERROR: 'error',
};
const RESULT_WORDS = Object.keys(RESULTS).join('|');
const CONSOLE_RE = new RegExp(`^(?:\\x1b\\[[0-9;]*m)*(${RESULT_WORDS}): (.+?)(?:\\x1b\\[[0-9;]*m)*$`);
const TRS_RE = new RegExp(`^:test-result:\\s*(${RESULT_WORDS})\\b\\s*(.*)$`);
const LOG_LAST_RE = new RegExp(`^(${RESULT_WORDS}) (.+) \\(exit status: (\\d+)\\)$`);

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function dirnameOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '' : path.slice(0, at);
}

function messageFor(word: string, detail?: string): string | undefined {
  if (word === 'XFAIL') return 'expected failure (XFAIL)';
  if (word === 'XPASS') return 'passed unexpectedly (XPASS): the test is marked as expected to fail';
  return detail;
}

/** A `.trs` file: its `:test-result:` lines; the test is named by the file. */
function parseTrs(text: string, path: string): ParseOutcome {
  const name = basenameOf(path).replace(/\.trs$/, '');
  const suite = dirnameOf(path);
  const results = text
    .split('\n')
    .map((line) => TRS_RE.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null);
  if (results.length === 0) return { tests: [], warnings: ['no :test-result: line in the .trs file'], format: 'automake' };
  if (results.length === 1 && results[0]![2]!.trim() === '') {
    const word = results[0]![1]!;
    return { tests: [makeTest({ name, suite, outcome: RESULTS[word]!, message: messageFor(word) })], warnings: [], format: 'automake' };
  }
  // The TAP driver: one line per test point ("PASS 1 - does x"); each is its own test, under the script's name.
  const tests = results.map(([, word, rest]) =>
    makeTest({ name: rest!.trim() || name, suite: suite === '' ? name : `${suite}/${name}`, outcome: RESULTS[word!]!, message: messageFor(word!) }),
  );
  return { tests, warnings: [], format: 'automake' };
}

/** test-suite.log: the failing tests by name (each with its log) and the counts of the rest. */
function parseSuiteLog(text: string, path: string): ParseOutcome {
  const lines = text.split('\n');
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const count = /^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):\s*(\d+)$/.exec(line.trim());
    if (count) counts[count[1]!] = Number(count[2]);
  }
  const tests: TestResult[] = [];
  const suite = dirnameOf(path);
  for (let i = 0; i + 1 < lines.length; i++) {
    const head = new RegExp(`^(${RESULT_WORDS}): (.+)$`).exec(lines[i]!);
    if (!head || !/^=+$/.test(lines[i + 1]!.trim())) continue;
    let end = i + 2;
    while (end + 1 < lines.length && !(new RegExp(`^(${RESULT_WORDS}): `).test(lines[end]!) && /^=+$/.test(lines[end + 1]!.trim()))) end++;
    const body = lines.slice(i + 2, end).join('\n');
    const word = head[1]!;
    const last = body.split('\n').reverse().find((l) => l.trim() !== '');
    tests.push(makeTest({ name: head[2]!.trim(), suite, outcome: RESULTS[word]!, message: messageFor(word, last), details: body.slice(-4096) }));
  }
  const warnings: string[] = [];
  if (counts.TOTAL === undefined) warnings.push('no "# TOTAL:" line: not an automake test-suite.log?');
  const unnamed = (counts.PASS ?? 0) + (counts.XFAIL ?? 0) + (counts.SKIP ?? 0) - tests.filter((t) => t.outcome !== 'failed' && t.outcome !== 'error').length;
  if (unnamed > 0) warnings.push(`${unnamed} passed or skipped tests are counted but not named in test-suite.log: declare the harness's .trs files (e.g. "**/*.trs") to see each`);
  return { tests, warnings, format: 'automake' };
}

/** A console log (serial or parallel harness) or one test's `.log` from the parallel harness. */
function parseConsole(text: string, path: string): ParseOutcome {
  const lines = text.split('\n');
  const suite = dirnameOf(path);
  const tests: TestResult[] = [];
  for (const line of lines) {
    const match = CONSOLE_RE.exec(line.trimEnd());
    if (match) tests.push(makeTest({ name: match[2]!, suite, outcome: RESULTS[match[1]!]!, message: messageFor(match[1]!) }));
  }
  if (tests.length === 0) {
    // A per-test log of the parallel harness: its last line is "PASS name (exit status: 0)".
    const last = lines.map((l) => l.trim()).reverse().find((l) => l !== '');
    const match = last !== undefined ? LOG_LAST_RE.exec(last) : null;
    if (match) {
      const word = match[1]!;
      const failed = RESULTS[word] !== 'passed';
      const body = failed ? lines.join('\n').slice(-4096) : undefined;
      return { tests: [makeTest({ name: basenameOf(match[2]!), suite, outcome: RESULTS[word]!, message: messageFor(word, failed ? `exit status ${match[3]}` : undefined), details: body })], warnings: [], format: 'automake' };
    }
    return { tests: [], warnings: ['no automake result lines (PASS: name, FAIL: name, ...) in the file'], format: 'automake' };
  }
  return { tests, warnings: [], format: 'automake' };
}

/** `path` is the file's container path: it names `.trs` tests and tells a test-suite.log from a console log. */
export function parseAutomake(text: string, path: string): ParseOutcome {
  if (path.endsWith('.trs') || /^:test-result:/m.test(text)) return parseTrs(text, path);
  if (basenameOf(path) === 'test-suite.log' || /^\.\. contents:: /m.test(text)) return parseSuiteLog(text, path);
  return parseConsole(text, path);
}

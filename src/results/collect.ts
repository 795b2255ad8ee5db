/** From gathered files to a step attempt's tests: each file parsed, warnings named by file, flakiness across attempts. */
import type { ResultSpec } from '../matrix/types.js';
import type { Gathered } from './gather.js';
import { parseResultFile } from './parse.js';
import type { TestResult } from './types.js';

export interface AttemptTests {
  tests: TestResult[];
  /** Each file read: its container path, the format it was read as and how many tests it held. */
  files: { path: string; format: string; tests: number }[];
  /** Missing, malformed, cut or unrecognised files, in words. */
  warnings: string[];
}

export const MAX_WARNINGS = 50;

export function collectTests(gathered: Gathered, specs: ResultSpec[]): AttemptTests {
  const tests: TestResult[] = [];
  const files: AttemptTests['files'] = [];
  const warnings = [...gathered.warnings];
  for (const file of gathered.files) {
    const spec = specs[file.entry]!;
    const parsed = parseResultFile(spec.format, file.path, file.bytes);
    for (const test of parsed.tests) tests.push(test);
    files.push({ path: file.path, format: parsed.format, tests: parsed.tests.length });
    for (const warning of parsed.warnings) warnings.push(`${file.path}: ${warning}`);
  }
  const kept = warnings.length > MAX_WARNINGS ? [...warnings.slice(0, MAX_WARNINGS - 1), `… and ${warnings.length - MAX_WARNINGS + 1} more warnings`] : warnings;
  return { tests, files, warnings: kept };
}

/** Identity of a test across attempts and cells. */
export function testKey(test: Pick<TestResult, 'suite' | 'name'>): string {
  return `${test.suite}\u0000${test.name}`;
}

export const isFailedTest = (test: Pick<TestResult, 'outcome'>): boolean => test.outcome === 'failed' || test.outcome === 'error';

/**
 * Marks, in the last attempt's tests, each one that passes there after failing in an earlier attempt: flaky at
 * test level (whatever the step's own outcome). Returns the last attempt's tests (mutated in place).
 */
export function markFlakyTests(attempts: (TestResult[] | undefined)[]): TestResult[] | undefined {
  const last = attempts.at(-1);
  if (!last || attempts.length < 2) return last;
  const failedBefore = new Set<string>();
  for (const tests of attempts.slice(0, -1)) for (const test of tests ?? []) if (isFailedTest(test)) failedBefore.add(testKey(test));
  if (failedBefore.size === 0) return last;
  for (const test of last) if (test.outcome === 'passed' && failedBefore.has(testKey(test))) test.flaky = true;
  return last;
}

/**
 * Per-test results: what the parsers make of the files a step declares with `results:`. Plain data; the result
 * model (src/run/result.ts) holds these per step attempt. Every text is decoded (UTF-8 with replacement) and cut to
 * the bounds below, never sanitised: the reporters do that for their own format.
 */
import type { ResultFormat } from '../matrix/types.js';

export type { ResultFormat };
export type TestOutcome = 'passed' | 'failed' | 'skipped' | 'error';
export const TEST_OUTCOMES = ['passed', 'failed', 'skipped', 'error'] as const satisfies readonly TestOutcome[];

/** Bounds on what one test may carry into the model. */
export const TEST_NAME_MAX = 500;
export const TEST_MESSAGE_MAX = 1000;
export const TEST_DETAILS_MAX = 4096;

export interface TestResult {
  /** The test's own name (a JUnit testcase name, a TAP description, an automake test, a Go test). */
  name: string;
  /** Where the harness groups it: JUnit classname or suite, Go package, TAP parent tests, automake directory. */
  suite: string;
  outcome: TestOutcome;
  durationMs?: number;
  /** One line: why it failed, erred or was skipped. */
  message?: string;
  /** More of the failure (stack, output), at most TEST_DETAILS_MAX characters. */
  details?: string;
  /** Failed in an earlier attempt of the step and passed in the last one. */
  flaky?: boolean;
}

export interface ParseOutcome {
  tests: TestResult[];
  /** What was wrong with the file, in words (malformed parts, plan mismatches, nothing found). */
  warnings: string[];
  /** The format the file was read as (auto-detection says which). */
  format: Exclude<ResultFormat, 'auto'> | 'unknown';
}

/** Text cut to `max` characters, a lone surrogate at the cut removed. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** The first non-blank line, trimmed and cut: a message. */
export function firstLine(text: string | undefined, max = TEST_MESSAGE_MAX): string | undefined {
  if (text === undefined) return undefined;
  const line = text.split('\n').find((l) => l.trim() !== '');
  return line === undefined ? undefined : cut(line.trim(), max);
}

/** A test with every text cut to its bound and empty optional fields left out. */
export function makeTest(fields: {
  name: string;
  suite?: string | undefined;
  outcome: TestOutcome;
  durationMs?: number | undefined;
  message?: string | undefined;
  details?: string | undefined;
}): TestResult {
  const test: TestResult = {
    name: cut(fields.name.trim() === '' ? '(unnamed)' : fields.name.trim(), TEST_NAME_MAX),
    suite: cut((fields.suite ?? '').trim(), TEST_NAME_MAX),
    outcome: fields.outcome,
  };
  if (fields.durationMs !== undefined && Number.isFinite(fields.durationMs) && fields.durationMs >= 0) test.durationMs = Math.round(fields.durationMs * 1000) / 1000;
  const message = firstLine(fields.message);
  if (message !== undefined) test.message = message;
  if (fields.details !== undefined && fields.details.trim() !== '') test.details = cut(fields.details.replace(/\s+$/, ''), TEST_DETAILS_MAX);
  return test;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 with replacement; a BOM dropped; CRLF made LF. */
export function decodeText(bytes: Uint8Array): string {
  return decoder.decode(bytes).replace(/^\ufeff/, '').replace(/\r\n?/g, '\n');
}

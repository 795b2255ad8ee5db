/**
 * JUnit XML as the common producers write it: pytest (`--junitxml`), ctest (`--output-junit`: `status`
 * attributes), gotestsum, Maven Surefire (one `testsuite` root; flaky and rerun elements) and jest-junit (nested
 * describe names in `classname`). Every `testcase` below the root counts, at any depth of `testsuite` nesting.
 */
import { makeTest, type ParseOutcome, type TestOutcome, type TestResult } from './types.js';
import { parseXml, XmlError, type XmlElement } from './xml.js';

function seconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim().replace(/,/g, ''));
  return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
}

const OUTCOME_ELEMENTS: Record<string, TestOutcome> = { failure: 'failed', error: 'error', skipped: 'skipped' };

function caseOf(element: XmlElement, suiteName: string): TestResult {
  let outcome: TestOutcome = 'passed';
  let message: string | undefined;
  let details: string | undefined;
  for (const child of element.children) {
    const mapped = OUTCOME_ELEMENTS[child.name];
    if (mapped === undefined) continue;
    // failure and error outrank skipped (pytest writes a skipped xfail next to nothing else; never mind the order)
    if (outcome === 'passed' || (outcome === 'skipped' && mapped !== 'skipped')) {
      outcome = mapped;
      message = child.attrs.message ?? child.attrs.type;
      details = child.text.trim() !== '' ? child.text : undefined;
      if (message === undefined || message.trim() === '') message = details;
    }
  }
  // ctest: status="notrun" | "disabled" (with a <skipped/>), "fail" (with a <failure/>): honour it either way.
  const status = element.attrs.status?.toLowerCase();
  if (outcome === 'passed' && (status === 'notrun' || status === 'disabled' || status === 'skipped')) outcome = 'skipped';
  if (outcome === 'passed' && (status === 'fail' || status === 'failed')) outcome = 'failed';
  const name = element.attrs.name ?? '';
  const suite = element.attrs.classname ?? element.attrs.class ?? suiteName;
  if (outcome === 'failed' || outcome === 'error') {
    const out = element.children.find((c) => c.name === 'system-out' || c.name === 'system-err');
    if (details === undefined && out && out.text.trim() !== '') details = out.text;
    if (message === undefined || message.trim() === '') message = details;
  }
  return makeTest({ name, suite, outcome, durationMs: seconds(element.attrs.time), message, details });
}

export function parseJunit(text: string): ParseOutcome {
  const warnings: string[] = [];
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (error) {
    if (error instanceof XmlError) return { tests: [], warnings: [`not well-formed XML: ${error.message}`], format: 'junit' };
    throw error;
  }
  if (root.name !== 'testsuites' && root.name !== 'testsuite') {
    return { tests: [], warnings: [`not a JUnit report: the root element is <${root.name}>`], format: 'junit' };
  }
  const tests: TestResult[] = [];
  const walk = (element: XmlElement, suiteName: string) => {
    for (const child of element.children) {
      if (child.name === 'testsuite' || child.name === 'testsuites') walk(child, child.attrs.name ?? suiteName);
      else if (child.name === 'testcase') tests.push(caseOf(child, suiteName));
    }
  };
  walk(root, root.attrs.name ?? '');
  if (tests.length === 0) warnings.push('no <testcase> in the file');
  return { tests, warnings, format: 'junit' };
}

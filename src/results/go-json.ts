/**
 * `go test -json` (test2json): one JSON event a line. Every test and subtest that ends (pass, fail, skip) is a
 * test under its package; its output lines (bounded) are the failure details. A package that fails without a failed
 * test (a build error, a panic in init, a timeout) is an error entry; lines that are not JSON (go vet, build output)
 * are counted in a warning.
 */
import { TEST_DETAILS_MAX, makeTest, type ParseOutcome, type TestOutcome, type TestResult } from './types.js';

interface Event {
  Action?: unknown;
  Package?: unknown;
  Test?: unknown;
  Elapsed?: unknown;
  Output?: unknown;
}

const ENDS: Record<string, TestOutcome> = { pass: 'passed', fail: 'failed', skip: 'skipped' };

export function parseGoJson(text: string): ParseOutcome {
  const tests: TestResult[] = [];
  const warnings: string[] = [];
  const output = new Map<string, string[]>();
  const outputSize = new Map<string, number>();
  const failedPackages = new Map<string, number>();
  const packagesWithFailedTests = new Set<string>();
  let notJson = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let event: Event;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      event = parsed as Event;
    } catch {
      notJson++;
      continue;
    }
    const action = typeof event.Action === 'string' ? event.Action : '';
    const pkg = typeof event.Package === 'string' ? event.Package : '';
    const test = typeof event.Test === 'string' ? event.Test : undefined;
    const key = `${pkg}\u0000${test ?? ''}`;
    if (action === 'output' && typeof event.Output === 'string') {
      const size = outputSize.get(key) ?? 0;
      if (size < TEST_DETAILS_MAX) {
        const list = output.get(key) ?? [];
        list.push(event.Output);
        output.set(key, list);
        outputSize.set(key, size + event.Output.length);
      }
      continue;
    }
    const outcome = ENDS[action];
    if (outcome === undefined) continue;
    const elapsed = typeof event.Elapsed === 'number' ? event.Elapsed * 1000 : undefined;
    const lines = output.get(key);
    output.delete(key);
    outputSize.delete(key);
    if (test === undefined) {
      if (outcome === 'failed') failedPackages.set(pkg, tests.length);
      if (outcome === 'failed') output.set(`${pkg}\u0000`, lines ?? []);
      continue;
    }
    if (outcome === 'failed') packagesWithFailedTests.add(pkg);
    const details = outcome === 'passed' ? undefined : (lines ?? []).join('');
    const message = details
      ?.split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '' && !/^(=== (RUN|PAUSE|CONT|NAME)|--- (FAIL|SKIP|PASS)):?\s/.test(l));
    tests.push(makeTest({ name: test, suite: pkg, outcome, durationMs: elapsed, message, details }));
  }
  for (const [pkg] of failedPackages) {
    if (packagesWithFailedTests.has(pkg)) continue;
    const details = (output.get(`${pkg}\u0000`) ?? []).join('');
    const message = details.split('\n').find((l) => l.trim() !== '' && !/^(FAIL|ok)\s/.test(l.trim())) ?? 'the package failed without a failing test (build error, panic or timeout)';
    tests.push(makeTest({ name: '(package)', suite: pkg, outcome: 'error', message, details }));
  }
  if (notJson > 0) warnings.push(`${notJson} line${notJson === 1 ? '' : 's'} not test2json events (ignored)`);
  if (tests.length === 0 && notJson > 0 && failedPackages.size === 0) warnings.push('no go test -json events in the file');
  return { tests, warnings, format: 'go-json' };
}

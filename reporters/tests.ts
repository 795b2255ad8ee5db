/**
 * Per-test views shared by the reporters: counts per cell, failing tests per cell, and the matrix-wide test × cell
 * table whose first rows are the tests whose outcome differs between cells. Read from the result model only.
 */
import { isFailedTestOutcome, stepTests, type CellResult, type RunResult, type StepResult, type TestRecord } from '../src/run/result.js';

export interface TestCounts {
  total: number;
  passed: number;
  failed: number;
  error: number;
  skipped: number;
  flaky: number;
  /** Warnings of the last attempts' gathering (missing, malformed files). */
  warnings: number;
}

export function emptyCounts(): TestCounts {
  return { total: 0, passed: 0, failed: 0, error: 0, skipped: 0, flaky: 0, warnings: 0 };
}

/** Counts of a cell's tests (the last attempt of each step), or undefined when no step declares results. */
export function cellTestCounts(cell: CellResult): TestCounts | undefined {
  let any = false;
  const counts = emptyCounts();
  for (const step of cell.steps) {
    const results = step.attempts.at(-1)?.results;
    if (!results) continue;
    any = true;
    counts.warnings += results.warnings.length;
    for (const test of results.tests) {
      counts.total++;
      counts[test.outcome]++;
      if (test.flaky) counts.flaky++;
    }
  }
  return any ? counts : undefined;
}

/** `12 tests: 10 passed, 1 failed, 1 skipped` (only the non-zero parts). */
export function countsText(counts: TestCounts): string {
  const parts = (['passed', 'failed', 'error', 'skipped', 'flaky'] as const).filter((k) => counts[k] > 0).map((k) => `${counts[k]} ${k}`);
  const warn = counts.warnings > 0 ? `, ${counts.warnings} warning${counts.warnings === 1 ? '' : 's'}` : '';
  return `${counts.total} test${counts.total === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}${warn}`;
}

/** A test's display name: `suite › name` (or the name alone). */
export function testLabel(test: Pick<TestRecord, 'suite' | 'name'>): string {
  return test.suite === '' ? test.name : `${test.suite} › ${test.name}`;
}

export interface FailingTest {
  step: StepResult;
  test: TestRecord;
}

export function failingTests(cell: CellResult): FailingTest[] {
  return cell.steps.flatMap((step) => stepTests(step).filter((t) => isFailedTestOutcome(t.outcome)).map((test) => ({ step, test })));
}

export type TestOutcomeOrMissing = TestRecord['outcome'] | 'missing';

export interface TestRow {
  step: string;
  suite: string;
  name: string;
  /** One per cell of the result, in its order. */
  outcomes: TestOutcomeOrMissing[];
  /** Some cells differ from others (a missing test counts when its step ran there). */
  differs: boolean;
  failedIn: number;
}

export interface TestMatrix {
  cells: CellResult[];
  rows: TestRow[];
  /** How many rows differ between cells (they come first). */
  differing: number;
  /** How many tests there are in all (rows may be capped). */
  total: number;
}

const RANK: Record<TestOutcomeOrMissing, number> = { failed: 0, error: 0, missing: 1, skipped: 2, passed: 3 };

/**
 * The test × cell table: differing tests first (those failing in the fewest cells first: "passes everywhere but on
 * sid"), then tests failing everywhere, then the rest; at most `maxRows` rows (`total` says how many there are).
 */
export function testMatrix(result: RunResult, maxRows = Number.POSITIVE_INFINITY): TestMatrix {
  const cells = result.cells.filter((cell) => cell.steps.some((s) => s.attempts.at(-1)?.results));
  const rows = new Map<string, TestRow>();
  cells.forEach((cell, column) => {
    for (const step of cell.steps) {
      for (const test of stepTests(step)) {
        const key = `${step.name}\u0000${test.suite}\u0000${test.name}`;
        let row = rows.get(key);
        if (!row) {
          row = { step: step.name, suite: test.suite, name: test.name, outcomes: new Array<TestOutcomeOrMissing>(cells.length).fill('missing'), differs: false, failedIn: 0 };
          rows.set(key, row);
        }
        // A name repeated within one cell keeps its worst outcome.
        const previous = row.outcomes[column]!;
        if (previous === 'missing' || RANK[test.outcome] < RANK[previous]) row.outcomes[column] = test.outcome;
      }
    }
  });
  const stepRan = (cell: CellResult, stepName: string) => cell.steps.some((s) => s.name === stepName && s.attempts.length > 0);
  let differing = 0;
  for (const row of rows.values()) {
    const seen = new Set(row.outcomes.filter((o, i) => o !== 'missing' || stepRan(cells[i]!, row.step)).map((o) => (o === 'error' ? 'failed' : o)));
    row.differs = seen.size > 1;
    row.failedIn = row.outcomes.filter((o) => o === 'failed' || o === 'error').length;
    if (row.differs) differing++;
  }
  const order = (row: TestRow) => (row.differs ? 0 : row.failedIn > 0 ? 1 : 2);
  const fewest = (row: TestRow) => (row.failedIn === 0 ? Number.MAX_SAFE_INTEGER : row.failedIn);
  const sorted = [...rows.values()].sort((a, b) => order(a) - order(b) || (a.differs && b.differs ? fewest(a) - fewest(b) : 0));
  return { cells, rows: sorted.length > maxRows ? sorted.slice(0, maxRows) : sorted, differing, total: rows.size };
}

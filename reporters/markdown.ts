/**
 * The `markdown` reporter: a compact summary for `$GITHUB_STEP_SUMMARY` and merge-request comments. One table
 * of cells, then each failing cell's log tail folded in a `<details>` block with the command that reruns it.
 */
import { join } from 'node:path';
import { formatDuration } from '../src/lib/duration.js';
import { isFailedCell, isFailedStep, type CellResult, type RunResult, type StepResult } from '../src/run/result.js';
import { readLogTail } from './log-file.js';
import { attemptFailure, cellDisplayOutcome, cellTotals, lastAttempt, resolveInside, stepCounts, type CellDisplayOutcome } from './outcomes.js';
import { clipLines, escapeHtml, sanitizeAttribute, sanitizeText } from './sanitize.js';
import { cellTestCounts, countsText, failingTests, testLabel, testMatrix, type TestOutcomeOrMissing } from './tests.js';
import type { Reporter, ReporterContext } from './types.js';
import { writeFileAtomic } from './write-atomic.js';

export const MARKDOWN_DEFAULT_FILE = 'summary.md';
const TAIL_LINES = 30;
const TAIL_MAX_CHARS = 4096;
const TAIL_LINE_MAX_CHARS = 300;
/** GitHub caps a step summary at 1 MiB: only this many failing cells get their tail inline. */
const MAX_DETAILED_FAILURES = 20;
/** Failing tests listed per cell, and rows of the differing-tests table (GitHub's 1 MiB cap again). */
const MAX_FAILING_TESTS_PER_CELL = 50;
const MAX_DIFFERING_ROWS = 100;
const TEST_EMOJI: Record<TestOutcomeOrMissing, string> = { passed: '✅', failed: '❌', error: '💥', skipped: '⏭️', missing: '–' };

export const OUTCOME_EMOJI: Record<CellDisplayOutcome, string> = {
  passed: '✅',
  flaky: '⚠️',
  failed: '❌',
  error: '💥',
  cancelled: '🚫',
  skipped: '⏭️',
};

/** Text for a table cell or a heading: one line, no Markdown or HTML meaning. */
export function markdownInline(text: string): string {
  return escapeHtml(sanitizeAttribute(text, { visibleBreaks: true })).replace(/([\\`*_[\]|#~])/g, '\\$1');
}

/** A fenced code block that no backtick run inside the text can close. */
export function fenced(text: string, info = 'text'): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${info}\n${text}\n${fence}`;
}

function firstFailedStep(cell: CellResult): StepResult | undefined {
  return cell.steps.find((s) => isFailedStep(s.outcome));
}

async function failureTail(outputDir: string, step: StepResult): Promise<string> {
  const attempt = lastAttempt(step);
  if (!attempt) return '';
  const path = resolveInside(outputDir, attempt.logPath);
  const read = path ? await readLogTail(path, { lines: TAIL_LINES, maxBytes: 4 * TAIL_MAX_CHARS }) : undefined;
  const lines = read ? read.lines : attempt.tail.slice(-TAIL_LINES);
  return sanitizeText(clipLines(lines, TAIL_LINE_MAX_CHARS).join('\n'), { maxChars: TAIL_MAX_CHARS, fullLogPath: attempt.logPath });
}

function failureSummary(cell: CellResult): string {
  if (cell.infrastructureError !== undefined) return `infrastructure error: ${cell.infrastructureError}`;
  const step = firstFailedStep(cell);
  const attempt = step && lastAttempt(step);
  if (!step || !attempt) return cell.outcome;
  return `${step.name}: ${attemptFailure(attempt).reason}${step.continueOnError || cell.continueOnError ? ' (continue-on-error)' : ''}`;
}

export async function buildMarkdown(result: RunResult, outputDir: string): Promise<string> {
  const totals = cellTotals(result);
  const runEmoji = result.outcome === 'passed' ? (totals.flaky > 0 ? OUTCOME_EMOJI.flaky : OUTCOME_EMOJI.passed) : result.outcome === 'error' ? OUTCOME_EMOJI.error : result.outcome === 'interrupted' ? OUTCOME_EMOJI.cancelled : OUTCOME_EMOJI.failed;
  const counts = (Object.keys(totals) as CellDisplayOutcome[])
    .filter((k) => totals[k] > 0)
    .map((k) => `${OUTCOME_EMOJI[k]} ${totals[k]} ${k}`)
    .join(' · ');
  const shard = result.shard ? `, shard ${result.shard.index}/${result.shard.total}` : '';
  const withTests = result.cells.some((cell) => cellTestCounts(cell) !== undefined);
  const out: string[] = [
    `## ${runEmoji} ${markdownInline(result.matrix.name)}: ${result.outcome}`,
    '',
    `${result.cells.length} cells: ${counts || 'none'} in ${formatDuration(result.durationMs)} on ${markdownInline(result.host.hostname)}${shard}`,
    '',
    // "skipped": the step skipped itself (exit status 77); "not run": it never ran (or was stopped).
    // A Tests column only when some step declares result files.
    withTests ? '| | Cell | Steps passed / failed / skipped / not run | Tests | Duration |' : '| | Cell | Steps passed / failed / skipped / not run | Duration |',
    withTests ? '|:-:|---|:-:|---|--:|' : '|:-:|---|:-:|--:|',
  ];
  for (const cell of result.cells) {
    const c = stepCounts(cell);
    const outcome = cellDisplayOutcome(cell);
    const tests = cellTestCounts(cell);
    const testsColumn = withTests ? ` ${tests ? markdownInline(countsText(tests)) : ''} |` : '';
    out.push(`| ${OUTCOME_EMOJI[outcome]} | ${markdownInline(cell.name)} | ${c.passed} / ${c.failed} / ${c.skipped} / ${c.notRun} |${testsColumn} ${formatDuration(cell.durationMs)} |`);
  }
  out.push(...testSections(result));

  const failing = result.cells.filter((c) => isFailedCell(c.outcome));
  if (failing.length > 0) out.push('', '### Failures');
  for (const cell of failing.slice(0, MAX_DETAILED_FAILURES)) {
    const step = firstFailedStep(cell);
    const tail = step ? await failureTail(outputDir, step) : sanitizeText(cell.infrastructureError ?? '', { maxChars: TAIL_MAX_CHARS });
    out.push(
      '',
      `<details><summary>${OUTCOME_EMOJI[cellDisplayOutcome(cell)]} <strong>${escapeHtml(sanitizeAttribute(cell.name))}</strong>: ${escapeHtml(sanitizeAttribute(failureSummary(cell)))}</summary>`,
      '',
      fenced(tail || '(no output)'),
      '',
      'Rerun this cell:',
      '',
      fenced(sanitizeText(cell.rerun), 'sh'),
      '',
      '</details>',
    );
  }
  if (failing.length > MAX_DETAILED_FAILURES) out.push('', `… and ${failing.length - MAX_DETAILED_FAILURES} more failing cells (see the JUnit or HTML report).`);
  return `${out.join('\n')}\n`;
}

/** Tests whose outcome differs between cells, then each cell's failing tests. */
function testSections(result: RunResult): string[] {
  const matrix = testMatrix(result, MAX_DIFFERING_ROWS);
  if (matrix.total === 0) return [];
  const out: string[] = [];
  const differing = matrix.rows.filter((r) => r.differs);
  if (differing.length > 0 && matrix.cells.length > 1) {
    out.push('', `### Tests that differ between cells (${matrix.differing})`, '');
    out.push(`| Test | Step | ${matrix.cells.map((c) => markdownInline(c.name)).join(' | ')} |`, `|---|---|${matrix.cells.map(() => ':-:').join('|')}|`);
    for (const row of differing) {
      out.push(`| ${markdownInline(testLabel(row))} | ${markdownInline(row.step)} | ${row.outcomes.map((o) => `${TEST_EMOJI[o]}`).join(' | ')} |`);
    }
    if (matrix.differing > differing.length) out.push('', `… and ${matrix.differing - differing.length} more (see the HTML report).`);
  }
  const withFailures = result.cells.map((cell) => ({ cell, failing: failingTests(cell) })).filter((c) => c.failing.length > 0);
  if (withFailures.length > 0) out.push('', '### Failing tests');
  for (const { cell, failing } of withFailures.slice(0, MAX_DETAILED_FAILURES)) {
    out.push('', `<details><summary><strong>${escapeHtml(sanitizeAttribute(cell.name))}</strong>: ${failing.length} failing test${failing.length === 1 ? '' : 's'}</summary>`, '');
    for (const { step, test } of failing.slice(0, MAX_FAILING_TESTS_PER_CELL)) {
      const why = test.message ? `: ${markdownInline(test.message)}` : '';
      out.push(`- ${TEST_EMOJI[test.outcome]} ${markdownInline(testLabel(test))} (${markdownInline(step.name)})${why}`);
    }
    if (failing.length > MAX_FAILING_TESTS_PER_CELL) out.push(`- … and ${failing.length - MAX_FAILING_TESTS_PER_CELL} more`);
    out.push('', '</details>');
  }
  if (withFailures.length > MAX_DETAILED_FAILURES) out.push('', `… and ${withFailures.length - MAX_DETAILED_FAILURES} more cells with failing tests.`);
  return out;
}

export function createMarkdownReporter(): Reporter {
  return {
    name: 'markdown',
    async onRunEnd(result: RunResult, context: ReporterContext): Promise<string[]> {
      const target = context.target ?? join(context.outputDir, MARKDOWN_DEFAULT_FILE);
      await writeFileAtomic(target, await buildMarkdown(result, context.outputDir));
      return [target];
    },
  };
}

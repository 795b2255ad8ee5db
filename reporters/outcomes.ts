/** What the result model means for display: shared by the JUnit, Markdown and HTML reporters. Pure. */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { isFailedStep, type AttemptResult, type CellResult, type RunResult, type StepResult } from '../src/run/result.js';

export type StepDisplayOutcome = 'passed' | 'flaky' | 'failed' | 'timed-out' | 'killed' | 'skipped' | 'not-run';
export type CellDisplayOutcome = CellResult['outcome'] | 'flaky';

export function lastAttempt(step: StepResult): AttemptResult | undefined {
  return step.attempts[step.attempts.length - 1];
}

export function stepDisplayOutcome(step: StepResult): StepDisplayOutcome {
  if (step.outcome === 'passed') return step.flaky ? 'flaky' : 'passed';
  if (step.outcome === 'failed' && lastAttempt(step)?.signal) return 'killed';
  return step.outcome;
}

/** A passing cell with a flaky step is shown as flaky; every other outcome as the scheduler decided. */
export function cellDisplayOutcome(cell: CellResult): CellDisplayOutcome {
  if (cell.outcome === 'passed' && cell.steps.some((s) => s.outcome === 'passed' && s.flaky)) return 'flaky';
  return cell.outcome;
}

export interface StepCounts {
  passed: number;
  failed: number;
  /** Skipped by the step itself (exit status 77). */
  skipped: number;
  /** Never ran, or stopped before it finished (an earlier step failed, fail-fast, interrupt, no container). */
  notRun: number;
}

export function stepCounts(cell: CellResult): StepCounts {
  const counts = { passed: 0, failed: 0, skipped: 0, notRun: 0 };
  for (const step of cell.steps) {
    if (step.outcome === 'passed') counts.passed++;
    else if (isFailedStep(step.outcome)) counts.failed++;
    else if (step.outcome === 'skipped') counts.skipped++;
    else counts.notRun++;
  }
  return counts;
}

/** Why a step never ran, starting with "not run:" once (results may already start their reason with it). */
export function notRunText(reason: string | undefined): string {
  const bare = (reason ?? '').replace(/^\s*not run\s*:\s*/i, '').trim();
  return bare === '' ? 'not run' : `not run: ${bare}`;
}

export type CellTotals = Record<CellDisplayOutcome, number>;

export function cellTotals(result: RunResult): CellTotals {
  const totals: CellTotals = { passed: 0, flaky: 0, failed: 0, error: 0, cancelled: 0, skipped: 0 };
  for (const cell of result.cells) totals[cellDisplayOutcome(cell)]++;
  return totals;
}

/** `12s`, `2.5s`: seconds as people read them in messages. */
export function secondsText(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  return seconds < 10 ? `${Number(seconds.toFixed(1))}s` : `${Math.round(seconds)}s`;
}

/** The JUnit failure type and a one-line reason for a failed attempt. */
export function attemptFailure(attempt: AttemptResult): { type: 'StepFailed' | 'Timeout' | 'Killed'; reason: string } {
  if (attempt.timedOut) return { type: 'Timeout', reason: `timed out after ${secondsText(attempt.durationMs)}` };
  if (attempt.signal) return { type: 'Killed', reason: `killed by ${attempt.signal}` };
  return { type: 'StepFailed', reason: `exit status ${attempt.exitCode ?? 'unknown'}` };
}

export function attemptFailed(attempt: AttemptResult): boolean {
  return attempt.timedOut || attempt.signal !== null || (attempt.exitCode !== 0 && attempt.exitCode !== 77);
}

/** The last line with something visible in it. */
export function lastMeaningfulLine(lines: string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/\S/.test(lines[i] ?? '')) return lines[i];
  }
  return undefined;
}

/**
 * Resolves a path from a result file inside the output directory. Results are data (merge reads files made
 * elsewhere), so a path that escapes the directory is refused rather than read.
 */
export function resolveInside(outputDir: string, relativePath: string): string | undefined {
  if (relativePath === '' || isAbsolute(relativePath)) return undefined;
  const root = resolve(outputDir);
  const full = resolve(root, relativePath);
  return full === root || full.startsWith(root + sep) ? full : undefined;
}

/** A path as the report's reader reaches it from `fromDir` (a relative link), with `/` separators. */
export function linkFrom(fromDir: string, absolutePath: string): string {
  const rel = relative(fromDir, absolutePath);
  return rel.split(sep).join('/');
}

/** Values of the non-image axes of a cell, in the matrix's axis order then any extra keys (from include). */
export function otherAxisValues(result: RunResult, cell: CellResult): [string, string][] {
  const order = result.matrix.axes.map((a) => a.key).filter((k) => k !== 'image');
  const keys = [...order.filter((k) => k in cell.values), ...Object.keys(cell.values).filter((k) => k !== 'image' && !order.includes(k))];
  return keys.map((k) => [k, String(cell.values[k])]);
}

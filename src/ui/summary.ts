/** The end-of-run summary: cells by steps with pass/fail/skip and times, and what to do about failures. */
import { isFailedStep, isFailedTestOutcome, type CellResult, type RunResult, type StepResult } from '../run/result.js';
import { formatDuration } from '../lib/duration.js';
import { printable, terminalSafe, type Palette } from './colors.js';

export function stepSymbol(step: StepResult, c: Palette): string {
  switch (step.outcome) {
    case 'passed':
      return step.flaky ? c.yellow('flaky') : c.green('ok');
    case 'failed':
      return c.red(step.continueOnError ? 'FAIL*' : 'FAIL');
    case 'timed-out':
      return c.red('TIMEOUT');
    case 'skipped':
      return c.yellow('skip');
    case 'not-run':
      return c.dim('-');
  }
}

export function cellSymbol(cell: CellResult, c: Palette): string {
  switch (cell.outcome) {
    case 'passed':
      return c.green('PASS');
    case 'failed':
      return c.red(cell.continueOnError ? 'FAIL (allowed)' : 'FAIL');
    case 'error':
      return c.red('ERROR');
    case 'cancelled':
      return c.yellow('CANCELLED');
    case 'skipped':
      return c.yellow('SKIP');
  }
}

const visibleLength = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '').length;
const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - visibleLength(text)));

/** A cell's upstream test counts (`120 tests, 2 failed, 3 skipped`), or undefined when no step declares results. */
export function cellTestsText(cell: CellResult, c: Palette): string | undefined {
  const all = cell.steps.flatMap((s) => (s.attempts.at(-1)?.results ? [s.attempts.at(-1)!.results!] : []));
  if (all.length === 0) return undefined;
  const tests = all.flatMap((r) => r.tests);
  const failed = tests.filter((t) => isFailedTestOutcome(t.outcome)).length;
  const skipped = tests.filter((t) => t.outcome === 'skipped').length;
  const warnings = all.reduce((n, r) => n + r.warnings.length, 0);
  const parts = [`${tests.length} ${plural(tests.length, 'test')}`];
  if (failed > 0) parts.push(c.red(`${failed} failed`));
  if (skipped > 0) parts.push(c.yellow(`${skipped} skipped`));
  if (warnings > 0) parts.push(c.yellow(`${warnings} ${plural(warnings, 'warning')}`));
  return parts.join(', ');
}

export function summaryTable(result: RunResult, c: Palette): string {
  const stepNames = result.matrix.stepNames;
  const testTexts = result.cells.map((cell) => cellTestsText(cell, c));
  const withTests = testTexts.some((t) => t !== undefined);
  const header = ['cell', ...stepNames.map(printable), 'result', ...(withTests ? ['tests'] : []), 'time'];
  const rows = result.cells.map((cell, index) => [
    printable(cell.name),
    ...stepNames.map((_, i) => {
      const step = cell.steps[i];
      if (!step) return c.dim('-');
      const last = step.attempts.at(-1);
      return last && step.outcome !== 'not-run' ? `${stepSymbol(step, c)} ${c.dim(formatDuration(last.durationMs))}` : stepSymbol(step, c);
    }),
    cellSymbol(cell, c),
    ...(withTests ? [testTexts[index] ?? c.dim('-')] : []),
    formatDuration(cell.durationMs),
  ]);
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) => cells.map((text, i) => pad(text, widths[i]!)).join('  ').trimEnd();
  return [c.bold(line(header)), ...rows.map(line)].join('\n');
}

/** "1 cell", "2 cells": the word for a count (English plurals in -s, which is all nsmatrix needs). */
export function plural(count: number, word: string): string {
  return count === 1 ? word : `${word}s`;
}

export function totals(result: RunResult): string {
  const count = (o: CellResult['outcome']) => result.cells.filter((c) => c.outcome === o).length;
  const parts = [`${count('passed')} passed`, `${count('failed')} failed`];
  for (const [o, label] of [['error', 'error'], ['cancelled', ''], ['skipped', '']] as const) {
    const n = count(o);
    if (n > 0) parts.push(`${n} ${label ? plural(n, label) : o}`);
  }
  return `${result.cells.length} ${plural(result.cells.length, 'cell')}: ${parts.join(', ')} in ${formatDuration(result.durationMs)}`;
}

/** What a developer needs on a failure: the end of the failing log and the command that reruns the cell. */
export function failureDetails(cell: CellResult, outputDir: string, c: Palette, lines = 20): string {
  const out: string[] = [c.red(c.bold(`✖ ${printable(cell.name)}: ${cell.outcome}`))];
  if (cell.infrastructureError) out.push(`  ${terminalSafe(cell.infrastructureError)}`);
  for (const step of cell.steps) {
    if (!isFailedStep(step.outcome)) continue;
    const last = step.attempts.at(-1);
    if (!last) continue;
    const why = last.timedOut
      ? `timed out after ${formatDuration(last.durationMs)}`
      : last.signal
        ? `killed by ${last.signal}`
        : `exit status ${last.exitCode}`;
    out.push(`  step "${printable(step.name)}": ${why}; log: ${printable(`${outputDir}/${last.logPath}`)}`);
    for (const line of last.tail.slice(-lines)) out.push(c.dim('  | ') + terminalSafe(line));
  }
  out.push(`  rerun: ${printable(cell.rerun)}`);
  return out.join('\n');
}

/**
 * The `html` reporter: one self-contained page (inline CSS, no script, no external asset) showing the matrix as
 * a grid: a row per image, a column per combination of the other axes, each cell coloured by outcome (a
 * colour-blind-safe palette, always with an icon and a word too) with its steps, times and relative links to
 * logs and journal; failing log tails follow the grid. Every text from the run is sanitised and escaped.
 */
import { dirname, join } from 'node:path';
import { formatDuration } from '../src/lib/duration.js';
import { isFailedCell, isFailedStep, type CellResult, type RunResult, type StepResult } from '../src/run/result.js';
import { readLogTail } from './log-file.js';
import {
  attemptFailure,
  cellDisplayOutcome,
  cellTotals,
  lastAttempt,
  linkFrom,
  otherAxisValues,
  resolveInside,
  stepDisplayOutcome,
  type CellDisplayOutcome,
  type StepDisplayOutcome,
} from './outcomes.js';
import { clipLines, escapeHtml, hrefOf, sanitizeAttribute, sanitizeText } from './sanitize.js';
import { cellTestCounts, countsText, failingTests, testLabel, testMatrix, type TestOutcomeOrMissing } from './tests.js';
import type { Reporter, ReporterContext } from './types.js';
import { writeFileAtomic } from './write-atomic.js';

export const HTML_DEFAULT_FILE = 'report.html';
const TAIL_LINES = 40;
const TAIL_MAX_CHARS = 8192;
const TAIL_LINE_MAX_CHARS = 400;
const MAX_INLINE_FAILURES = 50;
/** Failing tests named inside a grid cell; rows of the test × cell view (the rest are counted). */
const MAX_CELL_FAILING_TESTS = 8;
const MAX_TEST_ROWS = 2000;
const TEST_ICON: Record<TestOutcomeOrMissing, string> = { passed: '✓', failed: '✗', error: '⚠', skipped: '↷', missing: '–' };
const TEST_COLOUR: Record<TestOutcomeOrMissing, string> = { passed: '#009E73', failed: '#D55E00', error: '#CC79A7', skipped: '#56B4E9', missing: '#ffffff' };

/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. */
export const OUTCOME_COLOURS: Record<CellDisplayOutcome, string> = {
  passed: '#009E73',
  failed: '#D55E00',
  error: '#CC79A7',
  cancelled: '#999999',
  skipped: '#56B4E9',
  flaky: '#E69F00',
};

const CELL_ICON: Record<CellDisplayOutcome, string> = { passed: '✓', failed: '✗', error: '⚠', cancelled: '⊘', skipped: '↷', flaky: '↻' };
const STEP_ICON: Record<StepDisplayOutcome, string> = { passed: '✓', flaky: '↻', failed: '✗', 'timed-out': '✗', killed: '✗', skipped: '↷', 'not-run': '–' };

const text = (value: string): string => escapeHtml(sanitizeAttribute(value, { visibleBreaks: true }));

const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", sans-serif; color: var(--fg); background: #fff; }
header { padding: 18px 24px 12px; border-bottom: 1px solid var(--line); background: var(--bg); }
h1 { margin: 0 0 4px; font-size: 22px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h2 { font-size: 18px; margin: 28px 0 10px; }
main { padding: 16px 24px 32px; }
.meta { margin: 0 0 10px; color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; padding: 0; list-style: none; }
.pill, .badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 600; color: #000; border: 1px solid rgba(0,0,0,.25); }
.badge { font-size: 15px; }
table.grid { border-collapse: separate; border-spacing: 6px; margin-left: -6px; table-layout: fixed; width: calc(100% + 12px); }
.grid col.rowhead { width: 150px; }
.grid th { font-weight: 600; text-align: left; vertical-align: bottom; padding: 4px 6px; font-size: 13px; }
.grid th.row { vertical-align: top; padding-top: 10px; overflow-wrap: anywhere; font-family: "DejaVu Sans Mono", monospace; font-size: 13px; }
.grid td { vertical-align: top; padding: 0; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; background: #fff; }
.grid td.none { background: repeating-linear-gradient(45deg, #fafafa 0 6px, #f0f0f0 6px 12px); color: var(--muted); text-align: center; vertical-align: middle; font-size: 12px; }
.cellhead { display: flex; justify-content: space-between; align-items: baseline; gap: 8px; padding: 5px 8px; color: #000; font-weight: 700; }
.cellhead .time { font-weight: 400; font-variant-numeric: tabular-nums; }
.o-failed .cellhead, .o-error .cellhead { background-image: repeating-linear-gradient(135deg, rgba(0,0,0,.10) 0 5px, transparent 5px 10px); }
.steps { margin: 0; padding: 6px 8px 4px; list-style: none; font-size: 13px; }
.steps li { display: flex; justify-content: space-between; gap: 8px; padding: 1px 0; }
.steps .name { overflow-wrap: anywhere; min-width: 0; }
.steps .time { color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }
.steps .note { color: var(--muted); font-size: 12px; font-weight: 400; }
.s-failed .name, .s-timed-out .name, .s-killed .name { font-weight: 700; color: #a33d00; }
.s-not-run, .s-skipped { color: var(--muted); }
.links { padding: 2px 8px 7px; font-size: 12px; color: var(--muted); }
.reason { padding: 4px 8px 2px; font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
a { color: #0550ae; }
.failure { border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px; margin: 0 0 14px; }
.failure h3 { margin: 0; padding: 8px 12px; font-size: 15px; background: var(--bg); }
.failure pre { margin: 0; padding: 10px 12px; max-height: 420px; overflow: auto; background: #0d1117; color: #e6edf3; font: 12px/1.4 "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-all; }
.failure .rerun { padding: 8px 12px; margin: 0; font-size: 13px; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; background: var(--bg); padding: 1px 4px; border-radius: 4px; }
.tests { padding: 2px 8px 4px; font-size: 12px; }
.tests ul { margin: 2px 0 0; padding-left: 16px; }
.tests li { overflow-wrap: anywhere; color: #a33d00; }
table.tests-matrix { border-collapse: collapse; font-size: 12px; }
.tests-matrix th, .tests-matrix td { border: 1px solid var(--line); padding: 2px 6px; text-align: left; vertical-align: top; }
.tests-matrix th.cellname { writing-mode: vertical-rl; transform: rotate(180deg); max-height: 220px; white-space: nowrap; font-weight: 600; }
.tests-matrix td.t { text-align: center; color: #000; font-weight: 700; min-width: 22px; }
.tests-matrix tr.differs td.test { font-weight: 700; }
.tests-matrix td.test { overflow-wrap: anywhere; max-width: 560px; font-family: "DejaVu Sans Mono", monospace; }
${(Object.keys(TEST_COLOUR) as TestOutcomeOrMissing[]).map((o) => `.tests-matrix td.t-${o} { background-color: ${TEST_COLOUR[o]}; }`).join('\n')}
.legend { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 18px; color: var(--muted); font-size: 12px; align-items: center; }
${(Object.keys(OUTCOME_COLOURS) as CellDisplayOutcome[])
  .map((o) => `.o-${o} .cellhead, .pill.o-${o}, .badge.o-${o} { background-color: ${OUTCOME_COLOURS[o]}; }\n.failure.o-${o} { border-left-color: ${OUTCOME_COLOURS[o]}; }`)
  .join('\n')}
`;

interface Links {
  reportDir: string;
  outputDir: string;
}

function link(links: Links, relativePath: string, label: string): string {
  const full = resolveInside(links.outputDir, relativePath);
  if (!full) return escapeHtml(label);
  return `<a href="${escapeHtml(hrefOf(linkFrom(links.reportDir, full)))}">${escapeHtml(label)}</a>`;
}

function stepNote(step: StepResult, cell: CellResult): string {
  const attempt = lastAttempt(step);
  const notes: string[] = [];
  const cellReason = cell.cancelReason ?? (cell.infrastructureError !== undefined ? 'not run: no container' : undefined);
  if (step.outcome === 'not-run' && step.reason && step.reason !== cellReason && step.reason !== cell.cancelReason) notes.push(step.reason);
  if (isFailedStep(step.outcome) && attempt) notes.push(attemptFailure(attempt).reason);
  if (step.flaky) notes.push(`passed on attempt ${step.attempts.length}`);
  if (step.outcome === 'skipped') notes.push('skipped itself (77)');
  if (step.continueOnError && isFailedStep(step.outcome)) notes.push('allowed to fail');
  return notes.length > 0 ? ` <span class="note">${text(notes.join(', '))}</span>` : '';
}

function stepItem(links: Links, cell: CellResult, step: StepResult): string {
  const outcome = stepDisplayOutcome(step);
  const duration = step.attempts.reduce((sum, a) => sum + Math.max(0, a.durationMs), 0);
  const name = `${STEP_ICON[outcome]} ${sanitizeAttribute(step.name, { fallback: `step ${step.index + 1}` })}`;
  const last = lastAttempt(step);
  const label = last ? link(links, last.logPath, name) : escapeHtml(name);
  const earlier = step.attempts.length > 1 ? ` ${step.attempts.map((a) => link(links, a.logPath, `#${a.attempt}`)).join(' ')}` : '';
  const time = step.attempts.length > 0 ? formatDuration(duration) : '';
  return `<li class="s-${outcome}" title="${text(`${step.name}: ${outcome}${step.reason ? ` (${step.reason})` : ''}`)}"><span class="name">${label}${stepNote(step, cell)}${earlier}</span><span class="time">${escapeHtml(time)}</span></li>`;
}

function gridCell(links: Links, cell: CellResult, failureAnchor: string | undefined): string {
  const outcome = cellDisplayOutcome(cell);
  const parts = [
    `<td class="cell o-${outcome}" title="${text(cell.name)}">`,
    `<div class="cellhead"><span>${CELL_ICON[outcome]} ${outcome}</span><span class="time">${escapeHtml(formatDuration(cell.durationMs))}</span></div>`,
  ];
  if (cell.infrastructureError !== undefined) parts.push(`<div class="reason">${text(cell.infrastructureError)}</div>`);
  else if (cell.cancelReason !== undefined) parts.push(`<div class="reason">${text(cell.cancelReason)}</div>`);
  if (cell.steps.length > 0) parts.push(`<ol class="steps">${cell.steps.map((s) => stepItem(links, cell, s)).join('')}</ol>`);
  parts.push(cellTests(cell));
  const extra: string[] = [];
  if (cell.journal) extra.push(link(links, cell.journal.text, 'journal'));
  if (cell.steps.some((s) => s.attempts.length > 0)) extra.push(link(links, cell.artifactsDir, 'artifacts'));
  if (failureAnchor) extra.push(`<a href="#${failureAnchor}">log tail ↓</a>`);
  if (extra.length > 0) parts.push(`<div class="links">${extra.join(' · ')}</div>`);
  parts.push('</td>');
  return parts.join('');
}

/** A cell's test counts and its first failing tests (empty when no step declares results). */
function cellTests(cell: CellResult): string {
  const counts = cellTestCounts(cell);
  if (!counts) return '';
  const failing = failingTests(cell);
  const items = failing
    .slice(0, MAX_CELL_FAILING_TESTS)
    .map(({ step, test }) => `<li title="${text(`${step.name}: ${test.outcome}${test.message ? `: ${test.message}` : ''}`)}">${TEST_ICON[test.outcome]} ${text(testLabel(test))}</li>`);
  if (failing.length > MAX_CELL_FAILING_TESTS) items.push(`<li>… ${failing.length - MAX_CELL_FAILING_TESTS} more</li>`);
  return `<div class="tests">${text(countsText(counts))}${items.length > 0 ? `<ul>${items.join('')}</ul>` : ''}</div>`;
}

/** The matrix-wide test × cell view: tests whose outcome differs between cells first. */
function testsSection(result: RunResult): string {
  const matrix = testMatrix(result, MAX_TEST_ROWS);
  if (matrix.total === 0) return '';
  const head = matrix.cells.map((c) => `<th class="cellname" title="${text(c.name)}">${text(c.name)}</th>`).join('');
  const rows = matrix.rows.map((row) => {
    const tds = row.outcomes.map((o, i) => `<td class="t t-${o}" title="${text(`${matrix.cells[i]!.name}: ${o}`)}">${TEST_ICON[o]}</td>`).join('');
    return `<tr class="${row.differs ? 'differs' : 'same'}"><td class="test">${text(testLabel(row))}</td><td>${text(row.step)}</td>${tds}</tr>`;
  });
  const intro =
    matrix.differing > 0
      ? `${matrix.differing} of ${matrix.total} tests have an outcome that differs between cells; they come first.`
      : `${matrix.total} tests, the same outcome in every cell.`;
  const more = matrix.total > matrix.rows.length ? `<p>… and ${matrix.total - matrix.rows.length} more tests (see the JUnit or JSON report).</p>` : '';
  return `<h2 id="tests">Tests across the matrix</h2>
<p>${escapeHtml(intro)}</p>
<table class="tests-matrix"><thead><tr><th>test</th><th>step</th>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
${more}`;
}

interface Grid {
  rows: string[];
  columns: { key: string; label: [string, string][] }[];
  cells: Map<string, CellResult[]>;
}

function layout(result: RunResult): Grid {
  const imageAxis = result.matrix.axes.find((a) => a.key === 'image');
  const rows = [...new Set([...(imageAxis?.values.map(String) ?? []), ...result.cells.map((c) => c.image)])].filter((image) =>
    result.cells.some((c) => c.image === image),
  );
  const rank = (key: string, value: string): number => {
    const axis = result.matrix.axes.find((a) => a.key === key);
    const i = axis ? axis.values.map(String).indexOf(value) : -1;
    return i === -1 ? Number.MAX_SAFE_INTEGER : i;
  };
  const columns = new Map<string, [string, string][]>();
  const cells = new Map<string, CellResult[]>();
  for (const cell of result.cells) {
    const values = otherAxisValues(result, cell);
    const key = JSON.stringify(values);
    if (!columns.has(key)) columns.set(key, values);
    const at = `${cell.image}\u0000${key}`;
    cells.set(at, [...(cells.get(at) ?? []), cell]);
  }
  const sorted = [...columns.entries()]
    .map(([key, label]) => ({ key, label }))
    .sort((a, b) => {
      for (let i = 0; i < Math.min(a.label.length, b.label.length); i++) {
        const [ka, va] = a.label[i]!;
        const [kb, vb] = b.label[i]!;
        if (ka !== kb) return ka < kb ? -1 : 1;
        const d = rank(ka, va) - rank(kb, vb);
        if (d !== 0) return d;
        if (va !== vb) return va < vb ? -1 : 1;
      }
      return a.label.length - b.label.length;
    });
  return { rows, columns: sorted, cells };
}

async function failureTail(outputDir: string, step: StepResult): Promise<string> {
  const attempt = lastAttempt(step);
  if (!attempt) return '';
  const path = resolveInside(outputDir, attempt.logPath);
  const read = path ? await readLogTail(path, { lines: TAIL_LINES, maxBytes: 4 * TAIL_MAX_CHARS }) : undefined;
  const lines = read ? read.lines : attempt.tail.slice(-TAIL_LINES);
  return sanitizeText(clipLines(lines, TAIL_LINE_MAX_CHARS).join('\n'), { maxChars: TAIL_MAX_CHARS, fullLogPath: attempt.logPath });
}

async function failureSection(links: Links, cell: CellResult, anchor: string): Promise<string> {
  const outcome = cellDisplayOutcome(cell);
  const step = cell.steps.find((s) => isFailedStep(s.outcome));
  const attempt = step && lastAttempt(step);
  const what = cell.infrastructureError !== undefined ? 'infrastructure error' : step && attempt ? `${step.name}: ${attemptFailure(attempt).reason}` : outcome;
  const body = step ? await failureTail(links.outputDir, step) : sanitizeText(cell.infrastructureError ?? '', { maxChars: TAIL_MAX_CHARS });
  const logLink = attempt ? ` · ${link(links, attempt.logPath, 'full log')}` : '';
  return [
    `<article class="failure o-${outcome}" id="${anchor}">`,
    `<h3>${CELL_ICON[outcome]} ${text(cell.name)} — ${text(what)}${step?.continueOnError || cell.continueOnError ? ' <span class="note">(continue-on-error)</span>' : ''}</h3>`,
    `<pre>${escapeHtml(body || '(no output)')}</pre>`,
    `<p class="rerun">Rerun: <code>${text(cell.rerun)}</code>${logLink}</p>`,
    '</article>',
  ].join('\n');
}

export async function buildHtml(result: RunResult, options: { outputDir: string; reportPath: string }): Promise<string> {
  const links: Links = { outputDir: options.outputDir, reportDir: dirname(options.reportPath) };
  const totals = cellTotals(result);
  const runOutcome: CellDisplayOutcome =
    result.outcome === 'passed' ? (totals.flaky > 0 ? 'flaky' : 'passed') : result.outcome === 'error' ? 'error' : result.outcome === 'interrupted' ? 'cancelled' : 'failed';
  const failing = result.cells.filter((c) => isFailedCell(c.outcome));
  const anchors = new Map(failing.slice(0, MAX_INLINE_FAILURES).map((c, i) => [c.id, `failure-${i + 1}`]));

  const grid = layout(result);
  const header = grid.columns.map((c) => `<th scope="col">${c.label.length > 0 ? c.label.map(([k, v]) => text(`${k}=${v}`)).join('<br>') : 'steps'}</th>`).join('');
  const rows = grid.rows.map((image) => {
    const tds = grid.columns.map((column) => {
      const here = grid.cells.get(`${image}\u0000${column.key}`) ?? [];
      if (here.length === 0) return '<td class="none">not in matrix</td>';
      return here.map((cell) => gridCell(links, cell, anchors.get(cell.id))).join('');
    });
    return `<tr><th scope="row" class="row">${text(image)}</th>${tds.join('')}</tr>`;
  });

  const failures: string[] = [];
  for (const cell of failing.slice(0, MAX_INLINE_FAILURES)) failures.push(await failureSection(links, cell, anchors.get(cell.id)!));
  if (failing.length > MAX_INLINE_FAILURES) failures.push(`<p>… and ${failing.length - MAX_INLINE_FAILURES} more failing cells: see their logs.</p>`);

  const started = Number.isNaN(Date.parse(result.startedAt)) ? result.startedAt : new Date(result.startedAt).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  const host = `${result.host.hostname}${result.host.nspawnVersion ? `, systemd-nspawn ${result.host.nspawnVersion}` : ''}${result.host.systemdIsPid1 ? '' : ', no systemd as PID 1'}`;
  const meta = [
    `${result.cells.length} cells`,
    formatDuration(result.durationMs),
    `started ${started}`,
    `host ${host}`,
    `${result.tool.name} ${result.tool.version}`,
    result.matrix.file,
    ...(result.shard ? [`shard ${result.shard.index}/${result.shard.total}`] : []),
    ...(result.interrupted ? ['interrupted'] : []),
  ];
  const pills = (Object.keys(totals) as CellDisplayOutcome[])
    .filter((o) => totals[o] > 0)
    .map((o) => `<li class="pill o-${o}">${CELL_ICON[o]} ${totals[o]} ${o}</li>`)
    .join('');
  const legend = (Object.keys(OUTCOME_COLOURS) as CellDisplayOutcome[]).map((o) => `<span class="pill o-${o}">${CELL_ICON[o]} ${o}</span>`).join('');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${text(`${result.matrix.name}: ${result.outcome}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1><span class="badge o-${runOutcome}">${CELL_ICON[runOutcome]} ${escapeHtml(result.outcome)}</span> ${text(result.matrix.name)}</h1>
<p class="meta">${meta.map((m) => text(m)).join(' · ')}</p>
<ul class="totals">${pills}</ul>
</header>
<main>
<table class="grid" style="min-width: ${150 + 200 * Math.max(1, grid.columns.length)}px">
<colgroup><col class="rowhead">${grid.columns.map(() => '<col>').join('')}</colgroup>
<thead><tr><th scope="col">image</th>${header}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<div class="legend">Legend: ${legend} <span>– not run</span></div>
${testsSection(result)}
${failures.length > 0 ? `<h2>Failures</h2>\n${failures.join('\n')}` : ''}
</main>
</body>
</html>
`;
}

export function createHtmlReporter(): Reporter {
  return {
    name: 'html',
    async onRunEnd(result: RunResult, context: ReporterContext): Promise<string[]> {
      const target = context.target ?? join(context.outputDir, HTML_DEFAULT_FILE);
      await writeFileAtomic(target, await buildHtml(result, { outputDir: context.outputDir, reportPath: target }));
      return [target];
    },
  };
}

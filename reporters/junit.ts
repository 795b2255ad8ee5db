/**
 * The `junit` reporter: one `testsuite` per cell, a `container-start` case first, one case per step, following
 * ../shared/junit-contract.md. Logs are read from the output directory in bounded pieces (head and tail), never
 * whole; every text is sanitised before it reaches the XML.
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { isFailedStep, stepTests, type AttemptResult, type CellResult, type RunResult, type StepResult, type TestRecord } from '../src/run/result.js';
import { readLogExcerpt, readLogTail } from './log-file.js';
import { attemptFailed, attemptFailure, lastAttempt, lastMeaningfulLine, notRunText, resolveInside } from './outcomes.js';
import { renderJunit, type CasePlan, type OutcomeElement, type SuitePlan } from './junit-render.js';
import {
  FAILURE_BODY_MAX_CHARS,
  LABEL_MAX_CHARS,
  SYSTEM_OUT_MAX_CHARS,
  capText,
  sanitizeAttribute,
  sanitizeText,
  slugify,
} from './sanitize.js';
import { cellTestCounts, countsText } from './tests.js';
import type { Reporter, ReporterContext } from './types.js';
import { writeFileAtomic } from './write-atomic.js';

export const JUNIT_DEFAULT_FILE = 'junit.xml';
export const CONTAINER_START_CASE = 'container-start';
/** Between cell and step in an upstream test's classname; never inside a slug. */
const STEP_SEPARATOR = '--';
/** Lines of log in a failure body (the contract's "last ~100 log lines"). */
const FAILURE_TAIL_LINES = 100;
/*
 * Log text shared by all cases of a document, so that a big matrix with big logs still makes a file consumers
 * accept (GitLab refuses JUnit files over 30 MB): per-case caps shrink below the contract's maxima when needed.
 */
const SYSTEM_OUT_BUDGET = 12 * 1024 * 1024;
const FAILURE_BODY_BUDGET = 6 * 1024 * 1024;
const MIN_SYSTEM_OUT = 8 * 1024;
const MIN_FAILURE_BODY = 4 * 1024;

export interface JunitOptions {
  /** Absolute output directory: result paths are relative to it. */
  outputDir: string;
  /** Attachment paths are written relative to this directory (the CI workspace); default: the current directory. */
  attachmentBase?: string;
}

interface Context {
  outputDir: string;
  attachmentBase: string;
  systemOutCap: number;
  failureBodyCap: number;
}

/** Unique names within a scope: a repeated one gets ` (2)`, ` (3)`… (or `-2` for slugs). */
class UniqueNames {
  private readonly used = new Set<string>();
  constructor(private readonly join: (base: string, n: number) => string) {}
  take(base: string): string {
    let name = base;
    for (let n = 2; this.used.has(name); n++) name = this.join(base, n);
    this.used.add(name);
    return name;
  }
}

/** `YYYY-MM-DDTHH:MM:SS` in UTC, from an ISO string; the fallback when it does not parse. */
export function junitTimestamp(iso: string, fallback: string): string {
  const ms = Date.parse(iso);
  const at = Number.isNaN(ms) ? Date.parse(fallback) : ms;
  return new Date(Number.isNaN(at) ? 0 : at).toISOString().slice(0, 19);
}

function attachmentLine(ctx: Context, relativePath: string): string | undefined {
  const full = resolveInside(ctx.outputDir, relativePath);
  if (!full) return undefined;
  const rel = relative(ctx.attachmentBase, full);
  const path = rel === '' || rel.startsWith('..') || isAbsolute(rel) ? full : rel;
  return `[[ATTACHMENT|${sanitizeAttribute(path)}]]`;
}

function journalAttachments(ctx: Context, cell: CellResult): string[] {
  if (!cell.journal) return [];
  return [cell.journal.text]
    .filter((p) => p)
    .map((p) => attachmentLine(ctx, p))
    .filter((l): l is string => l !== undefined);
}

/** Log text above a footer, the whole capped at `max` (the log gives way, the footer never does). */
function withFooter(log: string, footer: string[], max: number, fullLogPath?: string): string {
  const tail = footer.length > 0 ? `\n${footer.join('\n')}` : '';
  const room = Math.max(0, max - tail.length);
  const body = capText(log, room, fullLogPath);
  return `${body}${tail}`.replace(/^\n+/, '');
}

async function logTailLines(ctx: Context, attempt: AttemptResult): Promise<string[]> {
  const path = resolveInside(ctx.outputDir, attempt.logPath);
  const read = path ? await readLogTail(path, { lines: FAILURE_TAIL_LINES, maxBytes: 2 * FAILURE_BODY_MAX_CHARS }) : undefined;
  const lines = read ? read.lines : attempt.tail.slice(-FAILURE_TAIL_LINES);
  return sanitizeText(lines.join('\n')).split('\n');
}

async function logExcerpt(ctx: Context, attempt: AttemptResult, maxChars: number): Promise<string> {
  const path = resolveInside(ctx.outputDir, attempt.logPath);
  const excerpt = path ? await readLogExcerpt(path, { maxBytes: maxChars, displayPath: attempt.logPath }) : undefined;
  const text = excerpt ? excerpt.text : `(log ${attempt.logPath} unreadable; its last lines:)\n${attempt.tail.join('\n')}`;
  return sanitizeText(text, { maxChars, fullLogPath: attempt.logPath });
}

/** A failed attempt: its JUnit type, a one-line message (with the log's last line) and the end of its log. */
async function attemptReport(ctx: Context, attempt: AttemptResult): Promise<{ type: OutcomeElement['type']; message: string; lines: string[] }> {
  const { type, reason } = attemptFailure(attempt);
  const lines = await logTailLines(ctx, attempt);
  const last = type === 'StepFailed' ? lastMeaningfulLine(lines) : undefined;
  const message = sanitizeAttribute(last ? `${reason}: ${last}` : reason, { fallback: reason });
  return { type, message, lines };
}

async function failureOf(ctx: Context, cell: CellResult, step: StepResult, attempt: AttemptResult): Promise<OutcomeElement> {
  const { type, message, lines } = await attemptReport(ctx, attempt);
  const head = [message];
  if (step.continueOnError || cell.continueOnError) head.push('continue-on-error: the exit code is spared, the failure stands');
  head.push(`--- last ${lines.length} lines of ${sanitizeAttribute(attempt.logPath)} (attempt ${attempt.attempt}) ---`);
  const foot = [`--- rerun: ${sanitizeAttribute(cell.rerun)}`];
  const room = ctx.failureBodyCap - head.join('\n').length - foot.join('\n').length - 2;
  const body = [...head, capText(lines.join('\n'), Math.max(0, room), attempt.logPath), ...foot].join('\n');
  return { type, message, body: capText(body, ctx.failureBodyCap) };
}

/**
 * An earlier failed attempt of a step that was retried, for `system-out`: Surefire's flakyFailure/rerunFailure
 * would be the place, but dtkit's schema refuses them, so the contract's fallback applies (their tails in
 * `system-out`, the count in a suite property).
 */
async function earlierAttemptText(ctx: Context, step: StepResult, attempt: AttemptResult, maxChars: number): Promise<string> {
  const { message, lines } = await attemptReport(ctx, attempt);
  const head = `--- attempt ${attempt.attempt} of ${step.attempts.length} failed: ${message} (last ${lines.length} lines of ${sanitizeAttribute(attempt.logPath)}) ---`;
  return capText([head, ...lines].join('\n'), maxChars, attempt.logPath);
}

function attemptWords(attempt: AttemptResult): string {
  if (!attemptFailed(attempt)) return attempt.exitCode === 77 ? 'skipped (exit status 77)' : 'passed';
  return attemptFailure(attempt).reason;
}

async function stepCase(ctx: Context, cell: CellResult, step: StepResult, name: string, classname: string): Promise<CasePlan> {
  const timeSeconds = step.attempts.reduce((sum, a) => sum + Math.max(0, a.durationMs), 0) / 1000;
  const plan: CasePlan = { name, classname, timeSeconds, systemOut: '' };
  const last = lastAttempt(step);
  if (!last) {
    const reason = sanitizeAttribute(notRunText(step.reason), { fallback: 'not run' });
    plan.skipped = reason;
    plan.systemOut = reason;
    return plan;
  }

  const footer: string[] = [];
  if (step.attempts.length > 1) {
    footer.push(`attempts: ${step.attempts.map((a) => `#${a.attempt} ${attemptWords(a)}`).join(', ')}`);
  }
  if (step.continueOnError || cell.continueOnError) footer.push('continue-on-error: yes (the exit code is spared, never the report)');
  footer.push(...resultsFooter(step));
  for (const attempt of step.attempts) {
    const line = attachmentLine(ctx, attempt.logPath);
    if (line) footer.push(line);
  }
  const failed = isFailedStep(step.outcome);
  if (failed) footer.push(...journalAttachments(ctx, cell));
  // Earlier failed attempts take at most half of system-out; the last attempt's log gives way first.
  const earlier = step.attempts.slice(0, -1).filter(attemptFailed);
  const share = Math.min(ctx.failureBodyCap, Math.floor(ctx.systemOutCap / 2 / Math.max(1, earlier.length)));
  const attemptTexts = await Promise.all(earlier.map((a) => earlierAttemptText(ctx, step, a, share)));
  const log = await logExcerpt(ctx, last, ctx.systemOutCap);
  plan.systemOut = withFooter(log, [...attemptTexts, ...footer], ctx.systemOutCap, last.logPath);

  switch (step.outcome) {
    case 'passed':
      break;
    case 'failed':
    case 'timed-out':
      plan.failure = await failureOf(ctx, cell, step, last);
      break;
    case 'skipped':
      plan.skipped = sanitizeAttribute(step.reason ?? 'skipped by the step (exit status 77)', { fallback: 'skipped by the step' });
      break;
    case 'not-run':
      // It started, then was stopped (container failure, interrupt): the reason says so.
      plan.skipped = sanitizeAttribute(step.reason ?? 'stopped', { fallback: 'stopped' });
      break;
  }
  return plan;
}

/** What the step's result files held, and what was wrong with them, for the step case's `system-out`. */
function resultsFooter(step: StepResult): string[] {
  const results = lastAttempt(step)?.results;
  if (!results) return [];
  const counts = cellTestCounts({ steps: [step] } as CellResult)!;
  const lines = [`results: ${countsText(counts)} from ${results.files.length} file${results.files.length === 1 ? '' : 's'} (each a testcase below)`];
  for (const warning of results.warnings.slice(0, 20)) lines.push(`results warning: ${sanitizeAttribute(warning)}`);
  const attachment = results.logPath;
  return attachment ? [...lines, `results gathered: ${sanitizeAttribute(attachment)}`] : lines;
}

const TEST_OUTCOME_TYPE = { failed: 'TestFailed', error: 'TestError' } as const;

/** An upstream test as a case of its own, under a classname naming the cell and the step. */
function upstreamCase(test: TestRecord, name: string, classname: string, stepName: string): CasePlan {
  const plan: CasePlan = { name, classname, timeSeconds: (test.durationMs ?? 0) / 1000, systemOut: '' };
  const notes: string[] = [`step: ${stepName}`];
  if (test.flaky) notes.push('flaky: failed in an earlier attempt of the step, passed in the last one');
  if (test.outcome === 'failed' || test.outcome === 'error') {
    const fallback = test.outcome === 'failed' ? 'test failed' : 'test error';
    const message = sanitizeAttribute(test.message ?? fallback, { fallback });
    const details = sanitizeText(test.details ?? '', { maxChars: FAILURE_BODY_MAX_CHARS - 2048 });
    const body = details.trim() === '' ? message : `${message}\n${details}`;
    const element = { type: TEST_OUTCOME_TYPE[test.outcome], message, body: capText(body, FAILURE_BODY_MAX_CHARS) };
    if (test.outcome === 'failed') plan.failure = element;
    else plan.error = element;
  } else if (test.outcome === 'skipped') {
    plan.skipped = sanitizeAttribute(test.message ?? 'skipped', { fallback: 'skipped' });
  }
  plan.systemOut = sanitizeText(notes.join('\n'));
  return plan;
}

function upstreamCases(test: TestRecord[], classname: string, stepName: string): CasePlan[] {
  const names = new UniqueNames((base, n) => `${base} (${n})`);
  return test.map((t) => {
    const label = t.suite === '' ? t.name : `${t.suite}::${t.name}`;
    return upstreamCase(t, names.take(sanitizeAttribute(label, { maxChars: LABEL_MAX_CHARS - 8, fallback: 'test' })), classname, stepName);
  });
}

function containerStartCase(ctx: Context, cell: CellResult, classname: string): CasePlan {
  const stepsMs = cell.steps.reduce((sum, s) => sum + s.attempts.reduce((t, a) => t + Math.max(0, a.durationMs), 0), 0);
  const plan: CasePlan = { name: CONTAINER_START_CASE, classname, timeSeconds: Math.max(0, cell.durationMs - stepsMs) / 1000, systemOut: '' };
  const started = cell.steps.some((s) => s.attempts.length > 0);
  const lines = [`image: ${cell.image}${cell.imageKey ? ` (key ${cell.imageKey})` : ''}`];
  if (cell.machine || cell.strategy) lines.push(`machine: ${cell.machine ?? '-'}, root: ${cell.strategy ?? '-'}`);
  if (cell.journal) {
    if (cell.journal.errors.length > 0) lines.push('journal errors:', ...cell.journal.errors.slice(-50));
    if (cell.journal.coredumps.length > 0) lines.push('core dumps:', ...cell.journal.coredumps.slice(-20));
  }
  if (cell.infrastructureError !== undefined) {
    const message = sanitizeAttribute(cell.infrastructureError, { fallback: 'infrastructure error' });
    const body = sanitizeText(`${cell.infrastructureError}\n--- rerun: ${cell.rerun}`, { maxChars: FAILURE_BODY_MAX_CHARS });
    plan.error = { type: 'InfrastructureError', message, body: body.trim() === '' ? message : body };
  } else if (cell.outcome === 'cancelled' && !started) {
    plan.skipped = sanitizeAttribute(`cancelled: ${cell.cancelReason ?? 'before it started'}`);
  }
  plan.systemOut = withFooter(sanitizeText(lines.join('\n')), journalAttachments(ctx, cell), ctx.systemOutCap);
  return plan;
}

/** `attempts.<case name>` = N for each retried step: the contract's fallback where flakyFailure is not allowed. */
function attemptProperties(cell: CellResult, caseNames: string[]): [string, string][] {
  return cell.steps.flatMap((step, i): [string, string][] =>
    step.attempts.length > 1 ? [[sanitizeAttribute(`attempts.${caseNames[i] ?? step.name}`, { maxChars: LABEL_MAX_CHARS, fallback: 'attempts' }), String(step.attempts.length)]] : [],
  );
}

function suiteProperties(result: RunResult, cell: CellResult): [string, string][] {
  const props: [string, string | undefined][] = [
    ['image', cell.image],
    ['image.key', cell.imageKey],
    ...Object.entries(cell.values).map(([key, value]): [string, string] => [`axis.${key}`, String(value)]),
    ['nspawn.version', result.host.nspawnVersion ?? undefined],
    [`${result.tool.name}.version`, result.tool.version],
    ['machine', cell.machine],
    ['strategy', cell.strategy],
    ['host', result.host.hostname],
    ['continue-on-error', cell.continueOnError ? 'true' : undefined],
  ];
  return props
    .filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '')
    .map(([name, value]) => [sanitizeAttribute(name, { maxChars: LABEL_MAX_CHARS, fallback: 'property' }), sanitizeAttribute(value)]);
}

/** The classname of a step's upstream tests: the cell's classname (`<matrix>.<cell>`, one dot) and the step's slug. */
export function upstreamClassname(cellClassname: string, stepSlug: string): string {
  return `${cellClassname}${STEP_SEPARATOR}${stepSlug}`;
}

/** The plan of the whole document, with every text already sanitised and capped. */
export async function planJunit(result: RunResult, options: JunitOptions): Promise<{ name: string; suites: SuitePlan[] }> {
  const casesWithLogs = result.cells.reduce((n, c) => n + c.steps.filter((s) => s.attempts.length > 0).length, 0);
  const failedAttempts = result.cells.reduce((n, c) => n + c.steps.reduce((m, s) => m + s.attempts.filter(attemptFailed).length, 0), 0);
  const share = (budget: number, parts: number, min: number, max: number) => Math.min(max, Math.max(min, Math.floor(budget / Math.max(1, parts))));
  const ctx: Context = {
    outputDir: resolve(options.outputDir),
    attachmentBase: resolve(options.attachmentBase ?? process.cwd()),
    systemOutCap: share(SYSTEM_OUT_BUDGET, casesWithLogs, MIN_SYSTEM_OUT, SYSTEM_OUT_MAX_CHARS),
    failureBodyCap: share(FAILURE_BODY_BUDGET, failedAttempts, MIN_FAILURE_BODY, FAILURE_BODY_MAX_CHARS),
  };
  const name = sanitizeAttribute(result.matrix.name, { maxChars: LABEL_MAX_CHARS, fallback: 'nsmatrix' });
  const matrixSlug = slugify(result.matrix.name, 150, 'matrix');
  const suiteNames = new UniqueNames((base, n) => `${base} (${n})`);
  const cellSlugs = new UniqueNames((base, n) => `${base}-${n}`);
  const suites: SuitePlan[] = [];
  // Each step case reads its log: read several at once (a report of many cells waited on one file after another),
  // each into the place its case keeps in the order the names were given.
  const reads: (() => Promise<void>)[] = [];
  for (const cell of result.cells) {
    const classname = `${matrixSlug}.${cellSlugs.take(slugify(cell.id || cell.name, 300, 'cell'))}`;
    const caseNames = new UniqueNames((base, n) => `${base} (${n})`);
    // The container-start case is a case like any other: the library's tests/failures/errors/skipped count it,
    // as every consumer does (they count <testcase> elements), and its error or skip is counted with it.
    const cases: CasePlan[] = [containerStartCase(ctx, cell, classname)];
    caseNames.take(CONTAINER_START_CASE);
    const stepNames: string[] = [];
    const stepSlugs = new UniqueNames((base, n) => `${base}-${n}`);
    for (const step of cell.steps) {
      const stepName = caseNames.take(sanitizeAttribute(step.name, { maxChars: LABEL_MAX_CHARS - 8, fallback: `step ${step.index + 1}` }));
      stepNames.push(stepName);
      const at = cases.length;
      cases.push({ name: stepName, classname, timeSeconds: 0, systemOut: '' }); // replaced once its log is read
      reads.push(async () => {
        cases[at] = await stepCase(ctx, cell, step, stepName, classname);
      });
      const tests = stepTests(step);
      // Upstream tests follow their step, under `<matrix>.<cell>--<step>`: the contract's one dot (Jenkins splits at
      // the last dot: package = matrix, class = cell for the step cases, cell--step for its tests). A slug never
      // holds `--` (slugify collapses dashes), so the separator is unambiguous and the class unique per step.
      if (tests.length > 0) cases.push(...upstreamCases(tests, upstreamClassname(classname, stepSlugs.take(slugify(step.name, 50, 'step'))), stepName));
    }
    suites.push({
      name: suiteNames.take(sanitizeAttribute(cell.name, { maxChars: LABEL_MAX_CHARS - 8, fallback: cell.id || 'cell' })),
      timestamp: junitTimestamp(cell.startedAt, result.startedAt),
      timeSeconds: Math.max(0, cell.durationMs) / 1000,
      properties: [...suiteProperties(result, cell), ...attemptProperties(cell, stepNames)],
      cases,
    });
  }
  await runBounded(reads, LOG_READS_AT_ONCE);
  if (suites.length === 0) {
    // The schema (and Jenkins) want at least one suite: say plainly that nothing ran.
    suites.push({
      name: 'no cells',
      timestamp: junitTimestamp(result.startedAt, result.startedAt),
      timeSeconds: 0,
      properties: [],
      cases: [{ name: 'no cells selected', classname: `${matrixSlug}.none`, timeSeconds: 0, skipped: 'no cells selected', systemOut: 'no cells selected' }],
    });
  }
  return { name, suites };
}

/** Log files read at the same time while a report is built. */
const LOG_READS_AT_ONCE = 8;

async function runBounded(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

export async function buildJunitXml(result: RunResult, options: JunitOptions): Promise<string> {
  const plan = await planJunit(result, options);
  return renderJunit(plan.name, plan.suites);
}

export function createJunitReporter(options: { attachmentBase?: string } = {}): Reporter {
  return {
    name: 'junit',
    async onRunEnd(result: RunResult, context: ReporterContext): Promise<string[]> {
      const target = context.target ?? join(context.outputDir, JUNIT_DEFAULT_FILE);
      const xml = await buildJunitXml(result, { outputDir: context.outputDir, ...options });
      await writeFileAtomic(target, xml);
      return [target];
    },
  };
}

/**
 * The result model: what happened in a run, in fields rather than thrown errors. One zod schema is the model: the
 * types below are derived from it, `results.json` is written from it and read back (by `merge`) through it.
 * Reporters read only this (plus the event stream). Reading validates and then keeps the data as it was, so a field
 * a newer nsmatrix adds survives a merge by an older one.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { TEST_OUTCOMES, type TestResult } from '../results/types.js';

export const RESULT_VERSION = 1;

export const STEP_OUTCOMES = [
  'passed',
  'failed', // non-zero exit, or killed by a signal
  'timed-out',
  'skipped', // exit 77: skipped by the step itself
  'not-run', // an earlier step failed, the cell was cancelled (fail-fast) or the run interrupted
] as const;
export const CELL_OUTCOMES = [
  'passed',
  'failed',
  'error', // infrastructure: image or container could not be made
  'cancelled', // fail-fast or interrupt before or while it ran
  'skipped', // every step skipped itself
] as const;
export const RUN_OUTCOMES = ['passed', 'failed', 'error', 'interrupted'] as const;

// The schemas are built on first use: a run writes results.json without parsing it, and building them cost ~5 ms of
// every command's start-up. Only reading a result (merge, reports of an earlier run) needs them.
function buildSchemas() {
  const matrixValue = z.union([z.string(), z.number(), z.boolean()]);

  /** One upstream test of a step attempt, read from the files the step declares with `results:`. */
  const testSchema = z.object({
    name: z.string(),
    /** JUnit classname or suite, Go package, TAP parent tests, automake directory ("" when none). */
    suite: z.string(),
    outcome: z.enum(TEST_OUTCOMES),
    durationMs: z.number().optional(),
    message: z.string().optional(),
    details: z.string().optional(),
    /** Passed in this (last) attempt after failing in an earlier one. */
    flaky: z.boolean().optional(),
  });

  const attemptTestsSchema = z.object({
    tests: z.array(testSchema),
    /** Container paths of the files read, the format each was read as, and how many tests each held. */
    files: z.array(z.object({ path: z.string(), format: z.string(), tests: z.number().int().nonnegative() })),
    /** Missing, malformed, cut or unrecognised result files, in words: never a crash, never a lost report. */
    warnings: z.array(z.string()),
    /** The gathering's own log, relative to the output directory. */
    logPath: z.string().optional(),
  });

  const attemptSchema = z.object({
    attempt: z.number().int().positive(), // 1-based
    startedAt: z.string(), // ISO 8601
    durationMs: z.number(),
    exitCode: z.number().int().nullable(),
    /** Signal name when the step died by a signal (e.g. "SIGKILL"). */
    signal: z.string().nullable(),
    timedOut: z.boolean(),
    /** Output path relative to the run's output directory. */
    logPath: z.string(),
    /** The last lines of the output (already decoded, at most ~100 lines). */
    tail: z.array(z.string()),
    /** Per-test results gathered after this attempt; absent when the step declares no `results:`. */
    results: attemptTestsSchema.optional(),
  });

  const stepSchema = z.object({
    index: z.number().int().nonnegative(),
    name: z.string(),
    outcome: z.enum(STEP_OUTCOMES),
    /** Why a step was not run or skipped, in words. */
    reason: z.string().optional(),
    continueOnError: z.boolean(),
    /** Passed after at least one failed attempt. */
    flaky: z.boolean(),
    /** Every attempt in order; the last one decides the outcome. Empty when not run. */
    attempts: z.array(attemptSchema),
  });

  const journalSchema = z.object({
    /** Paths relative to the output directory. */
    dir: z.string(),
    text: z.string(),
    /** Journal lines at priority err or worse. */
    errors: z.array(z.string()),
    coredumps: z.array(z.string()),
  });

  const cellSchema = z.object({
    id: z.string().min(1),
    /** Position of the cell in the full (unselected) expansion: lets merged shards keep the matrix order. */
    position: z.number().int(),
    name: z.string(),
    image: z.string(),
    values: z.record(z.string(), matrixValue),
    outcome: z.enum(CELL_OUTCOMES),
    continueOnError: z.boolean(),
    startedAt: z.string(),
    durationMs: z.number(),
    imageKey: z.string().optional(),
    /** How the cell's root was made copy-on-write: "overlay", "btrfs-snapshot", "volatile", "copy". */
    strategy: z.string().optional(),
    machine: z.string().optional(),
    /** Infrastructure failure (image, container start, nspawn error), in words. */
    infrastructureError: z.string().optional(),
    /** Why the cell was cancelled. */
    cancelReason: z.string().optional(),
    steps: z.array(stepSchema),
    /** Output paths relative to the output directory. */
    outputDir: z.string(),
    artifactsDir: z.string(),
    journal: journalSchema.optional(),
    /** A command that reruns just this cell. */
    rerun: z.string(),
  });

  const runSchema = z.object({
    version: z.literal(RESULT_VERSION),
    tool: z.object({ name: z.literal('nsmatrix'), version: z.string() }),
    matrix: z.object({
      name: z.string(),
      file: z.string(),
      axes: z.array(z.object({ key: z.string(), values: z.array(matrixValue) })),
      stepNames: z.array(z.string()),
    }),
    host: z.object({ hostname: z.string(), nspawnVersion: z.string().nullable(), systemdIsPid1: z.boolean() }),
    startedAt: z.string(),
    durationMs: z.number(),
    outcome: z.enum(RUN_OUTCOMES),
    interrupted: z.boolean(),
    shard: z.object({ index: z.number().int(), total: z.number().int() }).optional(),
    cells: z.array(cellSchema),
  });
  return { test: testSchema, attemptTests: attemptTestsSchema, attempt: attemptSchema, step: stepSchema, journal: journalSchema, cell: cellSchema, run: runSchema };
}

type Schemas = ReturnType<typeof buildSchemas>;
let schemas: Schemas | undefined;
export function resultSchemas(): Schemas {
  return (schemas ??= buildSchemas());
}

export type StepOutcome = (typeof STEP_OUTCOMES)[number];
export type CellOutcome = (typeof CELL_OUTCOMES)[number];
export type RunOutcome = (typeof RUN_OUTCOMES)[number];
export type AttemptResult = z.infer<Schemas['attempt']>;
export type AttemptTestResults = z.infer<Schemas['attemptTests']>;
export type TestRecord = z.infer<Schemas['test']>;
// The parsers' type and the model's are one shape: a parser's test is stored as it is.
export const testRecordOf = (test: TestResult): TestRecord => test;
export type StepResult = z.infer<Schemas['step']>;
export type JournalSummary = z.infer<Schemas['journal']>;
export type CellResult = z.infer<Schemas['cell']>;
export type RunResult = z.infer<Schemas['run']>;

/** The step failed (exit status, signal or timeout): what fail-fast, retries and reports count as a failure. */
export function isFailedStep(outcome: StepOutcome): boolean {
  return outcome === 'failed' || outcome === 'timed-out';
}

/** The tests of a step: those of its last attempt (flaky ones marked), empty when it declares no results. */
export function stepTests(step: StepResult): TestRecord[] {
  return step.attempts.at(-1)?.results?.tests ?? [];
}

export function isFailedTestOutcome(outcome: TestRecord['outcome']): boolean {
  return outcome === 'failed' || outcome === 'error';
}

/** The cell did not pass through its own fault or the infrastructure's (cancelled and skipped cells are neither). */
export function isFailedCell(outcome: CellOutcome): boolean {
  return outcome === 'failed' || outcome === 'error';
}

export function cellOutcome(steps: StepResult[], extra: { infrastructureError?: string; cancelled?: string }): CellOutcome {
  if (extra.infrastructureError !== undefined) return 'error';
  if (steps.some((s) => isFailedStep(s.outcome))) return 'failed';
  if (extra.cancelled !== undefined) return 'cancelled';
  if (steps.length > 0 && steps.every((s) => s.outcome === 'skipped')) return 'skipped';
  return 'passed';
}

/** Whether a cell's failure counts against the run (and triggers fail-fast): continue-on-error spares it. */
export function cellBlocksRun(result: Pick<CellResult, 'outcome' | 'steps' | 'continueOnError'>): boolean {
  if (result.outcome === 'error') return true;
  if (result.outcome !== 'failed' || result.continueOnError) return false;
  return result.steps.some((s) => isFailedStep(s.outcome) && !s.continueOnError);
}

export function runOutcome(cells: CellResult[], interrupted: boolean): RunResult['outcome'] {
  if (interrupted) return 'interrupted';
  if (cells.some((c) => c.outcome === 'error')) return 'error';
  return cells.some(cellBlocksRun) ? 'failed' : 'passed';
}

export function serializeRunResult(result: RunResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}

/** Checks that `data` is an nsmatrix result of this version; `source` names it in the one-line error. */
export function parseRunResult(data: unknown, source: string): RunResult {
  const version = (data as { version?: unknown } | null)?.version;
  if (typeof data === 'object' && data !== null && (data as { tool?: { name?: unknown } }).tool?.name === 'nsmatrix' && version !== RESULT_VERSION) {
    throw new UsageError(`${source}: nsmatrix result version ${JSON.stringify(version)} is not supported (this nsmatrix reads version ${RESULT_VERSION})`);
  }
  const parsed = resultSchemas().run.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new UsageError(`${source}: not an nsmatrix result (${issue?.message ?? 'invalid'}${where})`);
  }
  return data as RunResult;
}

export async function readRunResult(path: string): Promise<RunResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path}: not an nsmatrix result (invalid JSON: ${(error as Error).message})`);
  }
  return parseRunResult(data, path);
}

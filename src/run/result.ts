/**
 * The result model: what happened in a run, in fields rather than thrown errors. Reporters read only this
 * (plus the event stream); the JSON reporter writes it whole and `merge` reads it back.
 */
import type { MatrixValue } from '../matrix/types.js';

export const RESULT_VERSION = 1;

export type StepOutcome =
  | 'passed'
  | 'failed' // non-zero exit, or killed by a signal
  | 'timed-out'
  | 'skipped' // exit 77: skipped by the step itself
  | 'not-run'; // an earlier step failed, the cell was cancelled (fail-fast) or the run interrupted

export type CellOutcome =
  | 'passed'
  | 'failed'
  | 'error' // infrastructure: image or container could not be made
  | 'cancelled' // fail-fast or interrupt before or while it ran
  | 'skipped'; // every step skipped itself

export interface AttemptResult {
  attempt: number; // 1-based
  startedAt: string; // ISO 8601
  durationMs: number;
  exitCode: number | null;
  /** Signal name when the step died by a signal (e.g. "SIGKILL"). */
  signal: string | null;
  timedOut: boolean;
  /** Output path relative to the run's output directory. */
  logPath: string;
  /** The last lines of the output (already decoded, at most ~100 lines). */
  tail: string[];
}

export interface StepResult {
  index: number;
  name: string;
  outcome: StepOutcome;
  /** Why a step was not run or skipped, in words. */
  reason?: string;
  continueOnError: boolean;
  /** Passed after at least one failed attempt. */
  flaky: boolean;
  /** Every attempt in order; the last one decides the outcome. Empty when not run. */
  attempts: AttemptResult[];
}

export interface JournalSummary {
  /** Paths relative to the output directory. */
  dir: string;
  text: string;
  /** Journal lines at priority err or worse. */
  errors: string[];
  coredumps: string[];
}

export interface CellResult {
  id: string;
  /** Position of the cell in the full (unselected) expansion: lets merged shards keep the matrix order. */
  position: number;
  name: string;
  image: string;
  values: Record<string, MatrixValue>;
  outcome: CellOutcome;
  continueOnError: boolean;
  startedAt: string;
  durationMs: number;
  imageKey?: string;
  /** How the cell's root was made copy-on-write: "overlay", "btrfs-snapshot", "volatile", "copy". */
  strategy?: string;
  machine?: string;
  /** Infrastructure failure (image, container start, nspawn error), in words. */
  infrastructureError?: string;
  /** Why the cell was cancelled. */
  cancelReason?: string;
  steps: StepResult[];
  /** Output paths relative to the output directory. */
  outputDir: string;
  artifactsDir: string;
  journal?: JournalSummary;
  /** A command that reruns just this cell. */
  rerun: string;
}

export type RunOutcome = 'passed' | 'failed' | 'error' | 'interrupted';

export interface RunResult {
  version: typeof RESULT_VERSION;
  tool: { name: 'nsmatrix'; version: string };
  matrix: { name: string; file: string; axes: { key: string; values: MatrixValue[] }[]; stepNames: string[] };
  host: { hostname: string; nspawnVersion: string | null; systemdIsPid1: boolean };
  startedAt: string;
  durationMs: number;
  outcome: RunOutcome;
  interrupted: boolean;
  shard?: { index: number; total: number };
  cells: CellResult[];
}

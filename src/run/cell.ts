/**
 * Runs the steps of one cell in its container: attempts and retries, exit 77 as skipped, continue-on-error,
 * timeouts and cancellation. Emits step events; returns the steps' results. The container is opened and closed
 * by the caller.
 */
import { join } from 'node:path';
import type { Cell, CellStep, ResultSpec } from '../matrix/types.js';
import { collectTests, DEFAULT_GATHER_LIMITS, GatherSink, gatherScript, markFlakyTests, readGathered, type GatherLimits } from '../results/index.js';
import type { ArmedExec, Container, ExecRequest, ExecResult } from '../runtime/types.js';
import type { RunEvents } from './events.js';
import { isFailedStep, type AttemptResult, type AttemptTestResults, type StepResult } from './result.js';

export const SKIP_EXIT_STATUS = 77;

export function stepLogName(step: { index: number; name: string }, attempt: number): string {
  const slug = step.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'step';
  const nn = String(step.index + 1).padStart(2, '0');
  return attempt === 1 ? `${nn}-${slug}.log` : `${nn}-${slug}.attempt${attempt}.log`;
}

/** The log of gathering an attempt's result files: `01-test.results.log`, `01-test.attempt2.results.log`. */
export function resultsLogName(step: { index: number; name: string }, attempt: number): string {
  return stepLogName(step, attempt).replace(/\.log$/, '.results.log');
}

/** How long gathering one attempt's result files may take; shorter once the run is being cancelled or interrupted. */
export const GATHER_TIMEOUT_MS = 60_000;
export const GATHER_TIMEOUT_CANCELLED_MS = 10_000;

/**
 * Gathers an attempt's result files inside the container (the host never reads a container path) and parses them.
 * Never throws: a container that is gone, a script that times out or garbage on its output become warnings.
 */
export async function gatherAttemptResults(
  container: Container,
  step: { index: number; name: string },
  specs: ResultSpec[],
  logPath: { absolute: string; relative: string },
  options: { limits?: GatherLimits; cancelled?: boolean } = {},
): Promise<AttemptTestResults> {
  const limits = options.limits ?? DEFAULT_GATHER_LIMITS;
  const timeoutMs = options.cancelled ? GATHER_TIMEOUT_CANCELLED_MS : GATHER_TIMEOUT_MS;
  const { script, token } = gatherScript(specs, limits);
  const sink = new GatherSink(limits);
  let exec: ExecResult;
  try {
    exec = await container.exec({
      index: step.index,
      name: `${step.name} (results)`,
      script,
      env: {},
      // No abort signal: a cancelled step's results are gathered too, within the shorter timeout.
      timeoutMs,
      logPath: logPath.absolute,
      onOutput: (stream, chunk) => {
        if (stream === 'stdout') sink.write(chunk);
      },
    });
  } catch (error) {
    return { tests: [], files: [], warnings: [`result files not gathered: ${(error as Error).message}`], logPath: logPath.relative };
  }
  const gathered = readGathered(sink.bytes(), token, specs, limits, sink.overflowed);
  const collected = collectTests(gathered, specs);
  const warnings = [...collected.warnings];
  if (exec.infrastructureError !== undefined) {
    // One warning says it all: whatever was not printed is missing because the container is gone.
    return { ...collected, warnings: [`result files missing: the container is gone (${exec.infrastructureError})`], logPath: logPath.relative };
  }
  if (exec.timedOut) warnings.unshift(`gathering result files timed out after ${timeoutMs / 1000}s`);
  return { ...collected, warnings, logPath: logPath.relative };
}

/** An attempt's verdict: what the last attempt of a step means for the step. */
export function attemptOutcome(exec: ExecResult): StepResult['outcome'] {
  if (exec.timedOut) return 'timed-out';
  if (exec.exitCode === 0 && exec.signal === null) return 'passed';
  if (exec.exitCode === SKIP_EXIT_STATUS) return 'skipped';
  return 'failed';
}

export function notRun(step: CellStep, reason: string): StepResult {
  return { index: step.index, name: step.name, outcome: 'not-run', reason, continueOnError: step.continueOnError, flaky: false, attempts: [] };
}

export interface CellStepsOutcome {
  steps: StepResult[];
  /** nspawn itself failed: the container could not run a step. */
  infrastructureError?: string;
  /** Set when a cancel or interrupt stopped the cell. */
  cancelled?: string;
}

export interface StepRunContext {
  cell: Cell;
  container: Container;
  /** Absolute output directory of the whole run, and the cell's directory relative to it. */
  outputDir: string;
  cellDir: string;
  env: Record<string, string>;
  events: RunEvents;
  signal: AbortSignal;
  /** The first attempt of the first step, armed ahead (`Container.arm`) with `stepRequest(ctx, step 0, 1)`. */
  armed?: ArmedExec;
}

/** What an attempt of a step asks its container to run. */
export function stepRequest(ctx: Omit<StepRunContext, 'container' | 'armed'>, step: CellStep, attempt: number): ExecRequest {
  const { cell, events } = ctx;
  return {
    index: step.index,
    name: step.name,
    script: step.run,
    env: { ...ctx.env, ...step.env },
    timeoutMs: step.timeoutMs,
    logPath: join(ctx.outputDir, ctx.cellDir, stepLogName(step, attempt)),
    signal: ctx.signal,
    onOutput: (stream, chunk) => events.emit({ type: 'step-output', cell, step: step.index, stream, chunk }),
  };
}

function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : 'cancelled';
}

export async function runCellSteps(ctx: StepRunContext): Promise<CellStepsOutcome> {
  const { cell, container, events, signal } = ctx;
  const results: StepResult[] = [];
  let blockedBy: string | undefined;
  let infrastructureError: string | undefined;
  let cancelled: string | undefined;

  for (const step of cell.steps) {
    if (signal.aborted) {
      cancelled ??= reasonOf(signal);
      results.push(notRun(step, cancelled));
      continue;
    }
    if (blockedBy !== undefined) {
      results.push(notRun(step, blockedBy));
      continue;
    }
    const attempts: AttemptResult[] = [];
    let outcome: StepResult['outcome'] = 'failed';
    let aborted = false;
    for (let attempt = 1; attempt <= step.retries + 1; attempt++) {
      events.emit({ type: 'step-start', cell, step: step.index, name: step.name, attempt });
      const logRel = join(ctx.cellDir, stepLogName(step, attempt));
      const startedAt = new Date();
      const armed = step === cell.steps[0] && attempt === 1 ? ctx.armed : undefined;
      const exec = armed ? await armed.run() : await container.exec(stepRequest(ctx, step, attempt));
      const record: AttemptResult = {
        attempt,
        startedAt: startedAt.toISOString(),
        durationMs: exec.durationMs,
        exitCode: exec.exitCode,
        signal: exec.signal,
        timedOut: exec.timedOut,
        logPath: logRel,
        tail: exec.tail,
      };
      if (step.results && exec.infrastructureError === undefined) {
        // After every attempt that ran (passed, failed, timed out, skipped, stopped), before the container goes.
        const resultsRel = join(ctx.cellDir, resultsLogName(step, attempt));
        const resultsLog = { absolute: join(ctx.outputDir, resultsRel), relative: resultsRel };
        record.results = await gatherAttemptResults(container, step, step.results, resultsLog, { cancelled: signal.aborted });
        markFlakyTests(attempts.map((a) => a.results?.tests).concat([record.results.tests]));
      }
      attempts.push(record);
      if (exec.infrastructureError !== undefined) {
        infrastructureError = exec.infrastructureError;
        events.emit({ type: 'step-attempt-end', cell, step: step.index, attempt: record, willRetry: false });
        break;
      }
      if (signal.aborted) {
        aborted = true;
        events.emit({ type: 'step-attempt-end', cell, step: step.index, attempt: record, willRetry: false });
        break;
      }
      outcome = attemptOutcome(exec);
      const willRetry = isFailedStep(outcome) && attempt <= step.retries;
      events.emit({ type: 'step-attempt-end', cell, step: step.index, attempt: record, willRetry });
      if (!willRetry) break;
    }

    let result: StepResult;
    if (infrastructureError !== undefined) {
      result = { ...notRun(step, `container error: ${infrastructureError}`), attempts };
      blockedBy = 'not run: the container failed';
    } else if (aborted) {
      cancelled = reasonOf(signal);
      result = { ...notRun(step, `stopped: ${cancelled}`), attempts };
    } else {
      const flaky = outcome === 'passed' && attempts.length > 1;
      result = {
        index: step.index,
        name: step.name,
        outcome,
        continueOnError: step.continueOnError,
        flaky,
        attempts,
        ...(outcome === 'skipped' ? { reason: 'skipped by the step (exit status 77)' } : {}),
      };
      if (isFailedStep(outcome) && !step.continueOnError) {
        blockedBy = `not run: step "${step.name}" ${outcome === 'timed-out' ? 'timed out' : 'failed'}`;
      }
    }
    results.push(result);
    events.emit({ type: 'step-end', cell, result });
  }
  return { steps: results, ...(infrastructureError !== undefined ? { infrastructureError } : {}), ...(cancelled !== undefined ? { cancelled } : {}) };
}

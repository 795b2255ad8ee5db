/**
 * The `json` reporter: the whole result model, as is (it carries its `version`), in `results.json`. This is what
 * `nsmatrix merge` reads back, through `readRunResult`, which checks the shape before anything trusts it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../src/errors.js';
import { RESULT_VERSION, type RunResult } from '../src/run/result.js';
import type { Reporter, ReporterContext } from './types.js';
import { writeFileAtomic } from './write-atomic.js';

export const JSON_DEFAULT_FILE = 'results.json';

const matrixValue = z.union([z.string(), z.number(), z.boolean()]);

const attemptSchema = z.looseObject({
  attempt: z.number().int().positive(),
  startedAt: z.string(),
  durationMs: z.number(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  logPath: z.string(),
  tail: z.array(z.string()),
});

const stepSchema = z.looseObject({
  index: z.number().int().nonnegative(),
  name: z.string(),
  outcome: z.enum(['passed', 'failed', 'timed-out', 'skipped', 'not-run']),
  reason: z.string().optional(),
  continueOnError: z.boolean(),
  flaky: z.boolean(),
  attempts: z.array(attemptSchema),
});

const cellSchema = z.looseObject({
  id: z.string().min(1),
  position: z.number().int(),
  name: z.string(),
  image: z.string(),
  values: z.record(z.string(), matrixValue),
  outcome: z.enum(['passed', 'failed', 'error', 'cancelled', 'skipped']),
  continueOnError: z.boolean(),
  startedAt: z.string(),
  durationMs: z.number(),
  imageKey: z.string().optional(),
  strategy: z.string().optional(),
  machine: z.string().optional(),
  infrastructureError: z.string().optional(),
  cancelReason: z.string().optional(),
  steps: z.array(stepSchema),
  outputDir: z.string(),
  artifactsDir: z.string(),
  journal: z
    .looseObject({ dir: z.string(), text: z.string(), errors: z.array(z.string()), coredumps: z.array(z.string()) })
    .optional(),
  rerun: z.string(),
});

const runSchema = z.looseObject({
  version: z.literal(RESULT_VERSION),
  tool: z.looseObject({ name: z.literal('nsmatrix'), version: z.string() }),
  matrix: z.looseObject({
    name: z.string(),
    file: z.string(),
    axes: z.array(z.looseObject({ key: z.string(), values: z.array(matrixValue) })),
    stepNames: z.array(z.string()),
  }),
  host: z.looseObject({ hostname: z.string(), nspawnVersion: z.string().nullable(), systemdIsPid1: z.boolean() }),
  startedAt: z.string(),
  durationMs: z.number(),
  outcome: z.enum(['passed', 'failed', 'error', 'interrupted']),
  interrupted: z.boolean(),
  shard: z.looseObject({ index: z.number().int(), total: z.number().int() }).optional(),
  cells: z.array(cellSchema),
});

export function serializeRunResult(result: RunResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}

/** Checks that `data` is an nsmatrix result of this version; `source` names it in the one-line error. */
export function parseRunResult(data: unknown, source: string): RunResult {
  const version = (data as { version?: unknown } | null)?.version;
  if (typeof data === 'object' && data !== null && (data as { tool?: { name?: unknown } }).tool?.name === 'nsmatrix' && version !== RESULT_VERSION) {
    throw new UsageError(`${source}: nsmatrix result version ${JSON.stringify(version)} is not supported (this nsmatrix reads version ${RESULT_VERSION})`);
  }
  const parsed = runSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new UsageError(`${source}: not an nsmatrix result (${issue?.message ?? 'invalid'}${where})`);
  }
  return parsed.data as RunResult;
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

export function createJsonReporter(): Reporter {
  return {
    name: 'json',
    async onRunEnd(result: RunResult, context: ReporterContext): Promise<string[]> {
      const target = context.target ?? join(context.outputDir, JSON_DEFAULT_FILE);
      await writeFileAtomic(target, serializeRunResult(result));
      return [target];
    },
  };
}

/**
 * Schedules a matrix run: provisions each distinct image once (in parallel, each before its own cells start),
 * runs cells on a p-queue bounded by --jobs and max-parallel, applies fail-fast and interrupts through one abort
 * signal, and turns everything into events and the final RunResult.
 */
import { hostArch } from '../lib/arch.js';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, realpath, rename, rm } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { createExclusive } from '../lib/private-dir.js';
import PQueue from 'p-queue';
import type { Cell, MatrixModel } from '../matrix/types.js';
import type { PackagePool, PackagePoolLease, ProvisionedImage } from '../images/types.js';
import type { Container, ContainerOptions, EphemeralStrategy, HostInfo } from '../runtime/types.js';
import { restoreCache, saveCache, type RestoredCache } from '../caches/paths.js';
import { interpolate } from '../matrix/expressions.js';
import { runCellSteps, notRun } from './cell.js';
import type { RunEvents } from './events.js';
import { RESULT_VERSION, type CellOutcome, type CellResult, type RunResult, type StepResult } from './result.js';
import { rerunCommand } from './rerun.js';

/**
 * A failed build's log tail (InfraError.tail) names the cause, e.g. "Write error (28: No space left on device)",
 * usually above a few generic lines: keep the first error line and the last line, on one line.
 */
function tailSummary(error: unknown): string {
  const tail = (error as { tail?: unknown }).tail;
  if (!Array.isArray(tail)) return '';
  const lines = tail.map(String).map((l) => l.trim()).filter(Boolean);
  const cause = lines.find((l) => /^E:|^error|no space left|read-only file system|permission denied/i.test(l));
  const picked = [...new Set([cause, lines.at(-1)].filter((l): l is string => l !== undefined))];
  return picked.length > 0 ? `: ${picked.join(' | ')}` : '';
}

/** The stages the scheduler drives; the CLI passes the real ones, benchmarks may pass host-process ones. */
export interface RunStages {
  /** `arch`: the cell's architecture (Debian name); absent: the host's. */
  provision(image: string, onProgress: (line: string) => void, arch?: string): Promise<ProvisionedImage>;
  openContainer(options: ContainerOptions): Promise<Container>;
  /** Environment of a cell (MATRIX_*, the matrix env, CI, NSMATRIX_CELL). */
  cellEnvironment(cell: Cell): Record<string, string>;
}

export interface RunOptions {
  model: MatrixModel;
  cells: Cell[];
  /** Position of each cell id in the full expansion (before --filter/--shard). */
  positions: Map<string, number>;
  /** Absolute. */
  outputDir: string;
  /** Absolute: per-run scratch (overlay upper dirs) goes below it; the runtime removes what it creates. */
  scratchDir: string;
  /** The state directory: given, the runtime checks each cell's binds against it and the output directory again. */
  stateDir?: string;
  /** The shared package download cache cells install through (absent: `cache-packages: false`, or none at all). */
  packagePool?: PackagePool;
  /** Matrix file path as the user wrote it, for rerun commands. */
  fileArg: string;
  /** The command that reruns one cell (the CLI's, with its options); default: `nsmatrix run FILE` and its filter. */
  rerun?: (cell: Cell) => string;
  jobs: number;
  failFast: boolean;
  strategy?: EphemeralStrategy;
  noSeccomp?: boolean;
  shard?: { index: number; total: number };
  host: HostInfo;
  toolVersion: string;
  events: RunEvents;
  /** Aborted with a reason string on SIGINT/SIGTERM. */
  signal: AbortSignal;
  stages: RunStages;
  /** Called with the container of a cell whose steps failed, before it is thrown away (--shell-on-failure). */
  onCellFailed?: (cell: Cell, container: Container) => Promise<void>;
}

const INTERRUPTED = 'interrupted';

/**
 * Written (exclusive create) into every cell directory nsmatrix makes: only a directory carrying it is ever
 * replaced by a later run, so a user's own directory that happens to have a cell's name is never deleted.
 */
export const CELL_MARKER = '.nsmatrix-cell';

/** Why `<outputDir>/<cellId>` cannot be (re)made by this run, or undefined. Does not follow symlinks. */
export function cellDirProblem(outputDir: string, cellId: string): string | undefined {
  const dir = join(outputDir, cellId);
  let st;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    return `cannot use ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
  if (!st) return undefined;
  if (!st.isDirectory()) return `${dir} exists and is not a directory nsmatrix made: refusing to replace it (move it away or choose another --output)`;
  if (!lstatSync(join(dir, CELL_MARKER), { throwIfNoEntry: false })?.isFile()) {
    return `${dir} exists and was not made by nsmatrix (no ${CELL_MARKER} in it): refusing to replace it (move it away or choose another --output)`;
  }
  return undefined;
}

/**
 * Hidden names a cell directory has while it is made or removed (`.<cell>.<random>.new|old`): the directory under
 * its own name always carries its marker, so a run killed at any moment leaves nothing a later run must refuse.
 * Leftovers under these names are nsmatrix's; the next run into the output directory removes them (output-lock.ts).
 */
export const CELL_DIR_TEMP = /^\.[^/]+\.[0-9a-f]{12}\.(new|old)$/;

/**
 * A fresh cell directory with its marker and `artifacts/`: an earlier run's directory (marked) is moved aside and
 * removed, without following any symlink a step left in it (fs.rm lstat()s every entry and unlinks symlinks); the
 * new one is made under a hidden name and renamed into place. Throws when the directory is not nsmatrix's or the
 * artifacts directory is not where it must be.
 */
async function prepareCellDir(outputDir: string, cellId: string): Promise<void> {
  const dir = join(outputDir, cellId);
  const problem = cellDirProblem(outputDir, cellId);
  if (problem) throw new Error(problem);
  const temp = (kind: 'new' | 'old') => join(outputDir, `.${cellId}.${randomBytes(6).toString('hex')}.${kind}`);
  // A rerun into the same output directory replaces this cell's old logs instead of mixing with them.
  if (await lstat(dir).then(() => true, () => false)) {
    const old = temp('old');
    await rename(dir, old);
    await rm(old, { recursive: true, force: true });
  }
  const fresh = temp('new');
  await mkdir(fresh); // not recursive: outputDir exists, and EEXIST here means someone raced us
  if (!createExclusive(join(fresh, CELL_MARKER))) throw new Error(`${fresh}: ${CELL_MARKER} appeared while the directory was being made`);
  await mkdir(join(fresh, 'artifacts'));
  // rename(2) onto a name that exists would replace an empty directory: someone else made one meanwhile.
  if (await lstat(dir).then(() => true, () => false)) throw new Error(`${dir} appeared while this run was making it`);
  await rename(fresh, dir);
  const artifacts = join(dir, 'artifacts');
  // The artifacts directory is bound read-write into the container: it must be exactly this new directory.
  if ((await realpath(artifacts)) !== artifacts) throw new Error(`${artifacts} is not a plain directory under the output directory`);
}

export function cellOutcome(steps: StepResult[], extra: { infrastructureError?: string; cancelled?: string }): CellOutcome {
  if (extra.infrastructureError !== undefined) return 'error';
  if (steps.some((s) => s.outcome === 'failed' || s.outcome === 'timed-out')) return 'failed';
  if (extra.cancelled !== undefined) return 'cancelled';
  if (steps.length > 0 && steps.every((s) => s.outcome === 'skipped')) return 'skipped';
  return 'passed';
}

/** Whether a cell's failure counts against the run (and triggers fail-fast): continue-on-error spares it. */
export function cellBlocksRun(result: CellResult): boolean {
  if (result.outcome === 'error') return true;
  if (result.outcome !== 'failed' || result.continueOnError) return false;
  return result.steps.some((s) => (s.outcome === 'failed' || s.outcome === 'timed-out') && !s.continueOnError);
}

export function runOutcome(cells: CellResult[], interrupted: boolean): RunResult['outcome'] {
  if (interrupted) return 'interrupted';
  if (cells.some((c) => c.outcome === 'error')) return 'error';
  return cells.some(cellBlocksRun) ? 'failed' : 'passed';
}

/** An image as provisioned for a cell: its name, and its architecture when that is not the host's. */
function imageLabel(cell: Cell): string {
  return cell.arch === undefined || cell.arch === hostArch() ? cell.image : `${cell.image} (${cell.arch})`;
}

export async function runMatrix(options: RunOptions): Promise<RunResult> {
  const { model, cells, events, stages } = options;
  const startedAt = new Date();
  const failFast = new AbortController();
  const runSignal = AbortSignal.any([options.signal, failFast.signal]);

  events.emit({ type: 'run-start', matrixName: model.name, file: model.file, cells, outputDir: options.outputDir, startedAt: startedAt.toISOString() });

  // One provisioning per distinct image and architecture, started at once; cells await their own image only.
  const images = new Map<string, Promise<ProvisionedImage>>();
  for (const cell of cells) {
    const label = imageLabel(cell);
    if (images.has(label)) continue;
    const started = Date.now();
    events.emit({ type: 'image-start', image: label });
    const promise = stages.provision(cell.image, (line) => events.emit({ type: 'image-progress', image: label, line }), cell.arch);
    promise.then(
      (image) => events.emit({ type: 'image-end', image: label, key: image.key, cached: image.cached, durationMs: Date.now() - started }),
      (error: unknown) => {
        const e = error as { message?: string; logPath?: string };
        events.emit({
          type: 'image-end',
          image: label,
          cached: false,
          durationMs: Date.now() - started,
          error: e?.message ?? String(error),
          ...(e?.logPath ? { logPath: e.logPath } : {}),
        });
      },
    );
    images.set(label, promise);
  }

  const concurrency = Math.max(1, Math.min(options.jobs, model.maxParallel ?? Number.POSITIVE_INFINITY));
  const queue = new PQueue({ concurrency });
  const results = new Map<string, CellResult>();

  const runOne = async (cell: Cell): Promise<void> => {
    const startedAt = new Date();
    let result: CellResult;
    try {
      result = await runCell(cell, images.get(imageLabel(cell))!, runSignal, options);
    } catch (error) {
      // An exception in one cell (a stage that throws, a file system error) is that cell's error, never the
      // end of the run: the other cells go on and the reports are written.
      const message = `internal error in this cell: ${(error as Error)?.message ?? String(error)}`;
      result = cellResultOf(cell, options, startedAt)({ outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: the cell failed')) });
    }
    results.set(cell.id, result);
    events.emit({ type: 'cell-end', cell, result });
    if (options.failFast && cellBlocksRun(result) && !failFast.signal.aborted) {
      failFast.abort(`cancelled by fail-fast: cell "${cell.name}" failed`);
    }
  };
  await Promise.all(cells.map((cell) => queue.add(() => runOne(cell))));
  // A failed provisioning nobody awaited any more must not become an unhandled rejection.
  await Promise.allSettled(images.values());

  const ordered = cells.map((c) => results.get(c.id)!);
  const interrupted = options.signal.aborted;
  const result: RunResult = {
    version: RESULT_VERSION,
    tool: { name: 'nsmatrix', version: options.toolVersion },
    matrix: { name: model.name, file: model.file, axes: model.axes.map((a) => ({ key: a.key, values: a.values })), stepNames: model.steps.map((s) => s.name) },
    host: { hostname: options.host.hostname, nspawnVersion: options.host.nspawnVersionText, systemdIsPid1: options.host.systemdIsPid1 },
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    outcome: runOutcome(ordered, interrupted),
    interrupted,
    ...(options.shard ? { shard: options.shard } : {}),
    cells: ordered,
  };
  events.emit({ type: 'run-end', result });
  return result;
}

/** What a cell's outcome sets (named, not Partial<CellResult>: the result objects are loose, with an index signature). */
type CellOutcomeFields = Pick<CellResult, 'outcome' | 'steps'> &
  Partial<Pick<CellResult, 'imageKey' | 'strategy' | 'machine' | 'infrastructureError' | 'cancelReason' | 'journal'>>;

/** A cell's result from the fields its outcome sets; the rest (identity, paths, timing) is the same for every outcome. */
function cellResultOf(cell: Cell, options: RunOptions, startedAt: Date) {
  const base = {
    id: cell.id,
    position: options.positions.get(cell.id) ?? -1,
    name: cell.name,
    image: cell.image,
    values: cell.values,
    continueOnError: cell.continueOnError,
    startedAt: startedAt.toISOString(),
    outputDir: cell.id,
    artifactsDir: join(cell.id, 'artifacts'),
    rerun: options.rerun ? options.rerun(cell) : rerunCommand(options.fileArg, cell),
  } satisfies Partial<CellResult>;
  return (fields: CellOutcomeFields): CellResult => ({
    ...base,
    ...fields,
    durationMs: Date.now() - startedAt.getTime(),
  });
}

/** The cell's `cache:` entries, matrix-wide then per step, one per container path (the first wins). */
export function cacheSpecsOf(model: MatrixModel, cell: Cell, imageKey: string): { key: string; path: string; step?: number }[] {
  const seen = new Set<string>();
  const specs: { key: string; path: string; step?: number }[] = [];
  const add = (spec: { path: string; key?: string }, step?: number) => {
    const path = spec.path.replace(/\/+$/, '');
    if (seen.has(path)) return;
    seen.add(path);
    specs.push({ key: spec.key !== undefined ? `key:${interpolate(spec.key, cell.values)}` : `image:${imageKey}`, path, ...(step !== undefined ? { step } : {}) });
  };
  for (const spec of model.cache ?? []) add(spec);
  model.steps.forEach((step, index) => (step.cache ?? []).forEach((spec) => add(spec, index)));
  return specs;
}

async function runCell(cell: Cell, imagePromise: Promise<ProvisionedImage>, signal: AbortSignal, options: RunOptions): Promise<CellResult> {
  const cellDir = cell.id;
  const finish = cellResultOf(cell, options, new Date());

  if (signal.aborted) {
    const reason = reasonText(signal);
    return finish({ outcome: 'cancelled', cancelReason: reason, steps: cell.steps.map((s) => notRun(s, reason)) });
  }
  options.events.emit({ type: 'cell-start', cell });

  const absCellDir = join(options.outputDir, cellDir);
  try {
    await prepareCellDir(options.outputDir, cellDir);
  } catch (error) {
    const message = `cannot make the cell's output directory: ${(error as Error).message}`;
    return finish({ outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no output directory')) });
  }

  let image: ProvisionedImage;
  try {
    image = await raceAbort(imagePromise, signal);
  } catch (error) {
    if (signal.aborted) {
      const reason = reasonText(signal);
      return finish({ outcome: 'cancelled', cancelReason: reason, steps: cell.steps.map((s) => notRun(s, reason)) });
    }
    const message = `image ${cell.image} could not be provisioned: ${(error as Error).message}${tailSummary(error)}`;
    return finish({ outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no image')) });
  }

  // The shared package download cache (caches/packages.ts): an overlay per cell over the release's pool. Not with
  // private users: overlayfs cannot be idmapped.
  let packageCache: PackagePoolLease | undefined;
  if (options.packagePool && !options.model.privateUsers) {
    packageCache = await options.packagePool.open(image.root, join(options.scratchDir, `pkgcache-${cell.id}`)).catch(() => undefined);
  }

  // `cache:` directories (caches/paths.ts): each a copy of the published version, bound read-write.
  const caches: { restored: RestoredCache; step?: number }[] = [];
  const cacheWork = join(options.scratchDir, `cache-${cell.id}`);
  if (options.stateDir) {
    try {
      for (const wanted of cacheSpecsOf(options.model, cell, image.key)) {
        const restored = await restoreCache(options.stateDir, { ...wanted, image: cell.image }, join(cacheWork, String(caches.length)), signal);
        caches.push({ restored, ...(wanted.step !== undefined ? { step: wanted.step } : {}) });
      }
    } catch (error) {
      if (packageCache) await packageCache.release().catch(() => undefined);
      await rm(cacheWork, { recursive: true, force: true });
      if (signal.aborted) {
        const reason = reasonText(signal);
        return finish({ outcome: 'cancelled', cancelReason: reason, steps: cell.steps.map((s) => notRun(s, reason)) });
      }
      const message = `cache could not be restored: ${(error as Error).message}`;
      return finish({ outcome: 'error', imageKey: image.key, infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no cache')) });
    }
  }

  let container: Container;
  try {
    container = await options.stages.openContainer({
      cellId: cell.id,
      root: image.root,
      cellOutputDir: absCellDir,
      scratchDir: options.scratchDir,
      sourceDir: options.model.dir,
      sourceMode: options.model.source,
      network: options.model.network,
      privateUsers: options.model.privateUsers,
      boot: options.model.boot,
      binds: options.model.bind,
      // nsmatrix's own mounts: the package cache's overlay and each `cache:` directory's copy, bound read-write.
      mounts: [
        ...(packageCache ? [packageCache.mount] : []),
        ...caches.map(({ restored }) => ({ type: 'bind' as const, host: restored.data, container: restored.path })),
      ],
      ...(cell.arch !== undefined ? { arch: cell.arch } : {}),
      ...(options.stateDir ? { stateDir: options.stateDir, outputDir: options.outputDir } : {}),
      // After nsmatrix's own options: the matrix author's nspawn: options win.
      nspawnExtra: options.model.nspawn,
      env: options.stages.cellEnvironment(cell),
      ...(options.strategy ? { strategy: options.strategy } : {}),
      ...(options.noSeccomp ? { noSeccomp: true } : {}),
    });
  } catch (error) {
    if (packageCache) await packageCache.release().catch(() => undefined);
    await rm(cacheWork, { recursive: true, force: true });
    const message = `container could not start: ${(error as Error).message}`;
    return finish({ outcome: 'error', imageKey: image.key, infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no container')) });
  }

  let outcome: Awaited<ReturnType<typeof runCellSteps>>;
  let journal: CellResult['journal'];
  let closeError: string | undefined;
  try {
    outcome = await runCellSteps({
      cell,
      container,
      outputDir: options.outputDir,
      cellDir,
      env: options.stages.cellEnvironment(cell),
      events: options.events,
      signal,
    });
    const failed = outcome.steps.some((s) => s.outcome === 'failed' || s.outcome === 'timed-out');
    if (failed && options.onCellFailed && !signal.aborted) await options.onCellFailed(cell, container);
  } finally {
    try {
      ({ journal } = await container.close());
    } catch (error) {
      closeError = `container cleanup failed: ${(error as Error).message}`;
    }
    if (packageCache) {
      // The container has stopped: what it downloaded and the image's index vouches for joins the pool.
      if (closeError === undefined && !options.signal.aborted) await packageCache.harvest().catch(() => undefined);
      await packageCache.release().catch(() => undefined);
    }
  }
  const infrastructureError = outcome.infrastructureError ?? closeError;
  if (caches.length > 0) {
    // Saved when the cell ran to its end (a step's own cache: when that step ran); never after an interrupt.
    const complete = infrastructureError === undefined && outcome.cancelled === undefined && !signal.aborted;
    for (const { restored, step } of caches) {
      const ran = step === undefined ? complete : !signal.aborted && (outcome.steps[step]?.attempts.length ?? 0) > 0;
      if (ran && closeError === undefined) await saveCache(options.stateDir!, restored).catch(() => undefined);
    }
    await rm(cacheWork, { recursive: true, force: true });
  }
  return finish({
    outcome: cellOutcome(outcome.steps, { ...outcome, ...(infrastructureError !== undefined ? { infrastructureError } : {}) }),
    imageKey: image.key,
    strategy: container.strategy,
    machine: container.machine,
    steps: outcome.steps,
    ...(infrastructureError !== undefined ? { infrastructureError } : {}),
    ...(outcome.cancelled !== undefined ? { cancelReason: outcome.cancelled } : {}),
    ...(journal ? { journal } : {}),
  });
}

function reasonText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason.message;
  return INTERRUPTED;
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error(reasonText(signal)));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(reasonText(signal)));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * A cell's life in three phases, so that the scheduler can overlap them between cells:
 * - prepare: the output directory, the image, the package cache's upper directory, `cache:` copies, the container's
 *   scratch (no container process yet, except a booted one);
 * - execute: the steps, the only phase that runs containers (what --jobs bounds);
 * - finish: close the container, harvest and release what prepare made, save `cache:` directories.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { restoreCache, saveCache, type RestoredCache } from '../caches/paths.js';
import type { PackagePoolLease, ProvisionedImage } from '../images/types.js';
import { interpolate } from '../matrix/expressions.js';
import type { Cell, MatrixModel } from '../matrix/types.js';
import type { ArmedExec, Container } from '../runtime/types.js';
import { prepareCellDir } from './cell-dir.js';
import { notRun, runCellSteps, stepRequest, type CellStepsOutcome, type StepRunContext } from './cell.js';
import type { RunOptions } from './options.js';
import { cellOutcome, isFailedStep, type CellResult } from './result.js';
import { rerunCommand } from './rerun.js';

const INTERRUPTED = 'interrupted';

/** What a cell's outcome sets (named, not Partial<CellResult>: the result objects are loose, with an index signature). */
export type CellOutcomeFields = Pick<CellResult, 'outcome' | 'steps'> &
  Partial<Pick<CellResult, 'imageKey' | 'strategy' | 'machine' | 'infrastructureError' | 'cancelReason' | 'journal'>>;

/** A cell's result from the fields its outcome sets; the rest (identity, paths, timing) is the same for every outcome. */
export function cellResultOf(cell: Cell, options: Pick<RunOptions, 'positions' | 'rerun' | 'fileArg'>, startedAt: Date) {
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

/** Whether the matrix declares any `cache:` directory (then each cell restores what the one before it saved). */
export function usesCaches(model: MatrixModel): boolean {
  return (model.cache?.length ?? 0) > 0 || model.steps.some((step) => (step.cache?.length ?? 0) > 0);
}

export function reasonText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason.message;
  return INTERRUPTED;
}

/** A cell stopped before any of its steps ran. */
export function cancelledFields(cell: Cell, signal: AbortSignal): CellOutcomeFields {
  const reason = reasonText(signal);
  return { outcome: 'cancelled', cancelReason: reason, steps: cell.steps.map((s) => notRun(s, reason)) };
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

/** Everything a prepared cell holds until `finishCell` releases it. */
export interface PreparedCell {
  cell: Cell;
  image: ProvisionedImage;
  container: Container;
  packageCache?: PackagePoolLease;
  caches: { restored: RestoredCache; step?: number }[];
  cacheWork: string;
  /** Set once the package cache was harvested (the scheduler may do it before the container is closed). */
  harvested: boolean;
  /** The first step, armed ahead (absent: it starts when its turn comes). */
  armed?: ArmedExec;
}

/** A cell ready to run, or its end: cancelled, or an error before any step ran (nothing is left to release). */
export type Preparation = { ready: PreparedCell } | { ended: CellOutcomeFields };

function stepContext(cell: Cell, signal: AbortSignal, options: RunOptions): Omit<StepRunContext, 'container' | 'armed'> {
  return { cell, outputDir: options.outputDir, cellDir: cell.id, env: options.stages.cellEnvironment(cell), events: options.events, signal };
}

/** `arm`: also make the first step ready to start (Container.arm), for a cell prepared while another runs. */
export async function prepareCell(cell: Cell, imagePromise: Promise<ProvisionedImage>, signal: AbortSignal, options: RunOptions, arm = false): Promise<Preparation> {
  if (signal.aborted) return { ended: cancelledFields(cell, signal) };
  const absCellDir = join(options.outputDir, cell.id);
  try {
    await prepareCellDir(options.outputDir, cell.id);
  } catch (error) {
    const message = `cannot make the cell's output directory: ${(error as Error).message}`;
    return { ended: { outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no output directory')) } };
  }

  let image: ProvisionedImage;
  try {
    image = await raceAbort(imagePromise, signal);
  } catch (error) {
    if (signal.aborted) return { ended: cancelledFields(cell, signal) };
    const message = `image ${cell.image} could not be provisioned: ${(error as Error).message}${tailSummary(error)}`;
    return { ended: { outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no image')) } };
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
      if (signal.aborted) return { ended: cancelledFields(cell, signal) };
      const message = `cache could not be restored: ${(error as Error).message}`;
      return { ended: { outcome: 'error', imageKey: image.key, infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no cache')) } };
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
    return { ended: { outcome: 'error', imageKey: image.key, infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: no container')) } };
  }
  let armed: ArmedExec | undefined;
  const first = cell.steps[0];
  if (arm && container.arm && first) {
    // Not armed, the step starts the usual way when its turn comes, and whatever failed here is reported then.
    armed = await container.arm(stepRequest(stepContext(cell, signal, options), first, 1)).catch(() => undefined);
  }
  return { ready: { cell, image, container, ...(packageCache ? { packageCache } : {}), caches, cacheWork, harvested: false, ...(armed ? { armed } : {}) } };
}

/** The steps, and the failure shell (--shell-on-failure) while the failed container is still there. */
export async function executeCell(prepared: PreparedCell, signal: AbortSignal, options: RunOptions): Promise<CellStepsOutcome> {
  const { cell, container } = prepared;
  const outcome = await runCellSteps({ ...stepContext(cell, signal, options), container, ...(prepared.armed ? { armed: prepared.armed } : {}) });
  const failed = outcome.steps.some((s) => isFailedStep(s.outcome));
  if (failed && options.onCellFailed && !signal.aborted) await options.onCellFailed(cell, container);
  return outcome;
}

/**
 * Adds to the package pool what the container downloaded and the image's index vouches for. Only once no process of
 * the container runs any more: after `close()`, or after the last step of a container that is not booted (each of
 * its steps is a container of its own, gone with its nspawn).
 */
export async function harvestCell(prepared: PreparedCell, options: RunOptions): Promise<void> {
  if (prepared.harvested) return;
  prepared.harvested = true;
  if (prepared.packageCache && !options.signal.aborted) await prepared.packageCache.harvest().catch(() => undefined);
}

/** Closes the container of a cell whose steps never ran or threw, and releases what `prepareCell` made. */
export async function discardCell(prepared: PreparedCell): Promise<void> {
  try {
    await prepared.container.close();
  } finally {
    await prepared.packageCache?.release().catch(() => undefined);
    if (prepared.caches.length > 0) await rm(prepared.cacheWork, { recursive: true, force: true });
  }
}

/**
 * Closes the container and releases everything `prepareCell` made; saves the `cache:` directories of a cell that
 * ran to its end. Returns the cell's outcome.
 */
export async function finishCell(prepared: PreparedCell, outcome: CellStepsOutcome, signal: AbortSignal, options: RunOptions): Promise<CellOutcomeFields> {
  const { container, packageCache, caches } = prepared;
  let journal: CellResult['journal'];
  let closeError: string | undefined;
  try {
    ({ journal } = await container.close());
  } catch (error) {
    closeError = `container cleanup failed: ${(error as Error).message}`;
  }
  if (packageCache) {
    if (closeError === undefined) await harvestCell(prepared, options);
    await packageCache.release().catch(() => undefined);
  }
  const infrastructureError = outcome.infrastructureError ?? closeError;
  if (caches.length > 0) {
    // Saved when the cell ran to its end (a step's own cache: when that step ran); never after an interrupt.
    const complete = infrastructureError === undefined && outcome.cancelled === undefined && !signal.aborted;
    for (const { restored, step } of caches) {
      const ran = step === undefined ? complete : !signal.aborted && (outcome.steps[step]?.attempts.length ?? 0) > 0;
      if (ran && closeError === undefined) await saveCache(options.stateDir!, restored).catch(() => undefined);
    }
    await rm(prepared.cacheWork, { recursive: true, force: true });
  }
  return {
    outcome: cellOutcome(outcome.steps, { ...outcome, ...(infrastructureError !== undefined ? { infrastructureError } : {}) }),
    imageKey: prepared.image.key,
    strategy: container.strategy,
    machine: container.machine,
    steps: outcome.steps,
    ...(infrastructureError !== undefined ? { infrastructureError } : {}),
    ...(outcome.cancelled !== undefined ? { cancelReason: outcome.cancelled } : {}),
    ...(journal ? { journal } : {}),
  };
}

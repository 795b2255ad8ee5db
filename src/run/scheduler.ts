/**
 * Schedules a matrix run: provisions each distinct image once (in parallel, each before its own cells start),
 * runs cells on a p-queue bounded by --jobs and max-parallel, applies fail-fast and interrupts through one abort
 * signal, and turns everything into events and the final RunResult.
 *
 * While a cell's steps run, the next cells are prepared (output directory, scratch, the container's files) and the
 * cells before it are closed: only the steps hold one of the --jobs slots (lifecycle.ts). Matrices whose cells
 * hand state on to the next (`cache:` directories) or boot run each cell whole inside its slot.
 */
import PQueue from 'p-queue';
import { hostArch } from '../lib/arch.js';
import type { ProvisionedImage } from '../images/types.js';
import type { Cell } from '../matrix/types.js';
import type { CellStepsOutcome } from './cell.js';
import { notRun } from './cell.js';
import {
  cancelledFields,
  cellResultOf,
  discardCell,
  executeCell,
  finishCell,
  harvestCell,
  prepareCell,
  usesCaches,
  type CellOutcomeFields,
  type Preparation,
} from './lifecycle.js';
import type { RunOptions } from './options.js';
import { cellBlocksRun, cellOutcome, RESULT_VERSION, runOutcome, type CellResult, type RunResult } from './result.js';

export type { RunOptions, RunStages } from './options.js';

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
  // The slots steps run in, and the cells being prepared or prepared and waiting for one (as many as slots).
  const slots = new PQueue({ concurrency });
  const ahead = new PQueue({ concurrency });
  const overlapped = !model.boot && !usesCaches(model);
  const results = new Map<string, CellResult>();

  const failFastOn = (cell: Cell, fields: CellOutcomeFields) => {
    if (options.failFast && !failFast.signal.aborted && cellBlocksRun({ ...fields, continueOnError: cell.continueOnError })) {
      failFast.abort(`cancelled by fail-fast: cell "${cell.name}" failed`);
    }
  };

  /** The whole cell inside one slot. */
  const runWhole = async (cell: Cell): Promise<CellResult> => {
    const finish = cellResultOf(cell, options, new Date());
    if (runSignal.aborted) return finish(cancelledFields(cell, runSignal));
    events.emit({ type: 'cell-start', cell });
    const preparation = await prepareCell(cell, images.get(imageLabel(cell))!, runSignal, options);
    if ('ended' in preparation) return finish(preparation.ended);
    let outcome: CellStepsOutcome;
    try {
      outcome = await executeCell(preparation.ready, runSignal, options);
    } catch (error) {
      await discardCell(preparation.ready);
      throw error;
    }
    return finish(await finishCell(preparation.ready, outcome, runSignal, options));
  };

  /** Prepared while earlier cells run; only the steps hold a slot; closed while later cells run. */
  const runOverlapped = async (cell: Cell): Promise<CellResult> => {
    const preparedAt = new Date();
    let slotTaken!: () => void;
    const taken = new Promise<void>((resolve) => (slotTaken = resolve));
    const preparation = await new Promise<Preparation>((resolve, reject) => {
      void ahead.add(async () => {
        try {
          resolve(await prepareCell(cell, images.get(imageLabel(cell))!, runSignal, options, true));
        } catch (error) {
          reject(error as Error);
          return;
        }
        await taken;
      });
    });
    if ('ended' in preparation) {
      slotTaken();
      if (preparation.ended.outcome !== 'cancelled') events.emit({ type: 'cell-start', cell });
      return cellResultOf(cell, options, preparedAt)(preparation.ended);
    }
    const prepared = preparation.ready;
    let finish: ((fields: CellOutcomeFields) => CellResult) | undefined;
    let outcome: CellStepsOutcome | undefined;
    try {
      outcome = await slots.add(async () => {
        slotTaken();
        if (runSignal.aborted) return undefined;
        finish = cellResultOf(cell, options, new Date());
        events.emit({ type: 'cell-start', cell });
        const executed = await executeCell(prepared, runSignal, options);
        await harvestCell(prepared, options);
        // Decided before the slot goes to the next cell, as when each cell runs whole.
        failFastOn(cell, { outcome: cellOutcome(executed.steps, executed), steps: executed.steps });
        return executed;
      });
    } catch (error) {
      await discardCell(prepared);
      throw error;
    }
    if (!outcome || !finish) {
      await discardCell(prepared);
      return cellResultOf(cell, options, new Date())(cancelledFields(cell, runSignal));
    }
    return finish(await finishCell(prepared, outcome, runSignal, options));
  };

  const runOne = async (cell: Cell): Promise<void> => {
    const startedAt = new Date();
    let result: CellResult;
    try {
      result = overlapped ? await runOverlapped(cell) : await slots.add(() => runWhole(cell));
    } catch (error) {
      // An exception in one cell (a stage that throws, a file system error) is that cell's error, never the
      // end of the run: the other cells go on and the reports are written.
      const message = `internal error in this cell: ${(error as Error)?.message ?? String(error)}`;
      result = cellResultOf(cell, options, startedAt)({ outcome: 'error', infrastructureError: message, steps: cell.steps.map((s) => notRun(s, 'not run: the cell failed')) });
    }
    results.set(cell.id, result);
    events.emit({ type: 'cell-end', cell, result });
    failFastOn(cell, result);
  };
  await Promise.all(cells.map((cell) => runOne(cell)));
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

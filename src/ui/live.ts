/**
 * The live terminal view: a listr2 task per image and per cell with its current step and elapsed time. It only
 * listens to run events; each task settles when its cell-end (or image-end) event arrives. Failure details and the
 * summary are printed after the renderer has released the terminal (see `finish`).
 */
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { Cell } from '../matrix/types.js';
import type { RunEvent } from '../run/events.js';
import { isFailedCell, type CellResult, type RunResult } from '../run/result.js';
import { formatDuration } from '../lib/duration.js';
import { printable, terminalSafe, type Palette } from './colors.js';
import { failureDetails, summaryTable, totals } from './summary.js';

interface Pending {
  settle: (error?: Error) => void;
  task?: ListrTaskWrapper<unknown, never, never>;
  label: string;
  step?: string;
  startedAt?: number;
}

export interface LiveView {
  listener: (event: RunEvent) => void;
  /** Waits for the renderer to stop, then prints failures and the summary. */
  finish(result: RunResult): Promise<void>;
}

export function createLiveView(options: { write: (text: string) => void; colors: Palette }): LiveView {
  const pending = new Map<string, Pending>();
  let outputDir = '';
  let rendering: Promise<unknown> = Promise.resolve();
  let ticker: NodeJS.Timeout | undefined;

  const title = (p: Pending) => {
    const elapsed = p.startedAt ? ` ${formatDuration(Date.now() - p.startedAt)}` : '';
    return `${p.label}${p.step ? ` — ${p.step}` : ''}${elapsed}`;
  };
  const refresh = (p: Pending | undefined) => {
    if (p?.task) p.task.title = title(p);
  };
  const waitFor = (key: string, label: string) => ({
    title: label,
    task: (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>) =>
      new Promise<void>((resolve, reject) => {
        const entry: Pending = pending.get(key) ?? { label, settle: () => undefined };
        entry.task = task;
        entry.settle = (error) => (error ? reject(error) : resolve());
        pending.set(key, entry);
      }),
  });

  const start = (images: string[], cells: Cell[]) => {
    // Labels are what the user named: printable, like every other string a task title or error shows.
    const tasks = [
      ...images.map((image) => waitFor(`image:${image}`, `image ${printable(image)}`)),
      ...cells.map((cell) => waitFor(`cell:${cell.id}`, printable(cell.name))),
    ];
    const list = new Listr(tasks as never, { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false } as never });
    rendering = list.run().catch(() => undefined);
    ticker = setInterval(() => pending.forEach(refresh), 1000);
    ticker.unref();
  };

  const cellEnd = (cell: Cell, result: CellResult) => {
    const p = pending.get(`cell:${cell.id}`);
    if (!p) return;
    p.step = undefined;
    refresh(p);
    if (p.task) p.task.title = `${p.label} — ${result.outcome} ${formatDuration(result.durationMs)}`;
    if (result.outcome === 'passed' || result.outcome === 'skipped') p.settle();
    else if (result.outcome === 'cancelled') {
      p.task?.skip(`${p.label} — cancelled`);
      p.settle();
    } else p.settle(new Error(`${p.label}: ${result.outcome}`));
  };

  return {
    listener(event) {
      switch (event.type) {
        case 'run-start': {
          outputDir = event.outputDir;
          start([...new Set(event.cells.map((c) => c.image))], event.cells);
          break;
        }
        case 'image-start': {
          const p = pending.get(`image:${event.image}`);
          if (p) {
            p.startedAt = Date.now();
            refresh(p);
          }
          break;
        }
        case 'image-progress': {
          const p = pending.get(`image:${event.image}`);
          if (p?.task) p.task.output = printable(terminalSafe(event.line)).slice(0, 200);
          break;
        }
        case 'image-end': {
          const p = pending.get(`image:${event.image}`);
          if (!p) break;
          if (p.task) p.task.title = `${p.label} — ${event.error ? 'failed' : event.cached ? 'cached' : `built ${formatDuration(event.durationMs)}`}`;
          p.settle(event.error ? new Error(terminalSafe(event.error)) : undefined);
          break;
        }
        case 'cell-start': {
          const p = pending.get(`cell:${event.cell.id}`);
          if (p) p.startedAt = Date.now();
          refresh(p);
          break;
        }
        case 'step-start': {
          const p = pending.get(`cell:${event.cell.id}`);
          if (p) p.step = `${printable(event.name)}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`;
          refresh(p);
          break;
        }
        case 'cell-end':
          cellEnd(event.cell, event.result);
          break;
        default:
          break;
      }
    },
    async finish(result) {
      // Anything never settled (e.g. an image nobody awaited after an interrupt) must not keep the renderer alive.
      for (const p of pending.values()) p.settle();
      await rendering;
      if (ticker) clearInterval(ticker);
      for (const cell of result.cells) {
        if (isFailedCell(cell.outcome)) options.write(`${failureDetails(cell, outputDir, options.colors)}\n`);
      }
      options.write(`\n${summaryTable(result, options.colors)}\n\n${totals(result)}\n`);
    },
  };
}

/**
 * The live terminal view: one row per image and per cell, redrawn in place, and an "N of M cells done" line.
 * It only listens to run events and keeps its own state, so what a row shows is what happened:
 * - an image row stops at once when its image is ready ("cached", "built 1m2s", "failed");
 * - a queued cell looks queued (no spinner) until its cell-start; a running cell shows its step and elapsed time;
 * - a finished cell keeps its outcome and time, frozen;
 * - each failure's details (log tail, rerun command) are printed once, after the view has released the terminal.
 *
 * It draws with two ANSI sequences only (cursor up, erase below), installs no signal handler (the `run` command
 * owns SIGINT/SIGTERM, writes the reports and cleans up), and restores the cursor however the process ends.
 * Every user-controlled string goes through `printable`, build output through `terminalSafe`.
 */
import type { Cell } from '../matrix/types.js';
import type { RunEvent } from '../run/events.js';
import { isFailedCell, type CellResult, type RunResult } from '../run/result.js';
import { formatDuration } from '../lib/duration.js';
import { printable, terminalSafe, type Palette } from './colors.js';
import { failureDetails, plural, summaryTable, totals } from './summary.js';

type RowState = 'queued' | 'running' | 'done';

interface Row {
  label: string;
  state: RowState;
  /** For a done row: its final text ("passed 3s", "cached"), frozen. */
  final?: string;
  failed?: boolean;
  cancelled?: boolean;
  step?: string;
  detail?: string;
  startedAt?: number;
}

export interface LiveViewState {
  images: Map<string, Row>;
  cells: Map<string, Row>;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';
const visible = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '');

/** Cuts a line to `width` visible characters (colour sequences do not count), so that no row wraps. */
function fit(text: string, width: number): string {
  if (visible(text).length <= width) return text;
  let out = '';
  let shown = 0;
  for (let i = 0; i < text.length && shown < width - 1; ) {
    const esc = /^\u001b\[[0-9;]*m/.exec(text.slice(i));
    if (esc) {
      out += esc[0];
      i += esc[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    out += char;
    i += char.length;
    shown++;
  }
  return `${out}…${text.includes('\u001b[') ? '\u001b[0m' : ''}`;
}

function rowLine(row: Row, now: number, frame: number, c: Palette): string {
  if (row.state === 'queued') return c.dim(`◦ ${row.label} — queued`);
  if (row.state === 'done') {
    const mark = row.failed ? c.red('✖') : row.cancelled ? c.yellow('↓') : c.green('✔');
    return `${mark} ${row.label} — ${row.final ?? ''}`;
  }
  const elapsed = row.startedAt === undefined ? '' : ` ${c.dim(formatDuration(now - row.startedAt))}`;
  const line = `${c.yellow(SPINNER[frame % SPINNER.length]!)} ${row.label}${row.step ? ` — ${row.step}` : ''}${elapsed}`;
  return row.detail ? `${line}\n    ${c.dim(row.detail)}` : line;
}

/** The frame as lines, at most `rows` of them: running and failed rows first when they do not all fit. */
export function renderFrame(state: LiveViewState, options: { now: number; frame: number; columns: number; rows: number; colors: Palette }): string[] {
  const { colors: c } = options;
  const cells = [...state.cells.values()];
  const done = cells.filter((r) => r.state === 'done').length;
  const failed = cells.filter((r) => r.failed).length;
  const footer = `${done} of ${cells.length} ${plural(cells.length, 'cell')} done${failed > 0 ? `, ${c.red(`${failed} failed`)}` : ''}`;
  const all = [...state.images.values(), ...cells];
  let shown = all;
  const room = Math.max(1, options.rows - 2);
  if (all.length > room) {
    const rank = (r: Row) => (r.state === 'running' ? 0 : r.failed ? 1 : r.state === 'queued' ? 2 : 3);
    const keep = new Set([...all].sort((a, b) => rank(a) - rank(b)).slice(0, room - 1));
    shown = all.filter((r) => keep.has(r));
  }
  const lines = shown.flatMap((r) => rowLine(r, options.now, options.frame, c).split('\n'));
  if (shown.length < all.length) lines.push(c.dim(`… ${all.length - shown.length} more`));
  lines.push(footer);
  return lines.map((line) => fit(line, Math.max(10, options.columns - 1)));
}

export interface LiveViewOptions {
  write: (text: string) => void;
  colors: Palette;
  /** Terminal size, read at each redraw (default: 80x24). */
  size?: () => { columns: number; rows: number };
  /** Redraw period for the spinner and the clocks (ms). */
  intervalMs?: number;
}

export interface LiveView {
  listener: (event: RunEvent) => void;
  /** Prints a line above the view (a signal notice, a warning) without breaking it. */
  note(text: string): void;
  /** Stops redrawing, leaves the final frame, then prints each failure once and the summary. */
  finish(result: RunResult): Promise<void>;
}

export function createLiveView(options: LiveViewOptions): LiveView {
  const c = options.colors;
  const state: LiveViewState = { images: new Map(), cells: new Map() };
  let outputDir = '';
  let drawnLines = 0;
  let frame = 0;
  let ticker: NodeJS.Timeout | undefined;
  let finished = false;
  const size = options.size ?? (() => ({ columns: 80, rows: 24 }));
  const restoreCursor = () => options.write(SHOW_CURSOR);

  // Column 1 first: the terminal may have echoed ^C (or a stray key) after the frame.
  const erase = () => `\u001b[G${drawnLines > 0 ? `\u001b[${drawnLines}A` : ''}\u001b[0J`;
  const draw = () => {
    if (finished && ticker === undefined && drawnLines === 0) return;
    const { columns, rows } = size();
    const lines = renderFrame(state, { now: Date.now(), frame, columns: columns || 80, rows: rows || 24, colors: c });
    options.write(`${erase()}${lines.join('\n')}\n`);
    drawnLines = lines.length;
  };
  let scheduled = false;
  const redraw = () => {
    if (scheduled || ticker === undefined) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (ticker !== undefined) draw();
    });
  };

  const start = (images: string[], cells: Cell[]) => {
    for (const image of images) state.images.set(image, { label: `image ${printable(image)}`, state: 'queued' });
    for (const cell of cells) state.cells.set(cell.id, { label: printable(cell.name), state: 'queued' });
    options.write(HIDE_CURSOR);
    process.once('exit', restoreCursor);
    ticker = setInterval(() => {
      frame++;
      draw();
    }, options.intervalMs ?? 100);
    ticker.unref();
    draw();
  };

  const cellEnd = (cell: Cell, result: CellResult) => {
    const row = state.cells.get(cell.id);
    if (!row) return;
    row.state = 'done';
    row.step = undefined;
    row.failed = isFailedCell(result.outcome);
    row.cancelled = result.outcome === 'cancelled';
    const why = result.outcome === 'cancelled' && result.cancelReason ? ` (${printable(result.cancelReason)})` : '';
    row.final = `${result.outcome}${why} ${formatDuration(result.durationMs)}`;
  };

  const stop = () => {
    if (ticker === undefined) return;
    clearInterval(ticker);
    draw();
    ticker = undefined;
    drawnLines = 0;
    restoreCursor();
    process.off('exit', restoreCursor);
  };

  return {
    listener(event) {
      switch (event.type) {
        case 'run-start':
          outputDir = event.outputDir;
          start([...new Set(event.cells.map((cell) => cell.image))], event.cells);
          break;
        case 'image-start': {
          const row = state.images.get(event.image);
          if (row && row.state === 'queued') Object.assign(row, { state: 'running', startedAt: Date.now(), step: 'provisioning' });
          break;
        }
        case 'image-progress': {
          const row = state.images.get(event.image);
          if (row && row.state === 'running') row.detail = terminalSafe(event.line).slice(0, 200);
          break;
        }
        case 'image-end': {
          const row = state.images.get(event.image);
          if (!row) break;
          row.state = 'done';
          row.detail = undefined;
          row.failed = event.error !== undefined;
          row.final = event.error !== undefined ? `failed: ${terminalSafe(event.error)}` : event.cached ? 'cached' : `built ${formatDuration(event.durationMs)}`;
          break;
        }
        case 'cell-start': {
          const row = state.cells.get(event.cell.id);
          if (row && row.state === 'queued') Object.assign(row, { state: 'running', startedAt: Date.now(), step: 'starting' });
          break;
        }
        case 'step-start': {
          const row = state.cells.get(event.cell.id);
          if (row && row.state === 'running') row.step = `${printable(event.name)}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`;
          break;
        }
        case 'cell-end':
          cellEnd(event.cell, event.result);
          break;
        default:
          return;
      }
      redraw();
    },
    note(text) {
      if (ticker === undefined) {
        options.write(text.endsWith('\n') ? text : `${text}\n`);
        return;
      }
      options.write(`${erase()}${text.endsWith('\n') ? text : `${text}\n`}`);
      drawnLines = 0;
      draw();
    },
    async finish(result) {
      // Rows of cells the run never reached (an interrupt, fail-fast) end as the result says.
      for (const cell of result.cells) {
        const row = state.cells.get(cell.id);
        if (row && row.state !== 'done') cellEnd({ id: cell.id } as Cell, cell);
      }
      for (const row of state.images.values()) if (row.state !== 'done') Object.assign(row, { state: 'done', cancelled: true, final: 'stopped' });
      stop();
      finished = true;
      for (const cell of result.cells) {
        if (isFailedCell(cell.outcome)) options.write(`${failureDetails(cell, outputDir, c)}\n`);
      }
      options.write(`\n${summaryTable(result, c)}\n\n${totals(result)}\n`);
    },
  };
}

/** The plain view for CI logs and pipes: one timestamped line per thing that happened, no cursor movement. */
import type { RunEvent } from '../run/events.js';
import { isFailedCell } from '../run/result.js';
import { formatDuration } from '../lib/duration.js';
import { printable, terminalSafe, type Palette } from './colors.js';
import { failureDetails, stepSymbol, summaryTable, totals } from './summary.js';

export interface PlainViewOptions {
  write: (text: string) => void;
  colors: Palette;
  /** Show each image build's progress lines (noisy; default off). */
  verbose?: boolean;
  now?: () => Date;
}

export function createPlainView(options: PlainViewOptions): (event: RunEvent) => void {
  const { write, colors: c } = options;
  const now = options.now ?? (() => new Date());
  let outputDir = '';
  const say = (text: string) => write(`${c.dim(now().toISOString().slice(11, 19))} ${text}\n`);
  // Every user-controlled string (names, paths) goes through `printable`, output through `terminalSafe`.
  const p = printable;
  return (event) => {
    switch (event.type) {
      case 'run-start':
        outputDir = event.outputDir;
        say(`${c.bold(p(event.matrixName))}: ${event.cells.length} cell${event.cells.length === 1 ? '' : 's'} (output: ${p(event.outputDir)})`);
        break;
      case 'image-start':
        say(`image ${p(event.image)}: provisioning`);
        break;
      case 'image-progress':
        if (options.verbose) say(`image ${p(event.image)}: ${terminalSafe(event.line)}`);
        break;
      case 'image-end':
        if (event.error) say(c.red(`image ${p(event.image)}: FAILED: ${terminalSafe(event.error)}${event.logPath && !event.error.includes(event.logPath) ? ` (log: ${p(event.logPath)})` : ''}`));
        else say(`image ${p(event.image)}: ${event.cached ? 'cached' : `built in ${formatDuration(event.durationMs)}`} (key ${event.key})`);
        break;
      case 'cell-start':
        say(`${p(event.cell.name)}: started`);
        break;
      case 'step-start':
        say(`${p(event.cell.name)}: step "${p(event.name)}"${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`);
        break;
      case 'step-attempt-end':
        if (event.willRetry) say(c.yellow(`${p(event.cell.name)}: step ${event.step + 1} failed, retrying`));
        break;
      case 'step-end': {
        const last = event.result.attempts.at(-1);
        say(`${p(event.cell.name)}: step "${p(event.result.name)}" ${stepSymbol(event.result, c)}${last ? ` ${formatDuration(last.durationMs)}` : ''}${event.result.reason ? ` (${p(event.result.reason)})` : ''}`);
        break;
      }
      case 'cell-end':
        if (isFailedCell(event.result.outcome)) write(`${failureDetails(event.result, outputDir, c)}\n`);
        else say(`${p(event.cell.name)}: ${event.result.outcome}${event.result.cancelReason ? ` (${p(event.result.cancelReason)})` : ''} in ${formatDuration(event.result.durationMs)}`);
        break;
      case 'run-end':
        write(`\n${summaryTable(event.result, c)}\n\n${totals(event.result)}\n`);
        break;
      case 'step-output':
        break;
    }
  };
}

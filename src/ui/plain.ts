/** The plain view for CI logs and pipes: one timestamped line per thing that happened, no cursor movement. */
import { StringDecoder } from 'node:string_decoder';
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
  /** Every line of step output as it comes, prefixed by its cell (`--stream`). */
  stream?: boolean;
  /**
   * A CI system's native markup: `github` folds each step's output in `::group::` (printed whole when the step
   * ends, so that parallel cells never interleave a fold) and annotates a failing step with `::error`; `gitlab`
   * does the same with collapsible sections.
   */
  ci?: 'github' | 'gitlab' | undefined;
  now?: () => Date;
}

/** A step's output kept for its fold: at most this many bytes (the start is dropped first; the log has it all). */
const FOLD_MAX_BYTES = 256 * 1024;

/** GitHub workflow commands: data escapes %, CR and LF; property values also : and ,. */
export function githubData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
export function githubProperty(text: string): string {
  return githubData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** Splits chunks into whole lines per key, keeping a partial last line (and a split UTF-8 character) until its end arrives. */
class LineSplitter {
  private readonly partial = new Map<string, string>();
  private readonly decoders = new Map<string, StringDecoder>();
  push(key: string, chunk: Buffer): string[] {
    let decoder = this.decoders.get(key);
    if (!decoder) this.decoders.set(key, (decoder = new StringDecoder('utf8')));
    const text = (this.partial.get(key) ?? '') + decoder.write(chunk);
    const lines = text.split('\n');
    this.partial.set(key, lines.pop()!);
    return lines;
  }
  flush(key: string): string[] {
    const rest = (this.partial.get(key) ?? '') + (this.decoders.get(key)?.end() ?? '');
    this.partial.delete(key);
    this.decoders.delete(key);
    return rest ? [rest] : [];
  }
}

export function createPlainView(options: PlainViewOptions): (event: RunEvent) => void {
  const { write, colors: c } = options;
  const now = options.now ?? (() => new Date());
  let outputDir = '';
  const say = (text: string) => write(`${c.dim(now().toISOString().slice(11, 19))} ${text}\n`);
  // Every user-controlled string (names, paths) goes through `printable`, output through `terminalSafe`.
  const p = printable;
  const lines = new LineSplitter();
  const folds = new Map<string, { bytes: number; dropped: boolean; chunks: Buffer[] }>();
  const foldKey = (cellId: string, step: number) => `${cellId}\u0000${step}`;
  let sections = 0;
  const fold = (title: string, body: string[]) => {
    if (options.ci === 'github') {
      write(`::group::${githubData(title)}\n`);
      for (const line of body) write(`${line}\n`);
      write('::endgroup::\n');
    } else if (options.ci === 'gitlab') {
      const name = `nsmatrix_step_${++sections}`;
      const at = () => Math.floor(now().getTime() / 1000);
      write(`\u001b[0Ksection_start:${at()}:${name}[collapsed=true]\r\u001b[0K${title}\n`);
      for (const line of body) write(`${line}\n`);
      write(`\u001b[0Ksection_end:${at()}:${name}\r\u001b[0K\n`);
    }
  };
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
        const key = foldKey(event.cell.id, event.result.index);
        const kept = folds.get(key);
        folds.delete(key);
        if (options.ci && kept) {
          const text = Buffer.concat(kept.chunks).toString('utf8').split('\n');
          if (text.at(-1) === '') text.pop();
          if (kept.dropped) text.unshift(`[earlier output dropped; the whole log is ${last ? last.logPath : 'in the output directory'}]`);
          fold(`${p(event.cell.name)}: ${p(event.result.name)} (${event.result.outcome})`, text.map(terminalSafe));
        }
        if (options.stream) for (const line of lines.flush(key)) write(`[${p(event.cell.name)}] ${terminalSafe(line)}\n`);
        if (options.ci === 'github' && last && (event.result.outcome === 'failed' || event.result.outcome === 'timed-out') && !event.result.continueOnError) {
          const why = last.timedOut ? `timed out after ${formatDuration(last.durationMs)}` : last.signal ? `killed by ${last.signal}` : `exit status ${last.exitCode}`;
          const title = `${event.cell.name}: step ${event.result.name} failed`;
          write(`::error title=${githubProperty(title)}::${githubData(`${why}; log: ${outputDir}/${last.logPath}\n${last.tail.slice(-10).join('\n')}`)}\n`);
        }
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
      case 'step-output': {
        const key = foldKey(event.cell.id, event.step);
        if (options.ci) {
          const kept = folds.get(key) ?? { bytes: 0, dropped: false, chunks: [] };
          kept.chunks.push(event.chunk);
          kept.bytes += event.chunk.length;
          while (kept.bytes > FOLD_MAX_BYTES && kept.chunks.length > 1) {
            kept.bytes -= kept.chunks.shift()!.length;
            kept.dropped = true;
          }
          folds.set(key, kept);
        }
        if (options.stream) for (const line of lines.push(key, event.chunk)) write(`[${p(event.cell.name)}] ${terminalSafe(line)}\n`);
        break;
      }
    }
  };
}

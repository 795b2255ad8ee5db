/**
 * The reporter interface, in the spirit of vitest's reporter hooks: every hook is optional; a reporter
 * implements just what it needs. File reporters usually only implement `onRunEnd` and read the result model.
 */
import type { RunEvent } from '../src/run/events.js';
import type { RunResult } from '../src/run/result.js';

export interface ReporterContext {
  /** The run's output directory (absolute). Result paths are relative to it. */
  outputDir: string;
  /** Where this reporter writes, when the user gave `--reporter NAME=PATH` (absolute), else undefined. */
  target?: string;
}

export interface Reporter {
  readonly name: string;
  /** Every event as it happens. Must not block: buffer and write later. */
  onEvent?(event: RunEvent): void;
  /** Called once with the final result; returns the files written (absolute paths). */
  onRunEnd?(result: RunResult, context: ReporterContext): Promise<string[]> | string[];
}

export type ReporterFactory = () => Reporter;

/**
 * The reporter registry's catalogue: every name `--reporter` accepts, the file it writes by default and what it
 * is for. Plain data, so that CLI help, defaults and completion read it without loading any reporter's code;
 * reporters/index.ts maps each name to its factory (and cannot miss one).
 */
export const REPORTER_CATALOG = [
  { name: 'junit', file: 'junit.xml', for: 'CI systems' },
  { name: 'json', file: 'results.json', for: 'the whole result model; what merge reads' },
  { name: 'markdown', file: 'summary.md', for: '$GITHUB_STEP_SUMMARY, merge-request comments' },
  { name: 'html', file: 'report.html', for: 'one self-contained page' },
] as const;

export type ReporterName = (typeof REPORTER_CATALOG)[number]['name'];

/** What `run` and `merge` write when no `--reporter` is given. */
export const DEFAULT_REPORTERS: readonly ReporterName[] = ['junit', 'json'];

/** `junit (junit.xml), json (results.json), ...` for help texts. */
export function reporterSummary(): string {
  return REPORTER_CATALOG.map((r) => `${r.name} (${r.file})`).join(', ');
}

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

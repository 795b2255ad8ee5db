/** Turns `--reporter NAME[=PATH]` flags into reporters, and runs them at the end of a run or merge. */
import { resolve } from 'node:path';
import { DEFAULT_REPORTERS, type Reporter } from '../../reporters/types.js';
import type { RunResult } from '../run/result.js';

export interface ChosenReporter {
  reporter: Reporter;
  target?: string;
}

export async function createReporters(flags: string[] | undefined, defaults: readonly string[] = DEFAULT_REPORTERS): Promise<ChosenReporter[]> {
  const { createReporter, parseReporterFlag } = await import('../../reporters/index.js');
  const chosen = (flags && flags.length > 0 ? flags : defaults).map((flag) => {
    const { name, target } = parseReporterFlag(flag);
    return { reporter: createReporter(name), ...(target ? { target: resolve(target) } : {}) };
  });
  return chosen;
}

/** Runs every reporter even if one fails; a failing reporter is reported, never silently dropped. */
export async function writeReports(reporters: ChosenReporter[], result: RunResult, outputDir: string): Promise<string[]> {
  const written: string[] = [];
  for (const { reporter, target } of reporters) {
    if (!reporter.onRunEnd) continue;
    try {
      written.push(...(await reporter.onRunEnd(result, { outputDir, ...(target ? { target } : {}) })));
    } catch (error) {
      process.stderr.write(`nsmatrix: the ${reporter.name} reporter failed: ${(error as Error).message}\n`);
      process.exitCode = 3;
    }
  }
  return written;
}

/** Turns `--reporter NAME[=PATH]` flags into reporters, and runs them at the end of a run or merge. */
import { appendFile } from 'node:fs/promises';
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

/**
 * Under GitHub Actions, the Markdown summary goes to the job's page without the user asking: appended to
 * `$GITHUB_STEP_SUMMARY` (several runs in one job each add theirs). A failure to write it is a warning.
 */
export async function appendStepSummary(result: RunResult, outputDir: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const target = env.GITHUB_STEP_SUMMARY;
  if (env.GITHUB_ACTIONS !== 'true' || !target) return;
  try {
    const { buildMarkdown } = await import('../../reporters/markdown.js');
    await appendFile(target, `${await buildMarkdown(result, outputDir)}\n`);
  } catch (error) {
    process.stderr.write(`nsmatrix: warning: could not append the summary to GITHUB_STEP_SUMMARY (${target}): ${(error as Error).message}\n`);
  }
}

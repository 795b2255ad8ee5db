/**
 * `nsmatrix merge DIR...`: combines the JSON results of shard runs into one set of reports, as if the matrix had
 * run unsharded. Each shard's cell directories (logs, journals, artifacts) are copied next to the merged reports so
 * their links keep working.
 */
import { cp, stat } from 'node:fs/promises';
import { join, resolve, relative } from 'node:path';
import { UsageError } from '../../errors.js';
import { resolveStateDir } from '../../images/index.js';
import { checkOutputDir, prepareOutputDir } from '../../lib/run-paths.js';
import { mergeResults, exitCodeFor, missingShards } from '../../run/merge.js';
import { cellDirProblem } from '../../run/cell-dir.js';
import { appendStepSummary, createReporters, writeReports } from '../reporting.js';
import { plural } from '../../ui/summary.js';

export default async function merge(args: { dirs: string[]; output: string; reporter?: string[] }): Promise<number> {
  const { readRunResult } = await import('../../run/result.js');
  const reporters = await createReporters(args.reporter);
  // The same rules as `run --output`: never /, /proc, /sys, /dev or the state directory; one-line errors.
  const requested = checkOutputDir(args.output, resolveStateDir(undefined));
  const inputs = [];
  for (const dir of args.dirs) {
    const path = join(resolve(dir), 'results.json');
    const exists = await stat(path).then(() => true, () => false);
    if (!exists) throw new UsageError(`nsmatrix: ${dir}: no results.json (run the shards with the json reporter, the default)`);
    inputs.push({ source: dir, dir: resolve(dir), result: await readRunResult(path) });
  }
  const merged = mergeResults(inputs);
  // A directory of the user's that has a cell's name is never overwritten: refuse before anything is copied.
  for (const input of inputs) {
    if (resolve(input.dir) === requested) continue;
    for (const cell of input.result.cells) {
      const problem = /^[a-z0-9][a-z0-9._-]*$/.test(cell.outputDir) ? cellDirProblem(requested, cell.outputDir) : undefined;
      if (problem) throw new UsageError(`nsmatrix: --output ${args.output}: ${problem}`);
    }
  }
  const outputDir = prepareOutputDir(requested, args.output);
  for (const input of inputs) {
    if (input.dir === outputDir) continue;
    for (const cell of input.result.cells) {
      // Paths from a results file are data, not trusted: only a plain cell directory name may be copied.
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(cell.outputDir) || cell.outputDir.includes('..')) {
        throw new UsageError(`nsmatrix: ${input.source}/results.json: cell "${cell.name}" has an unsafe directory "${cell.outputDir}"`);
      }
      const from = join(input.dir, cell.outputDir);
      if (await stat(from).then(() => true, () => false)) await cp(from, join(outputDir, cell.outputDir), { recursive: true, force: true });
    }
  }
  const written = await writeReports(reporters, merged, outputDir);
  for (const path of written) process.stdout.write(`report: ${relative(process.cwd(), path) || path}\n`);
  await appendStepSummary(merged, outputDir);
  process.stdout.write(`merged ${inputs.length} result ${plural(inputs.length, 'set')}: ${merged.cells.length} ${plural(merged.cells.length, 'cell')}, ${merged.outcome}\n`);
  // A missing shard is a silent hole in the report: warn, and exit 2 unless the merged cells already failed worse.
  const missing = missingShards(inputs.map((i) => i.result));
  if (missing) {
    process.stderr.write(`nsmatrix: warning: ${missing}\n`);
    return Math.max(exitCodeFor(merged), 2);
  }
  return exitCodeFor(merged);
}

/**
 * `nsmatrix merge DIR...`: combines the JSON results of shard runs into one set of reports, as if the matrix had
 * run unsharded. Each shard's cell directories (logs, journals, artifacts) are copied next to the merged reports so
 * their links keep working.
 */
import { cp, mkdir, stat } from 'node:fs/promises';
import { join, resolve, relative } from 'node:path';
import { UsageError } from '../../errors.js';
import { mergeResults, exitCodeFor } from '../../run/merge.js';
import { createReporters, writeReports } from '../reporting.js';

export default async function merge(args: { dirs: string[]; output: string; reporter?: string[] }): Promise<number> {
  const { readRunResult } = await import('../../run/result.js');
  const reporters = await createReporters(args.reporter, ['junit', 'json', 'markdown', 'html']);
  const outputDir = resolve(args.output);
  const inputs = [];
  for (const dir of args.dirs) {
    const path = join(resolve(dir), 'results.json');
    const exists = await stat(path).then(() => true, () => false);
    if (!exists) throw new UsageError(`nsmatrix merge: ${dir}: no results.json (run the shards with the json reporter, the default)`);
    inputs.push({ source: dir, dir: resolve(dir), result: await readRunResult(path) });
  }
  const merged = mergeResults(inputs);
  await mkdir(outputDir, { recursive: true });
  for (const input of inputs) {
    if (input.dir === outputDir) continue;
    for (const cell of input.result.cells) {
      // Paths from a results file are data, not trusted: only a plain cell directory name may be copied.
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(cell.outputDir) || cell.outputDir.includes('..')) {
        throw new UsageError(`nsmatrix merge: ${input.source}/results.json: cell "${cell.name}" has an unsafe directory "${cell.outputDir}"`);
      }
      const from = join(input.dir, cell.outputDir);
      if (await stat(from).then(() => true, () => false)) await cp(from, join(outputDir, cell.outputDir), { recursive: true, force: true });
    }
  }
  const written = await writeReports(reporters, merged, outputDir);
  for (const path of written) process.stdout.write(`report: ${relative(process.cwd(), path) || path}\n`);
  process.stdout.write(`merged ${inputs.length} result set(s): ${merged.cells.length} cells, ${merged.outcome}\n`);
  return exitCodeFor(merged);
}

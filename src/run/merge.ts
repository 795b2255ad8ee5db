/** Merges the results of shard runs into the result one unsharded run would have produced. */
import { UsageError } from '../errors.js';
import { runOutcome, type RunResult } from './result.js';

export function mergeResults(inputs: { source: string; result: RunResult }[]): RunResult {
  if (inputs.length === 0) throw new UsageError('nsmatrix merge: no results to merge');
  const first = inputs[0]!.result;
  const seen = new Map<string, string>();
  for (const { source, result } of inputs) {
    if (result.matrix.name !== first.matrix.name) {
      throw new UsageError(`${source}: results of matrix "${result.matrix.name}" cannot be merged with "${first.matrix.name}" (${inputs[0]!.source})`);
    }
    for (const cell of result.cells) {
      const other = seen.get(cell.id);
      if (other !== undefined) throw new UsageError(`${source}: cell "${cell.name}" is also in ${other}: were the same shards run twice?`);
      seen.set(cell.id, source);
    }
  }
  const cells = inputs.flatMap((i) => i.result.cells).sort((a, b) => a.position - b.position);
  const start = Math.min(...inputs.map((i) => Date.parse(i.result.startedAt)));
  const end = Math.max(...inputs.map((i) => Date.parse(i.result.startedAt) + i.result.durationMs));
  const interrupted = inputs.some((i) => i.result.interrupted);
  const { shard: _shard, ...rest } = first;
  return {
    ...rest,
    startedAt: new Date(start).toISOString(),
    durationMs: end - start,
    interrupted,
    outcome: runOutcome(cells, interrupted),
    cells,
  };
}

/**
 * Which shards of a sharded run are missing from the merged results (all shards must have the same total), as a
 * sentence for a warning, or undefined when every shard is there (or the results were not sharded).
 */
export function missingShards(results: readonly Pick<RunResult, 'shard'>[]): string | undefined {
  const shards = results.map((r) => r.shard).filter((s): s is NonNullable<typeof s> => s !== undefined);
  if (shards.length === 0) return undefined;
  const total = Math.max(...shards.map((s) => s.total));
  const have = new Set(shards.map((s) => s.index));
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !have.has(i));
  if (missing.length === 0) return undefined;
  return `shard${missing.length === 1 ? '' : 's'} ${missing.join(', ')} of ${total} missing: the merged report lacks ${missing.length === 1 ? 'its' : 'their'} cells (merge every shard's output directory)`;
}

/** The process exit code a result stands for (see README: exit codes). */
export function exitCodeFor(result: RunResult): number {
  switch (result.outcome) {
    case 'passed':
      return 0;
    case 'failed':
      return 1;
    case 'error':
      return 3;
    case 'interrupted':
      return 130;
  }
}

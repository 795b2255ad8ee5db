/** Merges the results of shard runs into the result one unsharded run would have produced. */
import { UsageError } from '../errors.js';
import { runOutcome } from './scheduler.js';
import type { RunResult } from './result.js';

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

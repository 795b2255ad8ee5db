/** `--filter` and `--shard` as `run` and `list` use them: a filter that matches no cell is a usage error. */
import { UsageError } from '../errors.js';
import { CELL_ID_KEY, parseFilters, selectCells } from '../matrix/index.js';
import type { Cell } from '../matrix/index.js';
import { didYouMean } from '../lib/did-you-mean.js';

/**
 * The selected cells. Filters that together match no cell exit 2 with the values each filtered key has (an empty
 * shard of a filtered selection is not an error: a matrix can have fewer cells than shards).
 */
export function selectOrExplain(all: readonly Cell[], filter: readonly string[], shard: string | undefined): Cell[] {
  const filtered = selectCells(all, { filter });
  if (filter.length > 0 && filtered.length === 0) {
    const hints = [...parseFilters(filter)].map(([key, wanted]) => {
      const values = [...new Set(all.map((cell) => (key === CELL_ID_KEY ? cell.id : Object.hasOwn(cell.values, key) ? String(cell.values[key]) : undefined)))].filter(
        (v): v is string => v !== undefined,
      );
      const miss = wanted.find((w) => !values.includes(w));
      const near = miss === undefined ? '' : didYouMean(miss, values);
      return `${key}: ${values.map((v) => JSON.stringify(v)).join(', ')}${near}`;
    });
    throw new UsageError(`nsmatrix: --filter ${filter.join(' --filter ')} matches no cell (values: ${hints.join('; ')})`);
  }
  return shard === undefined ? filtered : selectCells(filtered, { shard });
}

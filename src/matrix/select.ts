/**
 * Choosing cells: `--filter KEY=VALUE` (AND across keys, OR within one key) and `--shard I/N`. Sharding runs after
 * filtering and is round-robin over expansion order: the cell at 0-based position p (among the filtered cells)
 * belongs to shard (p mod N) + 1, so every cell is in exactly one shard and shards mix images evenly. Pure.
 */
import { UsageError } from '../errors.js';
import { didYouMean } from '../lib/did-you-mean.js';
import type { Cell } from './types.js';

import { CELL_ID_KEY } from './check.js';

export { CELL_ID_KEY };

export interface Shard {
  /** 1-based */
  index: number;
  total: number;
}

export function parseShard(text: string): Shard {
  const match = /^\s*(\d{1,6})\s*\/\s*(\d{1,6})\s*$/.exec(text);
  const index = Number(match?.[1]);
  const total = Number(match?.[2]);
  if (!match || total < 1 || index < 1 || index > total) {
    throw new UsageError(`--shard ${JSON.stringify(text)}: expected I/N with 1 <= I <= N, e.g. --shard 2/4`);
  }
  return { index, total };
}

export function parseFilters(filters: readonly string[]): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const filter of filters) {
    const equals = filter.indexOf('=');
    if (equals <= 0) throw new UsageError(`--filter ${JSON.stringify(filter)}: expected KEY=VALUE, e.g. --filter image=debian:sid`);
    const key = filter.slice(0, equals).trim();
    const value = filter.slice(equals + 1);
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return byKey;
}

export function selectCells(cells: readonly Cell[], options: { filter?: readonly string[]; shard?: string } = {}): Cell[] {
  const filters = parseFilters(options.filter ?? []);
  const shard = options.shard === undefined ? undefined : parseShard(options.shard);

  const knownKeys = [...new Set(cells.flatMap((cell) => Object.keys(cell.values))), CELL_ID_KEY];
  for (const key of filters.keys()) {
    if (!knownKeys.includes(key)) {
      const hint = didYouMean(key, knownKeys) || ` (keys: ${knownKeys.join(', ')})`;
      throw new UsageError(`--filter ${JSON.stringify(key)}: no cell has this key${hint}`);
    }
  }
  const valueOf = (cell: Cell, key: string): string | undefined =>
    key === CELL_ID_KEY ? cell.id : Object.hasOwn(cell.values, key) ? String(cell.values[key]) : undefined;
  const selected = cells.filter((cell) =>
    [...filters].every(([key, wanted]) => {
      const value = valueOf(cell, key);
      return value !== undefined && wanted.includes(value);
    }),
  );
  if (!shard) return selected;
  return selected.filter((_, position) => position % shard.total === shard.index - 1);
}

/** Copy-paste commands that rerun exactly one cell. */
import type { Cell } from '../matrix/types.js';

/** POSIX shell quoting: bare when safe, else single quotes with embedded quotes spliced. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Filtering on every value of the cell (axes and include-added keys) selects exactly that cell. */
export function rerunCommand(fileArg: string, cell: Pick<Cell, 'values'>): string {
  const filters = Object.entries(cell.values).map(([k, v]) => `--filter ${shellQuote(`${k}=${String(v)}`)}`);
  return ['nsmatrix run', shellQuote(fileArg), ...filters].join(' ');
}

/** `nsmatrix list [FILE]`: the expanded (and selected) cells as a table, JSON, or a GitHub Actions strategy.matrix. */
import { CELL_ID_KEY, expandMatrix, findMatrixFile, loadMatrix } from '../../matrix/index.js';
import { selectOrExplain } from '../selection.js';
import type { Cell } from '../../matrix/index.js';
import { checkImageReferences } from '../image-check.js';

export interface ListArgs {
  file?: string;
  format: 'table' | 'json' | 'github';
  filter: string[];
  shard?: string;
  maxCells: number;
}

export default async function list(args: ListArgs): Promise<number> {
  const file = findMatrixFile(process.cwd(), args.file);
  const model = await loadMatrix(file);
  const all = expandMatrix(model, { maxCells: args.maxCells });
  checkImageReferences(model, all);
  const cells = selectOrExplain(all, args.filter, args.shard);
  process.stdout.write(render(cells, args.format));
  return 0;
}

export function render(cells: readonly Cell[], format: ListArgs['format']): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(cells.map(({ id, name, image, values }) => ({ id, name, image, values })), null, 2)}\n`;
    case 'github':
      // One line, so that `echo "matrix=$(nsmatrix list --format github)" >> "$GITHUB_OUTPUT"` just works.
      return `${JSON.stringify({ include: cells.map((cell) => ({ ...cell.values, [CELL_ID_KEY]: cell.id })) })}\n`;
    case 'table':
      return table(cells);
  }
}

function table(cells: readonly Cell[]): string {
  const keys = [...new Set(cells.flatMap((cell) => Object.keys(cell.values)))].filter((key) => key !== 'image');
  const header = ['ID', 'IMAGE', ...keys.map((key) => key.toUpperCase())];
  const rows = cells.map((cell) => [
    cell.id,
    cell.image,
    ...keys.map((key) => (Object.hasOwn(cell.values, key) ? printable(String(cell.values[key])) : '-')),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) => row.map((text, column) => text.padEnd(widths[column]!)).join('  ').trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

/** Values reach a terminal: no control characters (escape sequences, newlines) in a table cell. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

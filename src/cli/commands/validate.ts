/** `nsmatrix validate [FILE]`: load, check and expand the matrix; every problem is a UsageError line. */
import { expandMatrix, findMatrixFile, loadMatrix } from '../../matrix/index.js';

export default async function validate(args: { file?: string; maxCells: number }): Promise<number> {
  const file = findMatrixFile(process.cwd(), args.file);
  const model = await loadMatrix(file);
  const cells = expandMatrix(model, { maxCells: args.maxCells });
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  process.stdout.write(`${file}: OK (${plural(cells.length, 'cell')}, ${plural(model.steps.length, 'step')})\n`);
  return 0;
}

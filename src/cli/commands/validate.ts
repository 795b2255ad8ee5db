/** `nsmatrix validate [FILE]`: load, check and expand the matrix; every problem is a UsageError line. */
import { expandMatrix, findMatrixFile, loadMatrix } from '../../matrix/index.js';
import { checkImageReferences } from '../image-check.js';
import { plural } from '../../ui/summary.js';

export default async function validate(args: { file?: string; maxCells: number }): Promise<number> {
  const file = findMatrixFile(process.cwd(), args.file);
  const model = await loadMatrix(file);
  const cells = expandMatrix(model, { maxCells: args.maxCells });
  checkImageReferences(model, cells);
  process.stdout.write(`${file}: OK (${cells.length} ${plural(cells.length, 'cell')}, ${model.steps.length} ${plural(model.steps.length, 'step')})\n`);
  return 0;
}

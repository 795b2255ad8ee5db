/** `nsmatrix validate [FILE]`: load, check and expand the matrix; every problem is a UsageError line. */
import { existsSync } from 'node:fs';
import { expandMatrix, findMatrixFile, loadMatrix } from '../../matrix/index.js';
import { checkImageReferences } from '../image-check.js';
import { plural } from '../../ui/summary.js';
import { checkArchAvailability } from '../../images/arch-availability.js';
import { resolveStateDir } from '../../images/index.js';

/** The state directory, for the mirror's cached Release answers, when it exists (validate never creates it). */
function existingStateDir(): string | undefined {
  const dir = resolveStateDir();
  return existsSync(dir) ? dir : undefined;
}

export default async function validate(args: { file?: string; maxCells: number }): Promise<number> {
  const file = findMatrixFile(process.cwd(), args.file);
  const model = await loadMatrix(file);
  const cells = expandMatrix(model, { maxCells: args.maxCells });
  checkImageReferences(model, cells);
  await checkArchAvailability(model, cells, existingStateDir());
  process.stdout.write(`${file}: OK (${cells.length} ${plural(cells.length, 'cell')}, ${model.steps.length} ${plural(model.steps.length, 'step')})\n`);
  return 0;
}

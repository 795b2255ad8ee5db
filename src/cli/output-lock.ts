/** One run per output directory at a time: two runs writing the same logs and reports would mix them. */
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { acquireFlock } from '../lib/flock.js';

export async function lockOutputDir(outputDir: string): Promise<void> {
  const lock = await acquireFlock(join(outputDir, '.nsmatrix.lock'), { nonBlocking: true, label: `output directory ${outputDir}` });
  if (!lock) throw new UsageError(`nsmatrix: --output ${outputDir} is in use by another nsmatrix run: choose another --output`);
  // Released with every other resource when the run ends (resources.releaseAll in the run command).
}

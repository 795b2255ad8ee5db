/** One run per output directory at a time: two runs writing the same logs and reports would mix them. */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { acquireFlock, DYING_HOLDER_GRACE_MS } from '../lib/flock.js';
import { CELL_DIR_TEMP } from '../run/cell-dir.js';

/** Temporary files of reports being written atomically (reporters/write-atomic.ts). */
const REPORT_TEMP = /^\.[^/]+\.\d+\.[0-9a-f]+\.tmp$/;

export async function lockOutputDir(outputDir: string): Promise<void> {
  const lock = await acquireFlock(join(outputDir, '.nsmatrix.lock'), { nonBlocking: true, busyGraceMs: DYING_HOLDER_GRACE_MS, label: `output directory ${outputDir}` });
  if (!lock) throw new UsageError(`nsmatrix: --output ${outputDir} is in use by another nsmatrix run: choose another --output`);
  // Held until the run ends (resources.releaseAll in the run command). Holding it, no other run writes here, so a
  // report's temporary file left by a run that was SIGKILLed mid-write can go.
  for (const name of await readdir(outputDir)) {
    if (REPORT_TEMP.test(name)) await rm(join(outputDir, name), { force: true });
    // A cell directory being made or removed when its run was killed (run/scheduler.ts); fs.rm follows no link.
    else if (CELL_DIR_TEMP.test(name)) await rm(join(outputDir, name), { recursive: true, force: true });
  }
}

/** Reports are written to a temporary file beside the target and renamed into place: never half a file. */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { resources } from '../src/lib/resources.js';

export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const registration = resources.add(`temporary report ${temp}`, () => rm(temp, { force: true }));
  try {
    await writeFile(temp, data, 'utf8');
    await rename(temp, path);
  } finally {
    // After the rename the temporary path no longer exists; on failure this removes the partial file.
    await registration.release();
  }
}

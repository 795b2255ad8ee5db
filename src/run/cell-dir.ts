/**
 * A cell's output directory: made fresh for every run, marked as nsmatrix's, and replaced only when it carries
 * that mark (never a user's directory that happens to have a cell's name).
 */
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { lstat, mkdir, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createExclusive } from '../lib/private-dir.js';

/**
 * Written (exclusive create) into every cell directory nsmatrix makes: only a directory carrying it is ever
 * replaced by a later run, so a user's own directory that happens to have a cell's name is never deleted.
 */
export const CELL_MARKER = '.nsmatrix-cell';

/** Why `<outputDir>/<cellId>` cannot be (re)made by this run, or undefined. Does not follow symlinks. */
export function cellDirProblem(outputDir: string, cellId: string): string | undefined {
  const dir = join(outputDir, cellId);
  let st;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
  } catch (error) {
    return `cannot use ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
  if (!st) return undefined;
  if (!st.isDirectory()) return `${dir} exists and is not a directory nsmatrix made: refusing to replace it (move it away or choose another --output)`;
  if (!lstatSync(join(dir, CELL_MARKER), { throwIfNoEntry: false })?.isFile()) {
    return `${dir} exists and was not made by nsmatrix (no ${CELL_MARKER} in it): refusing to replace it (move it away or choose another --output)`;
  }
  return undefined;
}

/**
 * Hidden names a cell directory has while it is made or removed (`.<cell>.<random>.new|old`): the directory under
 * its own name always carries its marker, so a run killed at any moment leaves nothing a later run must refuse.
 * Leftovers under these names are nsmatrix's; the next run into the output directory removes them (output-lock.ts).
 */
export const CELL_DIR_TEMP = /^\.[^/]+\.[0-9a-f]{12}\.(new|old)$/;

/**
 * A fresh cell directory with its marker and `artifacts/`: an earlier run's directory (marked) is moved aside and
 * removed, without following any symlink a step left in it (fs.rm lstat()s every entry and unlinks symlinks); the
 * new one is made under a hidden name and renamed into place. Throws when the directory is not nsmatrix's or the
 * artifacts directory is not where it must be.
 */
export async function prepareCellDir(outputDir: string, cellId: string): Promise<void> {
  const dir = join(outputDir, cellId);
  const problem = cellDirProblem(outputDir, cellId);
  if (problem) throw new Error(problem);
  const temp = (kind: 'new' | 'old') => join(outputDir, `.${cellId}.${randomBytes(6).toString('hex')}.${kind}`);
  // A rerun into the same output directory replaces this cell's old logs instead of mixing with them.
  if (await lstat(dir).then(() => true, () => false)) {
    const old = temp('old');
    await rename(dir, old);
    await rm(old, { recursive: true, force: true });
  }
  const fresh = temp('new');
  await mkdir(fresh); // not recursive: outputDir exists, and EEXIST here means someone raced us
  if (!createExclusive(join(fresh, CELL_MARKER))) throw new Error(`${fresh}: ${CELL_MARKER} appeared while the directory was being made`);
  await mkdir(join(fresh, 'artifacts'));
  // rename(2) onto a name that exists would replace an empty directory: someone else made one meanwhile.
  if (await lstat(dir).then(() => true, () => false)) throw new Error(`${dir} appeared while this run was making it`);
  await rename(fresh, dir);
  const artifacts = join(dir, 'artifacts');
  // The artifacts directory is bound read-write into the container: it must be exactly this new directory.
  if ((await realpath(artifacts)) !== artifacts) throw new Error(`${artifacts} is not a plain directory under the output directory`);
}


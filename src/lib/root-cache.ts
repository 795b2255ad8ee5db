/**
 * Small caches that root keeps between nsmatrix commands (under /run/nsmatrix: gone at the next boot). Root
 * believes only what root wrote: a regular file, not a symlink, owned by root, writable by no one else, in a
 * directory of the same kind. No dependencies beyond node:fs: the CLI's loader uses it before anything is loaded.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT_CACHE_DIR = '/run/nsmatrix';

const isRoot = () => process.getuid?.() === 0;

/** The file's content when root wrote it and no one else could have; null otherwise (and for any error). */
export function readRootCache(path: string): Buffer | null {
  if (!isRoot()) return null;
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== 0 || (st.mode & 0o022) !== 0) return null;
    return readFileSync(fd);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `dir/name` atomically, as root only and only into a root-owned directory no one else can write. */
export function writeRootCache(dir: string, name: string, data: string | Uint8Array): boolean {
  if (!isRoot()) return false;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) return false;
    const temporary = join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, data, { mode: 0o644, flag: 'wx' });
    renameSync(temporary, join(dir, name));
    return true;
  } catch {
    // a read-only /run, a race with another nsmatrix: the next command tries again
    return false;
  }
}

/**
 * A file's identity, for keying what root keeps by the file it was made from: device, inode, size, modification
 * and change times, so that a rebuilt, upgraded or replaced file gets another. Null when it cannot be read.
 */
export function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}-${st.ino}-${st.size}-${st.mtimeNs}-${st.ctimeNs}`;
  } catch {
    return null;
  }
}

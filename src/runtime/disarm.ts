/**
 * What a cell leaves in host directories (artifacts, a rw source tree, the journal) was written by a root process
 * we do not trust, and outlives the container where any host user may reach it. Disarming a tree removes what
 * would let such a user become root or reach a device: setuid and setgid bits, file capabilities, device nodes.
 * It runs after the container has stopped and never follows a symlink: entries are told apart by lstat and
 * changed through descriptors opened with O_NOFOLLOW, checked to be the inode lstat saw.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

const SPECIAL_BITS = 0o6000;

export interface DisarmOptions {
  /** Also remove symlinks, FIFOs and sockets (a directory only the host will read, such as the journal). */
  regularOnly?: boolean;
}

export interface DisarmReport {
  /** Files and directories whose setuid/setgid bits or capabilities were dropped. */
  disarmed: number;
  removed: number;
}

async function openNoFollow(path: string, seen: Stats, directory: boolean): Promise<FileHandle | null> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY | (directory ? constants.O_DIRECTORY : 0);
  try {
    const handle = await open(path, flags);
    const st = await handle.stat();
    if (st.ino === seen.ino && st.dev === seen.dev) return handle;
    await handle.close();
  } catch {
    // vanished or swapped meanwhile: nothing of ours to change
  }
  return null;
}

/**
 * fchown to the same owner makes the kernel drop setuid, setgid (with group execute) and security.capability
 * from a non-directory; fchmod then clears any special bit still set (setgid without group execute, directories).
 */
async function disarmEntry(path: string, st: Stats): Promise<boolean> {
  const hasSpecial = (st.mode & SPECIAL_BITS) !== 0;
  if (st.isDirectory() && !hasSpecial) return false;
  const handle = await openNoFollow(path, st, st.isDirectory());
  if (!handle) return false;
  try {
    if (st.isFile()) await handle.chown(st.uid, st.gid);
    if (hasSpecial) await handle.chmod(st.mode & 0o777 & ~SPECIAL_BITS);
    return hasSpecial;
  } finally {
    await handle.close();
  }
}

export async function disarmTree(root: string, options: DisarmOptions = {}): Promise<DisarmReport> {
  const report: DisarmReport = { disarmed: 0, removed: 0 };
  let rootStat: Stats;
  try {
    rootStat = await lstat(root);
  } catch {
    return report;
  }
  if (!rootStat.isDirectory()) return report;
  if (await disarmEntry(root, rootStat)) report.disarmed++;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      let st: Stats;
      try {
        st = await lstat(path);
      } catch {
        continue;
      }
      const special = st.isBlockDevice() || st.isCharacterDevice();
      const foreign = st.isSymbolicLink() || st.isFIFO() || st.isSocket();
      if (special || (options.regularOnly && foreign)) {
        await unlink(path).catch(() => undefined);
        report.removed++;
        continue;
      }
      if (st.isSymbolicLink() || st.isFIFO() || st.isSocket()) continue;
      if (await disarmEntry(path, st)) report.disarmed++;
      if (st.isDirectory()) pending.push(path);
    }
  }
  return report;
}

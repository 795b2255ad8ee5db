/**
 * Tree operations on image root filesystems: create, clone (btrfs snapshot, else a reflink-when-possible copy),
 * size, and safe removal.
 */
import { existsSync, mkdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { runChecked } from '../lib/process.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** The root directory of every btrfs subvolume has this inode number. */
const BTRFS_SUBVOLUME_INODE = 256;

export type CloneStrategy = 'btrfs-snapshot' | 'copy';

export function onBtrfs(path: string): boolean {
  try {
    return statfsSync(path).type === BTRFS_SUPER_MAGIC;
  } catch {
    return false;
  }
}

export function isSubvolume(path: string): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isDirectory() && st.ino === BTRFS_SUBVOLUME_INODE && onBtrfs(path);
}

/** An empty root directory; a subvolume on btrfs, so that top layers can snapshot it in constant time. */
export async function makeRootDir(path: string): Promise<void> {
  if (onBtrfs(dirname(path))) await runChecked(['btrfs', 'subvolume', 'create', '--', path]);
  else mkdirSync(path, { mode: 0o755 });
}

/** `signal` stops a copy half-way (an interrupted run): it rejects, and the caller removes what was copied. */
export async function cloneTree(from: string, to: string, signal?: AbortSignal): Promise<CloneStrategy> {
  if (isSubvolume(from) && onBtrfs(dirname(to))) {
    await runChecked(['btrfs', 'subvolume', 'snapshot', '--', from, to]);
    return 'btrfs-snapshot';
  }
  await copyTree(from, to, signal);
  return 'copy';
}

export async function copyTree(from: string, to: string, signal?: AbortSignal): Promise<void> {
  // The parent-death signal keeps a copy from writing on after we were killed (the next start removes it).
  await runChecked(['setpriv', '--pdeathsig', 'KILL', '--', 'cp', '-a', '--reflink=auto', '--', from, to], signal ? { signal } : {});
}

/** syncfs(2) of the filesystem holding `path`. */
export async function syncFileSystem(path: string): Promise<void> {
  await runChecked(['sync', '--file-system', '--', path]);
}

export async function treeSize(path: string): Promise<number> {
  try {
    const { stdout } = await runChecked(['du', '-sb', '--one-file-system', '--', path]);
    return Number(stdout.split('\t')[0]) || 0;
  } catch {
    return 0;
  }
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points at or below `path` in our mount namespace, deepest first. */
export function mountsBelow(path: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountPath)
    .filter((p) => p === path || p.startsWith(`${path}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Removes a build tree. Anything still mounted below it (a build tool killed mid-way outside its private mount
 * namespace) is detached first, and `rm --one-file-system` never descends into another filesystem, so a leftover
 * bind mount of /dev or /proc can never make us delete the host's files.
 */
export async function removeTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const point of mountsBelow(path)) await runChecked(['umount', '-l', '--', point]).catch(() => undefined);
  // Our subvolumes sit at `<dir>/rootfs`; rm --one-file-system would refuse to cross into them.
  for (const candidate of [`${path}/rootfs`, path]) {
    if (isSubvolume(candidate)) await runChecked(['btrfs', 'subvolume', 'delete', '--', candidate]);
  }
  if (existsSync(path)) await runChecked(['rm', '-rf', '--one-file-system', '--', path]);
}

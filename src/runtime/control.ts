/**
 * The control directory: the one host directory a container can write that the host also writes into (step
 * scripts, wrappers, status files, the boot agent's pipes). Everything in it is hostile: a step may have replaced
 * any entry with a symlink to a host path, a FIFO or a device node. So the host never opens an existing entry
 * there for writing and never follows one:
 * - a file or FIFO is made in a host-only staging directory beside it (exclusive create), given its owner and mode
 *   there, and renamed into place; rename replaces whatever the container left under that name without following it;
 * - names carry a random token, so a step cannot prepare the names of later steps' files;
 * - results are read with `readContainerFile`: regular files only, never through a link, at most N bytes.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chown, lstat, mkdir, open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../lib/process.js';

export interface ControlDir {
  /** Bound into the container (read-write): hostile after the first container started. */
  readonly shared: string;
  /** Host-only: never bound, so its entries are what the host made. */
  readonly staging: string;
}

export async function createControlDir(scratch: string): Promise<ControlDir> {
  const dir = { shared: join(scratch, 'control'), staging: join(scratch, 'control-staging') };
  await mkdir(dir.shared, { recursive: true, mode: 0o755 });
  await mkdir(dir.staging, { recursive: true, mode: 0o700 });
  return dir;
}

/** A name no step can guess ahead: `<prefix>-<16 hex digits>`. */
export function controlToken(prefix: string): string {
  return `${prefix}-${randomBytes(8).toString('hex')}`;
}

/**
 * The shared directory's owner: files a private-users container must write are given to it. (The directory
 * itself cannot have been replaced: its parent is host-only scratch.)
 */
async function sharedOwner(dir: ControlDir): Promise<{ uid: number; gid: number }> {
  const st = await stat(dir.shared);
  return { uid: st.uid, gid: st.gid };
}

/** Writes `name` into the shared directory without ever following what a container left there. */
export async function publishFile(dir: ControlDir, name: string, content: string, mode: number): Promise<string> {
  const staged = join(dir.staging, name);
  await writeFile(staged, content, { flag: 'wx', mode });
  const owner = await sharedOwner(dir);
  await chown(staged, owner.uid, owner.gid);
  const target = join(dir.shared, name);
  await rename(staged, target);
  return target;
}

/** Makes FIFOs in staging (so the caller can open them while only the host can reach them); publish with `publishStaged`. */
export async function makeStagedFifos(dir: ControlDir, names: string[]): Promise<string[]> {
  const paths = names.map((n) => join(dir.staging, n));
  await runChecked(['mkfifo', '-m', '0600', '--', ...paths]);
  const owner = await sharedOwner(dir);
  for (const p of paths) await chown(p, owner.uid, owner.gid);
  return paths;
}

export async function publishStaged(dir: ControlDir, name: string): Promise<string> {
  const target = join(dir.shared, name);
  await rename(join(dir.staging, name), target);
  return target;
}

/** Removes an entry of the shared directory (unlink never follows a link); gone already is fine. */
export async function unpublish(dir: ControlDir, name: string): Promise<void> {
  await unlink(join(dir.shared, name)).catch(() => undefined);
}

/**
 * Reads a file a container may have written: null unless it is a regular file reached without a symlink, and at
 * most `maxBytes` of it. O_NONBLOCK keeps a FIFO swapped in between lstat and open from blocking; the inode check
 * refuses anything swapped in at all.
 */
export async function readContainerFile(path: string, maxBytes: number): Promise<string | null> {
  let before;
  try {
    before = await lstat(path);
  } catch {
    return null;
  }
  if (!before.isFile()) return null;
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    return null;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== before.ino || st.dev !== before.dev) return null;
    const buffer = Buffer.alloc(Math.min(maxBytes, Math.max(0, st.size)));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

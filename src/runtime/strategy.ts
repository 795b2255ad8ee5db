/**
 * How a cell's root is made copy-on-write. On btrfs a subvolume snapshot (`--ephemeral`) is cheap; everywhere
 * else `--ephemeral` copies the whole tree (seconds per container), so an overlay with an on-disk upper layer is
 * used instead: its cost does not grow with the image size.
 */
import { statfs, stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { EphemeralStrategy, HostInfo } from './types.js';

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** Inode number of the root directory of every btrfs subvolume. */
const BTRFS_SUBVOLUME_INODE = 256;

export const STRATEGIES: readonly EphemeralStrategy[] = ['overlay', 'btrfs-snapshot', 'volatile', 'copy'];

export async function isBtrfsSubvolume(path: string): Promise<boolean> {
  try {
    const fs = await statfs(path);
    if (fs.type !== BTRFS_SUPER_MAGIC) return false;
    return (await stat(path)).ino === BTRFS_SUBVOLUME_INODE;
  } catch {
    return false;
  }
}

/** Pure part of the choice, given what the image root is. */
export function pickStrategy(facts: { btrfsSubvolume: boolean; overlayfs: boolean }): EphemeralStrategy {
  if (facts.btrfsSubvolume) return 'btrfs-snapshot';
  if (facts.overlayfs) return 'overlay';
  return 'copy';
}

export async function chooseStrategy(
  root: string,
  host: HostInfo,
  override?: EphemeralStrategy,
  options: { privateUsers?: boolean } = {},
): Promise<EphemeralStrategy> {
  // nspawn (252) refuses --private-users together with an overlay mounted over "/".
  if (options.privateUsers && override === 'overlay') {
    throw new UsageError('--ephemeral-strategy=overlay cannot be combined with private-users: true (use copy, volatile or btrfs-snapshot)');
  }
  if (override) {
    if ((override === 'overlay' || override === 'volatile') && !host.overlayfs) {
      throw new UsageError(`--ephemeral-strategy=${override}: this kernel has no overlayfs`);
    }
    return override;
  }
  const picked = pickStrategy({ btrfsSubvolume: await isBtrfsSubvolume(root), overlayfs: host.overlayfs });
  return options.privateUsers && picked === 'overlay' ? 'copy' : picked;
}

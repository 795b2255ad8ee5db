/**
 * The cell's copy-on-write root, made once per cell so that files persist between its steps and vanish with it:
 * - overlay: nothing to make here; nspawn layers an on-disk upper directory over the read-only image.
 * - btrfs-snapshot: a subvolume snapshot of the image (instant), deleted on release.
 * - copy: `cp -a --reflink=auto` of the image (slow on ext4; the fallback without overlayfs, and what private
 *   users need: nspawn refuses `--private-users` with an overlay over `/`).
 * - volatile: nspawn's `--volatile=overlay` (tmpfs upper layer, discarded after every step).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../lib/process.js';
import type { EphemeralStrategy } from './types.js';

export interface CellRoot {
  /** What nspawn's `-D` gets. */
  root: string;
  /** Overlay strategy only. */
  rootUpperDir?: string;
  release(): Promise<void>;
}

export async function prepareCellRoot(strategy: EphemeralStrategy, imageRoot: string, scratch: string): Promise<CellRoot> {
  switch (strategy) {
    case 'overlay': {
      const rootUpperDir = join(scratch, 'root-upper');
      await mkdir(rootUpperDir, { recursive: true });
      // Inside the container's scratch directory, removed with it: a walk of its own would only add a second one.
      return { root: imageRoot, rootUpperDir, release: async () => undefined };
    }
    case 'volatile':
      return { root: imageRoot, release: async () => undefined };
    case 'btrfs-snapshot': {
      const root = join(scratch, 'rootfs');
      await runChecked(['btrfs', 'subvolume', 'snapshot', imageRoot, root]);
      return {
        root,
        release: async () => {
          await runChecked(['btrfs', 'subvolume', 'delete', root]).catch(() => undefined);
          await rm(root, { recursive: true, force: true });
        },
      };
    }
    case 'copy': {
      const root = join(scratch, 'rootfs');
      const release = () => rm(root, { recursive: true, force: true });
      try {
        await runChecked(['cp', '-a', '--reflink=auto', imageRoot, root]);
      } catch (error) {
        await release();
        throw error;
      }
      return { root, release };
    }
  }
}

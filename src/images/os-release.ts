/** Reading an image tree's os-release without ever following a link out of the tree onto the host's. */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

/** `relative` (inside the tree) with symlinks resolved inside `root`, a few levels deep; undefined if missing. */
function readInside(root: string, relative: string, depth = 0): string | undefined {
  if (depth > 8) return undefined;
  const path = join(root, normalize(`/${relative}`));
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (st.isSymbolicLink()) {
    const target = readlinkSync(path);
    const next = target.startsWith('/') ? target : join(dirname(normalize(`/${relative}`)), target);
    return readInside(root, next, depth + 1);
  }
  return st.isFile() ? readFileSync(path, 'utf8') : undefined;
}

/** /etc/os-release, else /usr/lib/os-release, of the tree at `root` (os-release(5)). */
export function readOsRelease(root: string): string | undefined {
  return readInside(root, 'etc/os-release') ?? readInside(root, 'usr/lib/os-release');
}

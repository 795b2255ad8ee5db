/**
 * Host paths that reach a container (binds, the source tree, `path:` images, the artifacts directory) or that
 * nsmatrix writes to as root (`--output`, `--state-dir`): resolved through symlinks, then checked against the
 * places no step may reach. Pure apart from realpath.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ROOT_CACHE_DIR } from './root-cache.js';

/** Kernel interfaces: a step that reaches them reaches the host's processes, devices and kernel settings. */
export const PSEUDO_FILESYSTEMS = ['/proc', '/sys', '/dev'] as const;

/** `a` is `b` or lies below it (both absolute and resolved). */
export function isWithin(a: string, b: string): boolean {
  const rel = relative(b, a);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * The path with every existing component resolved through symlinks: the real path when it exists, else the real
 * path of its nearest existing ancestor joined with the rest (what `mkdir -p` would create).
 */
export function realOrResolved(path: string): string {
  const absolute = resolve(path);
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    try {
      return join(realpathSync(current), ...missing.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return absolute;
      missing.push(basename(current));
      current = parent;
    }
  }
}

/** The pseudo file system `path` (resolved) lies in, if any. */
export function pseudoFilesystemOf(path: string): string | undefined {
  return PSEUDO_FILESYSTEMS.find((p) => isWithin(path, p));
}

export interface GuardedDirs {
  /** Resolved (realOrResolved) state and output directories. */
  stateDir: string;
  outputDir: string;
}

export interface ExposureOptions {
  /**
   * The container only reads the path (a read-only bind, an overlay lower layer): containing the output
   * directory is then harmless (the step sees the results, it cannot rewrite them).
   */
  readOnly?: boolean;
}

/**
 * Why the resolved host path `path` must not reach a container, or undefined when it may. Refused: `/`, anything
 * in /proc, /sys or /dev, the state directory and root's cache directory, anything inside them or containing them,
 * and (unless read-only) the output directory or anything containing it.
 */
export function exposureProblem(path: string, dirs: GuardedDirs, options: ExposureOptions = {}): string | undefined {
  if (path === '/') return "refusing to expose the host's root directory";
  const pseudo = pseudoFilesystemOf(path);
  if (pseudo) return `refusing to expose ${path}: it is in ${pseudo} (the host kernel's interface)`;
  if (isWithin(dirs.stateDir, path) || isWithin(path, dirs.stateDir)) {
    return `refusing to expose nsmatrix's state directory (${dirs.stateDir}), a directory inside it or one containing it`;
  }
  // Root's caches hold code root runs (the CLI's compiled bundle): as much nsmatrix's own as the state directory.
  if (isWithin(ROOT_CACHE_DIR, path) || isWithin(path, ROOT_CACHE_DIR)) {
    return `refusing to expose ${ROOT_CACHE_DIR} (the code and data root's nsmatrix caches), a directory inside it or one containing it`;
  }
  if (!options.readOnly && isWithin(dirs.outputDir, path)) {
    return `refusing to expose the output directory (${dirs.outputDir}) or a directory containing it`;
  }
  return undefined;
}

/** `path:` and `machine:` bases: an existing directory used read-only in place, keyed by a cheap fingerprint. */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError, UsageError } from '../../errors.js';
import { pseudoFilesystemOf } from '../../lib/host-paths.js';
import type { BaseBuilder } from './types.js';

export const MACHINES_DIR = '/var/lib/machines';

/** The directory's identity and the mtime/size of its top-level entries: changes when the tree is replaced. */
export function treeFingerprint(path: string): string[] {
  const top = statSync(path);
  const entries = readdirSync(path).sort();
  return [`${top.dev}:${top.ino}:${top.mtimeMs}`, ...entries.map((name) => {
    const st = statSync(join(path, name), { throwIfNoEntry: false });
    return st ? `${name}:${st.mtimeMs}:${st.size}` : `${name}:gone`;
  })];
}

export function checkRootDirectory(label: string, path: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new InfraError(`${label} ${path} does not exist`);
  if (!st.isDirectory()) throw new InfraError(`${label} ${path} is not a directory`);
  const usr = statSync(join(path, 'usr'), { throwIfNoEntry: false });
  if (!usr?.isDirectory()) throw new InfraError(`${label} ${path} does not look like a root filesystem (no usr/)`);
}

/**
 * The directory a container will run on, resolved through symlinks: never the host's own root (the container
 * would see and, with some strategies, write the whole host) nor a kernel interface. Returns the real path.
 */
export function refuseHostRoot(label: string, path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return path; // checkRootDirectory says what is wrong
  }
  if (real === '/') throw new UsageError(`nsmatrix: ${label} ${path}: refusing to use the host's root directory as an image`);
  const pseudo = pseudoFilesystemOf(real);
  if (pseudo) throw new UsageError(`nsmatrix: ${label} ${path}: refusing to use a directory in ${pseudo} as an image`);
  return real;
}

function inPlaceBuilder(kind: string, label: string, given: string): BaseBuilder {
  const path = refuseHostRoot(label, given);
  checkRootDirectory(label, path);
  return {
    kind,
    keyInputs: { layer: 'base', kind, path, fingerprint: treeFingerprint(path) },
    madeFrom: `${label} ${path} (used read-only in place)`,
    existingRoot: path,
    build: () => Promise.reject(new InfraError(`${label} ${path} is used in place, never built`)),
  };
}

export function directoryBuilder(path: string): BaseBuilder {
  return inPlaceBuilder('directory', 'path:', path);
}

export function machineBuilder(machine: string, machinesDir = MACHINES_DIR): BaseBuilder {
  return inPlaceBuilder('machine', `machine ${machine}:`, join(machinesDir, machine));
}

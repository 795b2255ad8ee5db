/** `path:` and `machine:` bases: an existing directory used read-only in place, keyed by a cheap fingerprint. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from '../../errors.js';
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

function inPlaceBuilder(kind: string, label: string, path: string): BaseBuilder {
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

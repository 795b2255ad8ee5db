/** systemd-nspawn's per-machine mount propagation directories on the host: one a killed nspawn leaves behind. */
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

export const PROPAGATE_ROOT = '/run/systemd/nspawn/propagate';

/**
 * Removes the propagation directory systemd-nspawn made for `machine` (an nspawn that is SIGKILLed leaves it, on
 * every host, however the container is then stopped). rmdir only: it is empty unless something was put in it, and
 * then it stays. True when it was there and is gone.
 */
export function removePropagateDir(machine: string, root = PROPAGATE_ROOT): boolean {
  try {
    rmdirSync(join(root, machine));
    return true;
  } catch {
    return false;
  }
}

/** Machine names (`--machine=`) of the systemd-nspawn processes running on this host now. */
function runningMachines(): Set<string> {
  const machines = new Set<string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    for (const arg of argv) if (arg.startsWith('--machine=')) machines.add(arg.slice('--machine='.length));
  }
  return machines;
}

/**
 * Removes the propagation directories of image-build containers (`prefix*`) that no running nspawn owns: those of
 * builds whose nsmatrix was SIGKILLed (no one was left to remove them). Returns the paths removed.
 */
export function sweepPropagateDirs(prefix: string, root = PROPAGATE_ROOT): string[] {
  let names: string[];
  try {
    names = readdirSync(root).filter((name) => name.startsWith(prefix));
  } catch {
    return [];
  }
  if (names.length === 0) return [];
  const running = runningMachines();
  return names.filter((name) => !running.has(name) && removePropagateDir(name, root)).map((name) => join(root, name));
}

/**
 * One cgroup per systemd-nspawn process on hosts whose PID 1 is not systemd. Without it every container shares
 * the caller's cgroup: concurrent boots then hang now and then, and a killed nspawn can leave the payload running.
 * With it, whatever survives nspawn is found in the cgroup and killed, and the cgroup removed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostInfo } from './types.js';

// The per-container calls below are synchronous: a handful of tiny cgroupfs operations per step, each of which
// would otherwise take two trips through libuv's thread pool (measurable per cell on a loaded host).
export const CGROUP_ROOT = '/sys/fs/cgroup';
export const CGROUP_GROUP = 'nsmatrix';

/** The hierarchies a per-container cgroup is made in, for each layout. */
export function cgroupHierarchies(layout: HostInfo['cgroupLayout'], root = CGROUP_ROOT): string[] {
  switch (layout) {
    case 'unified':
      return [root];
    case 'hybrid':
      return [join(root, 'unified'), join(root, 'systemd')];
    case 'legacy':
      return [join(root, 'systemd')];
  }
}

export interface ContainerCgroup {
  /** Absolute cgroup directories, one per hierarchy. */
  readonly paths: string[];
  /** The `cgroup.procs` files a process writes its pid into to join every hierarchy. */
  readonly procsFiles: string[];
  /** Kills every process left in the cgroups and removes them. Idempotent. */
  destroy(): Promise<void>;
}

function readPids(dir: string): number[] {
  try {
    const text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    return text.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function subdirs(dir: string): string[] {
  try {
    const entries = readdirSync(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return [];
  }
}

/** Every pid in a cgroup and its descendants (nspawn makes `payload`/`supervisor` children below it). */
export async function cgroupPids(dir: string): Promise<number[]> {
  return cgroupPidsSync(dir);
}

function cgroupPidsSync(dir: string): number[] {
  const pids = readPids(dir);
  for (const child of subdirs(dir)) pids.push(...cgroupPidsSync(child));
  return pids;
}

function removeTree(dir: string): void {
  for (const child of subdirs(dir)) removeTree(child);
  try {
    rmdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills everything in the cgroup tree and waits (bounded) until it is empty. */
export async function killCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const killFile = join(dir, 'cgroup.kill');
  for (let round = 0; round < 100; round++) {
    const pids = cgroupPidsSync(dir);
    if (pids.length === 0) return;
    if (existsSync(killFile)) {
      await writeFile(killFile, '1').catch(() => undefined);
    } else {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await sleep(round < 10 ? 10 : 50);
  }
}

/** How long a killed cgroup may stay busy (its processes still exiting) before its removal is reported as failed. */
export const CGROUP_REMOVAL_MS = 10_000;

export async function destroyCgroupDir(dir: string, deadlineMs = CGROUP_REMOVAL_MS): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    await killCgroup(dir);
    try {
      removeTree(dir);
      return;
    } catch (error) {
      // EBUSY while killed processes are still exiting: their cgroup.procs entries go first, so it can outlast the
      // kill's own wait on a loaded host (seen: over a second during CI's emulated builds).
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() >= deadline) throw error;
      await sleep(20);
    }
  }
}

export async function createContainerCgroup(host: HostInfo, machine: string, root = CGROUP_ROOT): Promise<ContainerCgroup | null> {
  // Under systemd as PID 1, nspawn gets its own scope from systemd: do not write into systemd's tree.
  if (host.systemdIsPid1) return null;
  const paths: string[] = [];
  for (const hierarchy of cgroupHierarchies(host.cgroupLayout, root)) {
    if (!existsSync(join(hierarchy, 'cgroup.procs'))) continue;
    const dir = join(hierarchy, CGROUP_GROUP, machine);
    mkdirSync(dir, { recursive: true });
    paths.push(dir);
  }
  if (paths.length === 0) return null;
  let destroyed: Promise<void> | undefined;
  return {
    paths,
    procsFiles: paths.map((p) => join(p, 'cgroup.procs')),
    destroy: () => {
      destroyed ??= (async () => {
        for (const p of paths) await destroyCgroupDir(p);
      })();
      return destroyed;
    },
  };
}

/** A live run creates a cgroup a moment before its nspawn joins it: younger empty ones are left alone. */
export const CGROUP_GC_MIN_AGE_MS = 60_000;

/** Removes nsmatrix cgroups (of crashed runs) that hold no process. Returns what was removed. */
export async function gcCgroups(host: HostInfo, root = CGROUP_ROOT, minAgeMs = CGROUP_GC_MIN_AGE_MS): Promise<string[]> {
  const removed: string[] = [];
  for (const hierarchy of cgroupHierarchies(host.cgroupLayout, root)) {
    for (const dir of subdirs(join(hierarchy, CGROUP_GROUP))) {
      const age = await stat(dir).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age < minAgeMs || cgroupPidsSync(dir).length > 0) continue;
      try {
        removeTree(dir);
        removed.push(dir);
      } catch {
        // raced with a live run creating it: leave it
      }
    }
  }
  return removed;
}

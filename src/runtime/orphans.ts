/**
 * Which systemd-nspawn processes a run started, written beside each container's scratch, so that `gc` can stop
 * the containers of a run that was SIGKILLed. Under systemd as PID 1 nsmatrix makes no cgroups of its own (nspawn
 * gets a scope), so this record is the only way back to them; elsewhere it comes before the cgroup sweep.
 * A pid is trusted only together with the start time the kernel gave that process, so a reused pid is never hit.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const PID_RECORD = 'nspawn.pids';
export { PROPAGATE_ROOT, removePropagateDir } from '../lib/propagate.js';

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Appends `pid starttime` to the container's record (synchronously: right after spawn, before anything can kill us). */
export function recordNspawnPid(containerScratch: string, pid: number | undefined): void {
  if (pid === undefined) return;
  const started = startTime(pid);
  if (started !== null) appendFileSync(join(containerScratch, PID_RECORD), `${pid} ${started}\n`);
}

/** Children of `pid` (the container's init, in its own PID namespace, is one). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
  }
  return children;
}

/**
 * SIGKILLs every recorded nspawn that is still the one recorded, after its children: killing the container's init
 * ends its whole PID namespace, while nspawn's own death leaves the container running. Returns how many.
 */
export async function killRecordedNspawns(containerScratch: string): Promise<number> {
  const text = await readFile(join(containerScratch, PID_RECORD), 'utf8').catch(() => '');
  let killed = 0;
  for (const line of text.split('\n')) {
    const [pidText, started] = line.split(' ');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 1 || !started || startTime(pid) !== started) continue;
    for (const target of [...(await childrenOf(pid)), -pid, pid]) {
      try {
        // nspawn was started in its own process group; killing it ends the container's PID namespace with it.
        process.kill(target, 'SIGKILL');
      } catch {
        // gone, or no such group
      }
    }
    killed++;
  }
  return killed;
}

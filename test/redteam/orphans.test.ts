/**
 * A run SIGKILLed mid-step leaves its containers running. On a host whose PID 1 is systemd they live in scopes of
 * systemd's, not in cgroups of nsmatrix, so `gc` must find them another way. Emulated here: after the kill, the
 * orphaned container's processes are moved out of nsmatrix's cgroups, and gc is told the host is systemd's.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { detectHost } from '../../src/lib/host.js';
import { gcRuntime } from '../../src/runtime/index.js';
import { requireContainerHost } from '../helpers/host.js';
import { processesMentioning, project, settle, start } from '../hardening/harness.js';

const stateDir = inject('stateDir');
/** Where systemd-nspawn makes a directory per machine on the host (for `machinectl bind`), removed by nspawn when it can. */
const PROPAGATE_ROOT = '/run/systemd/nspawn/propagate';
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-orphans-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every pid in a cgroup directory and below it. */
function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) pids.push(...cgroupPids(join(dir, entry.name)));
  return pids;
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  rmdirSync(dir);
}

describe('gc after a SIGKILLed run', () => {
  it('stops containers that are in no cgroup of nsmatrix (systemd as PID 1)', async () => {
    const marker = `sleep ${6000 + Math.floor(Math.random() * 900)}`;
    const file = project(join(work, 'p'), `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: long\n    run: ${marker}\n`);
    const run = start(['run', file, '--state-dir', stateDir, '-o', join(work, 'out'), '--plain']);
    expect(await run.seen(/step "long"/)).toBe(true);
    await settle(() => (processesMentioning([marker]).length > 0 ? [] : ['not yet']));
    expect(processesMentioning([marker]).length).toBeGreaterThan(0);
    run.child.kill('SIGKILL');
    await run.done;

    // Out of nsmatrix's cgroups, as if systemd had put them in a scope of its own.
    const runs = readdirSync(join(stateDir, 'run'));
    const machines = runs.flatMap((r) => readdirSync(join(stateDir, 'run', r)).filter((n) => n.startsWith('nsm-')));
    for (const machine of machines) {
      for (const hierarchy of ['unified', 'systemd']) {
        for (const pid of cgroupPids(`/sys/fs/cgroup/${hierarchy}/nsmatrix/${machine}`)) {
          try {
            writeFileSync(`/sys/fs/cgroup/${hierarchy}/cgroup.procs`, `${pid}\n`);
          } catch {
            // exited meanwhile
          }
        }
      }
    }
    expect(processesMentioning([marker]).length, 'the orphan must still run before gc').toBeGreaterThan(0);

    try {
      await gcRuntime(stateDir, { ...detectHost(), systemdIsPid1: true });
      expect(await settle(() => processesMentioning([marker]))).toEqual([]);
    } finally {
      // Whatever the assertion says, leave nothing running; the emulation's cgroups go with an ordinary gc.
      for (const line of processesMentioning([marker])) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
      await gcRuntime(stateDir);
      // The emulation's empty cgroups are too young for gc's sweep (it spares those of runs just starting).
      for (const machine of machines) {
        for (const hierarchy of ['unified', 'systemd']) removeCgroupTree(`/sys/fs/cgroup/${hierarchy}/nsmatrix/${machine}`);
      }
    }
    expect(machines.flatMap((m) => ['unified', 'systemd'].filter((h) => existsSync(`/sys/fs/cgroup/${h}/nsmatrix/${m}`)))).toEqual([]);
  });

  it('removes the propagation directory under /run that a SIGKILLed systemd-nspawn leaves', async () => {
    const marker = `sleep ${7000 + Math.floor(Math.random() * 900)}`;
    const file = project(join(work, 'q'), `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: long\n    run: ${marker}\n`);
    const run = start(['run', file, '--state-dir', stateDir, '-o', join(work, 'out-q'), '--plain']);
    const machines: string[] = [];
    try {
      expect(await run.seen(/step "long"/)).toBe(true);
      await settle(() => (processesMentioning([marker]).length > 0 ? [] : ['not yet']));
      const scratch = readdirSync(join(stateDir, 'run')).filter((r) => r.startsWith(`${run.child.pid}-`));
      machines.push(...scratch.flatMap((r) => readdirSync(join(stateDir, 'run', r)).filter((n) => n.startsWith('nsm-'))));
      expect(machines.length).toBeGreaterThan(0);
      expect(machines.filter((m) => existsSync(join(PROPAGATE_ROOT, m))), 'nspawn makes one per machine').toEqual(machines);
    } finally {
      run.child.kill('SIGKILL');
      await run.done;
    }

    // gc SIGKILLs the orphaned nspawn, which therefore cannot clean up after itself: gc must.
    const removed = await gcRuntime(stateDir);
    expect(await settle(() => processesMentioning([marker]))).toEqual([]);
    expect(machines.filter((m) => existsSync(join(PROPAGATE_ROOT, m)))).toEqual([]);
    expect(removed).toEqual(expect.arrayContaining(machines.map((m) => join(PROPAGATE_ROOT, m))));
  });
});

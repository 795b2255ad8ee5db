/**
 * One ephemeral container per cell: scratch directories (overlay upper layers, control files) under the run's
 * scratch directory, the copy-on-write strategy, and exec/close. Everything created is registered in
 * `resources` while alive and removed by `close()` (idempotent).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InfraError } from '../errors.js';
import { detectHost } from '../lib/host.js';
import { runChecked } from '../lib/process.js';
import { resources } from '../lib/resources.js';
import { dropsSysAdmin, MACHINE_PREFIX, machineName } from '../lib/nspawn.js';
import { cellInvocation, type NspawnPlan } from './args.js';
import { validateBinds } from './binds.js';
import { bootContainer, summariseJournal, type BootedContainer } from './boot.js';
import { CGROUP_GROUP, cgroupHierarchies, createContainerCgroup, destroyCgroupDir, gcCgroups } from './cgroup.js';
import { createControlDir } from './control.js';
import { disarmTree } from './disarm.js';
import { armStep, execStep, type ArmedStep } from './exec.js';
import { sweepPropagateDirs } from '../lib/propagate.js';
import { killRecordedNspawns, PROPAGATE_ROOT, removePropagateDir } from './orphans.js';
import { prepareCellRoot, type CellRoot } from './root.js';
import { chooseStrategy } from './strategy.js';
import type { Container, ContainerOptions, HostInfo } from './types.js';

const RUN_DIR = 'run';
const OWNER_FILE = 'owner.pid';

let machineCounter = 0;
const processToken = randomBytes(6).toString('hex');

/**
 * `<stateDir>/run/<pid>-<random>/`: this process's scratch (not /tmp: overlay upper layers can grow large and
 * must live on the same kind of disk as the images). The owner pid lets `gcRuntime` find crashed runs.
 */
export async function createRunScratch(stateDir: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = join(stateDir, RUN_DIR, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, OWNER_FILE), `${process.pid}\n`);
  const entry = resources.add(`run scratch ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return { dir, remove: () => entry.release() };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes scratch directories of dead runs and empty nsmatrix cgroups. Returns what was removed. */
export async function gcRuntime(stateDir: string, host: HostInfo = detectHost(), options: { cgroupMinAgeMs?: number } = {}): Promise<string[]> {
  const removed: string[] = [];
  const runRoot = join(stateDir, RUN_DIR);
  const entries = existsSync(runRoot) ? await readdir(runRoot) : [];
  for (const name of entries) {
    const dir = join(runRoot, name);
    const owner = Number((await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => '')).trim() || name.split('-')[0]);
    if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) continue;
    // A run killed with SIGKILL leaves its containers running: stop them before removing their scratch. Its own
    // record of nspawn processes works on every host; the cgroups exist only where PID 1 is not systemd.
    for (const machine of (await readdir(dir)).filter((n) => n.startsWith(MACHINE_PREFIX))) {
      if ((await killRecordedNspawns(join(dir, machine))) > 0) removed.push(`containers of ${join(dir, machine)}`);
      if (!host.systemdIsPid1) {
        for (const hierarchy of cgroupHierarchies(host.cgroupLayout)) {
          const cgroup = join(hierarchy, CGROUP_GROUP, machine);
          if (existsSync(cgroup)) {
            await destroyCgroupDir(cgroup);
            removed.push(cgroup);
          }
        }
      }
      // The killed nspawn could not remove its propagation directory under /run.
      if (removePropagateDir(machine)) removed.push(join(PROPAGATE_ROOT, machine));
    }
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  if (!host.systemdIsPid1) removed.push(...(await gcCgroups(host, undefined, options.cgroupMinAgeMs)));
  // Those of containers whose scratch is gone already (an earlier gc, another state directory): any no nspawn owns.
  removed.push(...sweepPropagateDirs(MACHINE_PREFIX));
  return removed;
}

function imageHasPerl(root: string): boolean {
  return ['usr/bin/perl', 'bin/perl'].some((p) => existsSync(join(root, p)));
}

export async function openContainer(opts: ContainerOptions): Promise<Container> {
  const host = detectHost();
  if (opts.boot && opts.privateUsers && !host.systemdIsPid1) {
    // Measured: the container's systemd cannot create its init.scope in a cgroup the host's root owns, and without a
    // host manager nothing delegates one to the picked uid range, so it exits at once.
    throw new InfraError(
      `cell ${opts.cellId}: boot: true with private-users: true needs systemd as the host's PID 1 (to delegate a cgroup to the container's users); this host's PID 1 is not systemd: drop one of the two`,
    );
  }
  const strategy = await chooseStrategy(opts.root, host, opts.strategy, { privateUsers: opts.privateUsers });
  const machine = machineName(opts.cellId, processToken, ++machineCounter);
  const binds = opts.stateDir && opts.outputDir ? validateBinds(opts.binds, { stateDir: opts.stateDir, outputDir: opts.outputDir }) : opts.binds;

  const scratch = join(opts.scratchDir, machine);
  // Synchronous: a few small directories whose asynchronous removal costs a thread-pool round trip per entry.
  const scratchEntry = resources.add(`container scratch ${scratch}`, async () => rmSync(scratch, { recursive: true, force: true }));
  const sourceUpperDir = opts.uppers?.source ?? join(scratch, 'src');
  const artifactsDir = join(opts.cellOutputDir, 'artifacts');
  const journalDir = opts.boot ? join(opts.cellOutputDir, 'journal') : undefined;
  for (const dir of [sourceUpperDir, artifactsDir, ...(journalDir ? [journalDir] : [])]) {
    await mkdir(dir, { recursive: true });
  }
  const control = await createControlDir(scratch);

  let cellRoot: CellRoot;
  try {
    const keptUpper = strategy === 'overlay' ? opts.uppers?.root : undefined;
    cellRoot = keptUpper ? { root: opts.root, rootUpperDir: keptUpper, release: async () => undefined } : await prepareCellRoot(strategy, opts.root, scratch);
  } catch (error) {
    await scratchEntry.release();
    throw new InfraError(`cannot make the ${strategy} root of cell ${opts.cellId}: ${(error as Error).message}`, { cause: error });
  }
  // Released before the scratch directory itself (a btrfs snapshot needs its own delete).
  const rootEntry = resources.add(`cell root ${cellRoot.root}`, () => cellRoot.release());

  const sourceCopyDir = opts.privateUsers && opts.sourceMode === 'overlay' ? join(scratch, 'src-copy') : undefined;
  if (sourceCopyDir) {
    try {
      await runChecked(['cp', '-a', '--reflink=auto', opts.sourceDir, sourceCopyDir]);
    } catch (error) {
      await rootEntry.release();
      await scratchEntry.release();
      throw new InfraError(`cannot copy the source tree for cell ${opts.cellId}: ${(error as Error).message}`, { cause: error });
    }
  }

  const plan: Omit<NspawnPlan, 'command'> = {
    host,
    machine,
    root: cellRoot.root,
    strategy,
    rootUpperDir: cellRoot.rootUpperDir,
    sourceDir: opts.sourceDir,
    sourceMode: opts.sourceMode,
    sourceUpperDir: opts.sourceMode === 'overlay' ? sourceUpperDir : undefined,
    sourceCopyDir,
    artifactsDir,
    controlDir: control.shared,
    journalDir,
    binds,
    mounts: opts.mounts ?? [],
    arch: opts.arch,
    network: opts.network,
    privateUsers: opts.privateUsers,
    boot: opts.boot,
    interactive: opts.interactive ?? false,
    env: { CI: 'true', NSMATRIX_CELL: opts.cellId, ...opts.env },
    nspawnExtra: opts.nspawnExtra,
  };
  const usePerl = imageHasPerl(opts.root);
  const noSeccomp = opts.noSeccomp ?? false;

  let booted: BootedContainer | undefined;
  let bootCgroupEntry: { release(): Promise<void> } | undefined;
  try {
    if (opts.boot) {
      const cgroup = await createContainerCgroup(host, machine);
      if (cgroup) bootCgroupEntry = resources.add(`cgroup ${machine}`, () => cgroup.destroy());
      booted = await bootContainer({
        plan,
        control,
        agentUnitPath: join(scratch, 'nsmatrix-agent.service'),
        usePerl,
        noSeccomp,
        cgroup,
        consoleLogPath: join(opts.cellOutputDir, 'console.log'),
      });
    }
  } catch (error) {
    await bootCgroupEntry?.release();
    removePropagateDir(machine);
    await rootEntry.release();
    await scratchEntry.release();
    throw error;
  }

  let closing: Promise<{ journal?: Awaited<ReturnType<typeof summariseJournal>> }> | undefined;
  const armed = new Set<ArmedStep>();
  return {
    machine,
    strategy,
    exec: (request) => (booted ? booted.exec(request) : execStep({ plan, control, usePerl, noSeccomp }, request)),
    ...(booted
      ? {}
      : {
          arm: async (request) => {
            if (closing) throw new Error(`container ${machine} is closed`);
            if (request.inheritStdio || request.interactive) throw new Error('an interactive step cannot be armed');
            const step = await armStep({ plan, control, usePerl, noSeccomp }, request, true);
            if (closing) {
              await step.discard();
              throw new Error(`container ${machine} was closed while a step was armed`);
            }
            armed.add(step);
            return {
              run: () => {
                armed.delete(step);
                return step.run();
              },
            };
          },
        }),
    close: () =>
      (closing ??= (async () => {
        try {
          // A step armed but never run (the run was cancelled first): its waiting process goes first.
          await Promise.all([...armed].map((step) => step.discard()));
          if (booted) {
            await booted.stop();
            await bootCgroupEntry?.release();
          }
          // Nothing of the container runs any more: what it wrote to host directories is disarmed before anyone uses it.
          await disarmTree(artifactsDir);
          if (opts.sourceMode === 'rw') await disarmTree(opts.sourceDir);
          if (!booted) return {};
          const withoutSysAdmin = dropsSysAdmin(cellInvocation({ ...plan, command: [] }));
          return { journal: await summariseJournal(journalDir!, opts.outputDir ?? dirname(opts.cellOutputDir), { withoutSysAdmin }) };
        } finally {
          await bootCgroupEntry?.release();
          // An nspawn that had to be SIGKILLed (past its stop's grace) left its propagation directory.
          removePropagateDir(machine);
          await rootEntry.release();
          await scratchEntry.release();
        }
      })()),
  };
}

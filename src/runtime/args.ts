/**
 * A cell's container options + host facts + one invocation -> what systemd-nspawn mounts where, spelled by the one
 * command-line module (lib/nspawn.ts). Pure: no I/O, so every option the runtime passes is unit-tested without root.
 */
import { nspawnPersonality } from '../lib/arch.js';
import type { HostInfo } from '../lib/host.js';
import { nspawnArgs, type NspawnInvocation, type NspawnMount } from '../lib/nspawn.js';
import type { BindSpec, NetworkMode, SourceMode } from '../matrix/types.js';
import type { EphemeralStrategy } from './types.js';

/** Where the control directory (step scripts, wrapper, status files) appears inside the container. */
export const CONTROL_MOUNT = '/run/nsmatrix';
export const SOURCE_MOUNT = '/src';
export const ARTIFACTS_MOUNT = '/artifacts';
export const JOURNAL_MOUNT = '/var/log/journal';
/** Boot mode: where the step agent's unit file appears (a runtime unit directory of the container's systemd). */
export const AGENT_UNIT_MOUNT = '/run/systemd/system/nsmatrix-agent.service';

export interface NspawnPlan {
  host: HostInfo;
  machine: string;
  /** The directory nspawn runs on: the image itself (overlay, volatile) or the cell's snapshot/copy of it. */
  root: string;
  strategy: EphemeralStrategy;
  /** Overlay strategy: the on-disk upper directory of the root overlay (kept between the steps of one cell). */
  rootUpperDir?: string;
  sourceDir: string;
  sourceMode: SourceMode;
  /** Overlay source mode: the upper directory that receives writes to /src. */
  sourceUpperDir?: string;
  /** Overlay source mode with private users: a per-cell copy of the source, bound instead. */
  sourceCopyDir?: string;
  artifactsDir: string;
  controlDir: string;
  /** Boot mode: host directory bound onto /var/log/journal. */
  journalDir?: string;
  /** Boot mode: the host file holding the step agent's unit (agent.ts), bound read-only where systemd finds it. */
  agentUnit?: string;
  binds: BindSpec[];
  /** nsmatrix's own further mounts (package cache overlay, `cache:` directories), after the matrix's binds. */
  mounts?: NspawnMount[];
  /** The cell's architecture (Debian name) and the host's: i386 on amd64 gets nspawn's x86 personality. */
  arch?: string;
  hostArch?: string;
  network: NetworkMode;
  privateUsers: boolean;
  boot: boolean;
  interactive: boolean;
  env: Record<string, string>;
  nspawnExtra: string[];
  /** Exec mode: the payload argv. Boot mode: arguments for the container's init (usually none). */
  command: string[];
}

/** What a cell mounts where: source, artifacts, the matrix's binds, the journal and agent (boot), the control dir. */
function cellMounts(plan: NspawnPlan): NspawnMount[] {
  const mounts: NspawnMount[] = [sourceMount(plan), { type: 'bind', host: plan.artifactsDir, container: ARTIFACTS_MOUNT }];
  for (const b of plan.binds) mounts.push({ type: 'bind', host: b.host, container: b.container, readOnly: b.readOnly });
  mounts.push(...(plan.mounts ?? []));
  if (plan.journalDir) mounts.push({ type: 'bind', host: plan.journalDir, container: JOURNAL_MOUNT });
  if (plan.boot && plan.agentUnit) mounts.push({ type: 'bind', host: plan.agentUnit, container: AGENT_UNIT_MOUNT, readOnly: true });
  mounts.push({ type: 'bind', host: plan.controlDir, container: CONTROL_MOUNT });
  return mounts;
}

function sourceMount(plan: NspawnPlan): NspawnMount {
  switch (plan.sourceMode) {
    case 'overlay':
      // Overlayfs cannot be idmapped: private-users cells get a per-cell copy of the source instead.
      if (plan.privateUsers) {
        if (!plan.sourceCopyDir) throw new Error('overlay source with private users needs sourceCopyDir');
        return { type: 'bind', host: plan.sourceCopyDir, container: SOURCE_MOUNT };
      }
      if (!plan.sourceUpperDir) throw new Error('overlay source needs sourceUpperDir');
      return { type: 'overlay', lower: plan.sourceDir, upper: plan.sourceUpperDir, container: SOURCE_MOUNT };
    case 'ro':
      return { type: 'bind', host: plan.sourceDir, container: SOURCE_MOUNT, readOnly: true };
    case 'rw':
      return { type: 'bind', host: plan.sourceDir, container: SOURCE_MOUNT };
  }
}

function rootWrites(plan: NspawnPlan): NspawnInvocation['rootWrites'] {
  switch (plan.strategy) {
    case 'overlay':
      if (!plan.rootUpperDir) throw new Error('overlay strategy needs rootUpperDir');
      return { overlayUpper: plan.rootUpperDir };
    case 'btrfs-snapshot':
    case 'copy':
      // `root` is already the cell's own snapshot or copy (made once per cell, so files persist between steps;
      // nspawn's --ephemeral would make a new one per invocation).
      return 'direct';
    case 'volatile':
      return 'volatile';
  }
}

/** A cell's plan as the one nspawn invocation description (lib/nspawn.ts). */
export function cellInvocation(plan: NspawnPlan): NspawnInvocation {
  return {
    host: plan.host,
    machine: plan.machine,
    root: plan.root,
    rootWrites: rootWrites(plan),
    payload: plan.boot ? 'boot' : 'pid2',
    pipe: !plan.interactive,
    chdir: SOURCE_MOUNT,
    env: plan.env,
    mounts: cellMounts(plan),
    privateNetwork: plan.network === 'private',
    privateUsers: plan.privateUsers,
    personality: nspawnPersonality(plan.arch, plan.hostArch),
    // Steps under a stub init need no mounts. A booted systemd does, but not CAP_SYS_ADMIN; with private users
    // that capability is the container's own user namespace's and binfmt_misc is then the container's own.
    denyMounts: !plan.boot ? 'syscalls' : plan.privateUsers ? undefined : 'capability',
    extra: plan.nspawnExtra,
    command: plan.command,
  };
}

export function buildNspawnArgs(plan: NspawnPlan): string[] {
  return nspawnArgs(cellInvocation(plan));
}

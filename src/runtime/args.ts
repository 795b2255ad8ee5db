/**
 * A cell's container options + host facts + one invocation -> the systemd-nspawn argv. Pure: no I/O, so every
 * option the runtime passes can be unit-tested without root.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import { hostNspawnArgs, hostNspawnEnv } from '../lib/host.js';
import type { BindSpec, NetworkMode, SourceMode } from '../matrix/types.js';
import type { EphemeralStrategy, HostInfo } from './types.js';

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
  network: NetworkMode;
  privateUsers: boolean;
  boot: boolean;
  interactive: boolean;
  env: Record<string, string>;
  nspawnExtra: string[];
  /** Exec mode: the payload argv. Boot mode: arguments for the container's init (usually none). */
  command: string[];
}

/** `nsm-<hash of cell id and run token>-<n>`: unique per container, a valid hostname, at most 64 characters. */
export function machineName(cellId: string, runToken: string, counter: number): string {
  const hash = createHash('sha256').update(`${runToken}\0${cellId}`).digest('hex').slice(0, 10);
  return `nsm-${hash}-${counter}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

function rootArgs(plan: NspawnPlan): string[] {
  switch (plan.strategy) {
    case 'overlay':
      if (!plan.rootUpperDir) throw new Error('overlay strategy needs rootUpperDir');
      // The image stays read-only; the "+" makes the lower layer the container's own root (the image).
      return ['--read-only', `--overlay=+/:${plan.rootUpperDir}:/`];
    case 'btrfs-snapshot':
    case 'copy':
      // `root` is already the cell's own snapshot or copy (made once per cell, so files persist between steps;
      // nspawn's --ephemeral would make a new one per invocation).
      return [];
    case 'volatile':
      return ['--volatile=overlay'];
  }
}

/**
 * A bind mount. With private users, host files would appear as "nobody" and be unwritable for the container's
 * root, so binds are idmapped (`:idmap`, systemd >= 250 on a kernel with idmapped mounts).
 */
function bind(plan: NspawnPlan, host: string, container: string, readOnly = false): string {
  return `${readOnly ? '--bind-ro' : '--bind'}=${escapeColons(host)}:${escapeColons(container)}${plan.privateUsers ? ':idmap' : ''}`;
}

function sourceArgs(plan: NspawnPlan): string[] {
  switch (plan.sourceMode) {
    case 'overlay':
      // Overlayfs cannot be idmapped: private-users cells get a per-cell copy of the source instead.
      if (plan.privateUsers) {
        if (!plan.sourceCopyDir) throw new Error('overlay source with private users needs sourceCopyDir');
        return [bind(plan, plan.sourceCopyDir, SOURCE_MOUNT)];
      }
      if (!plan.sourceUpperDir) throw new Error('overlay source needs sourceUpperDir');
      return [`--overlay=${plan.sourceDir}:${plan.sourceUpperDir}:${SOURCE_MOUNT}`];
    case 'ro':
      return [bind(plan, plan.sourceDir, SOURCE_MOUNT, true)];
    case 'rw':
      return [bind(plan, plan.sourceDir, SOURCE_MOUNT)];
  }
}

/** nspawn splits bind specs on ":"; colons inside paths must be escaped. */
function escapeColons(path: string): string {
  return path.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

export function buildNspawnArgs(plan: NspawnPlan): string[] {
  const args = ['--quiet', ...hostNspawnArgs(plan.host), `--machine=${plan.machine}`, '-D', plan.root];
  args.push(...rootArgs(plan));
  args.push(plan.boot ? '--boot' : '--as-pid2');
  if (!plan.interactive) args.push('--pipe');
  args.push(`--chdir=${SOURCE_MOUNT}`);
  for (const [name, value] of Object.entries(plan.env)) {
    if (!isValidEnvName(name)) throw new UsageError(`env: invalid environment variable name "${name}" (letters, digits and _, not starting with a digit)`);
    args.push(`--setenv=${name}=${value}`);
  }
  args.push(...sourceArgs(plan));
  args.push(bind(plan, plan.artifactsDir, ARTIFACTS_MOUNT));
  for (const b of plan.binds) args.push(bind(plan, b.host, b.container, b.readOnly));
  if (plan.journalDir) args.push(bind(plan, plan.journalDir, JOURNAL_MOUNT));
  if (plan.boot && plan.agentUnit) args.push(bind(plan, plan.agentUnit, AGENT_UNIT_MOUNT, true));
  if (plan.network === 'private') args.push('--private-network');
  if (plan.privateUsers) args.push('--private-users=pick');
  if ((plan.host.nspawnVersion ?? 0) >= 250) args.push('--suppress-sync=yes');
  args.push(bind(plan, plan.controlDir, CONTROL_MOUNT));
  args.push(...plan.nspawnExtra);
  args.push('--', ...plan.command);
  return args;
}

/**
 * Environment of the systemd-nspawn process itself (not of the payload). In exec mode every step is its own
 * nspawn over the cell's root, and nspawn would mount a fresh tmpfs on /tmp each time: SYSTEMD_NSPAWN_TMPFS_TMP=0
 * keeps /tmp on the cell's copy-on-write root, so files there persist between steps as users expect.
 */
export function nspawnEnvironment(host: HostInfo, options: { mode: 'exec' | 'boot'; noSeccomp: boolean }): Record<string, string> {
  return {
    ...hostNspawnEnv(host),
    ...(options.mode === 'exec' ? { SYSTEMD_NSPAWN_TMPFS_TMP: '0' } : {}),
    ...(options.noSeccomp ? { SYSTEMD_SECCOMP: '0' } : {}),
  };
}

/**
 * Every systemd-nspawn command line nsmatrix runs (a cell's steps, a booted cell, an image build), from one typed
 * description, with the rules this host needs (`--register=no --keep-unit` without systemd as PID 1, the unified
 * cgroup hierarchy on hybrid hosts, `--suppress-sync` where nspawn has it). Pure: no I/O, unit-tested without root.
 * The stages decide what to mount where (runtime/args.ts for cells, images/layer.ts for builds); this module alone
 * decides how that is spelled.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import type { HostInfo } from './host.js';

export type NspawnMount =
  | { type: 'bind'; host: string; container: string; readOnly?: boolean }
  /** `lower` shown at `container`, writes going to `upper` (overlayfs; never idmapped). */
  | { type: 'overlay'; lower: string; upper: string; container: string };

export interface NspawnInvocation {
  host: HostInfo;
  machine: string;
  /** The directory nspawn runs on. */
  root: string;
  /**
   * How the root is written: as it is (a private copy or snapshot), through an overlay whose upper directory is
   * kept on disk (the image itself stays read-only), or through a tmpfs that vanishes with the container.
   */
  rootWrites: 'direct' | { overlayUpper: string } | 'volatile';
  /** `pid2`: the payload under a stub init (steps); `boot`: the image's init (boot mode); `pid1`: the payload as init. */
  payload: 'pid2' | 'boot' | 'pid1';
  /** Pipes rather than a terminal for the payload's stdio. */
  pipe: boolean;
  chdir?: string;
  env: Record<string, string>;
  mounts: NspawnMount[];
  privateNetwork?: boolean;
  /** `--private-users=pick`; binds are then idmapped so that host files keep their owners inside. */
  privateUsers?: boolean;
  /** `--personality=`: the architecture `uname -m` reports inside (x86 for i386 containers on an x86-64 kernel). */
  personality?: 'x86';
  /**
   * How the container is kept from mounting. Container root (without private users) holds CAP_SYS_ADMIN in the
   * host's user namespace, and binfmt_misc is one filesystem for the whole kernel: mounted inside, its `register`
   * file lets a step install a handler (F flag: a container binary) that the host's root then runs for every file
   * it executes that matches, and its `status` file switches the host's handlers off.
   * - `syscalls`: no mount syscalls at all (`--system-call-filter=~@mount`; nspawn sets up its own mounts before
   *   the filter). For payloads that need no mounts: steps under a stub init, image builds.
   * - `capability`: the container has no CAP_SYS_ADMIN (a booted systemd needs mount syscalls, but copes without
   *   the capability once /run/lock, the one API mount nspawn does not make, is there). Left out when the matrix's
   *   own `nspawn:` options grant CAP_SYS_ADMIN back, on purpose.
   */
  denyMounts?: 'syscalls' | 'capability';
  /** Options passed through verbatim after nsmatrix's own (the matrix's `nspawn:`), so they win. */
  extra?: string[];
  /** The payload's argv, or (boot) the arguments of the container's init. */
  command: string[];
}

export const MACHINE_PREFIX = 'nsm-';

/** `nsm-<hash of cell id and run token>-<n>`: unique per container, a valid hostname, at most 64 characters. */
export function machineName(cellId: string, runToken: string, counter: number): string {
  const hash = createHash('sha256').update(`${runToken}\0${cellId}`).digest('hex').slice(0, 10);
  return `${MACHINE_PREFIX}${hash}-${counter}`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/** A word for POSIX sh, quoted so that nothing in it is interpreted. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Options every systemd-nspawn invocation on this host needs. */
export function hostNspawnArgs(host: HostInfo): string[] {
  return host.systemdIsPid1 ? [] : ['--register=no', '--keep-unit'];
}

/**
 * Environment every systemd-nspawn invocation on this host needs. On a hybrid cgroup host nspawn by default gives
 * the container the hybrid layout, which sid's systemd (262) refuses to boot on (nspawn exits 255). With
 * SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 the container sees a pure cgroup2 tree, as on a modern host: verified to boot
 * bullseye (247), bookworm (252) and sid (262), and harmless for exec-mode payloads. So it applies to every
 * invocation on a hybrid host, not only to boot mode: one layout for all containers.
 */
export function hostNspawnEnv(host: HostInfo): Record<string, string> {
  return host.cgroupLayout === 'hybrid' ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' } : {};
}

/**
 * Environment of the systemd-nspawn process itself (not of the payload). In exec mode every step is its own
 * nspawn over the cell's root, and nspawn would mount a fresh tmpfs on /tmp each time: SYSTEMD_NSPAWN_TMPFS_TMP=0
 * keeps /tmp on the cell's copy-on-write root, so files there persist between steps as users expect.
 */
export function nspawnEnvironment(host: HostInfo, options: { mode: 'exec' | 'boot' | 'build'; noSeccomp?: boolean }): Record<string, string> {
  return {
    ...hostNspawnEnv(host),
    ...(options.mode === 'exec' ? { SYSTEMD_NSPAWN_TMPFS_TMP: '0' } : {}),
    ...(options.noSeccomp ? { SYSTEMD_SECCOMP: '0' } : {}),
  };
}

/** nspawn splits mount specs on ":"; colons inside paths must be escaped. */
function escapeColons(path: string): string {
  return path.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/**
 * One mount as an nspawn option. With private users, host files would appear as "nobody" and be unwritable for
 * the container's root, so binds are idmapped (`:idmap`, systemd >= 250 on a kernel with idmapped mounts).
 */
export function mountOption(mount: NspawnMount, idmap = false): string {
  if (mount.type === 'overlay') return `--overlay=${escapeColons(mount.lower)}:${escapeColons(mount.upper)}:${escapeColons(mount.container)}`;
  return `${mount.readOnly ? '--bind-ro' : '--bind'}=${escapeColons(mount.host)}:${escapeColons(mount.container)}${idmap ? ':idmap' : ''}`;
}

function rootOptions(writes: NspawnInvocation['rootWrites']): string[] {
  if (writes === 'direct') return [];
  // The image stays read-only; the "+" makes the lower layer the container's own root (the image).
  if (writes === 'volatile') return ['--volatile=overlay'];
  return ['--read-only', `--overlay=+/:${escapeColons(writes.overlayUpper)}:/`];
}

const PAYLOAD_OPTIONS: Record<NspawnInvocation['payload'], string[]> = { pid2: ['--as-pid2'], boot: ['--boot'], pid1: [] };

/** What systemd mounts at /run/lock when it may (the same options), made by nspawn for a container that may not. */
const RUN_LOCK_TMPFS = '/run/lock:mode=1777,size=5242880,nosuid,nodev,noexec';

/** nspawn applies --drop-capability after every --capability, whatever their order: a grant must drop the drop. */
function grantsSysAdmin(extra: string[]): boolean {
  return extra.some((option) => {
    const match = /^--capability=(.*)$/.exec(option);
    return match !== null && match[1]!.split(',').some((cap) => cap === 'all' || cap === 'CAP_SYS_ADMIN');
  });
}

/** Whether the container runs without CAP_SYS_ADMIN (then its systemd can unmount nothing at shutdown either). */
export function dropsSysAdmin(inv: Pick<NspawnInvocation, 'denyMounts' | 'extra'>): boolean {
  return inv.denyMounts === 'capability' && !grantsSysAdmin(inv.extra ?? []);
}

/** The argv after `systemd-nspawn`. Throws UsageError for an environment name nspawn would refuse. */
export function nspawnArgs(inv: NspawnInvocation): string[] {
  // --link-journal=no: nspawn would otherwise read the host's machine ID (a host without one, like a CI container,
  // fails every start) to bind a host /var/log/journal directory into the container; boot mode binds its own.
  const args = ['--quiet', ...hostNspawnArgs(inv.host), '--link-journal=no', `--machine=${inv.machine}`, '-D', inv.root];
  args.push(...rootOptions(inv.rootWrites), ...PAYLOAD_OPTIONS[inv.payload]);
  if (inv.pipe) args.push('--pipe');
  if (inv.chdir) args.push(`--chdir=${inv.chdir}`);
  for (const [name, value] of Object.entries(inv.env)) {
    if (!isValidEnvName(name)) throw new UsageError(`env: invalid environment variable name "${name}" (letters, digits and _, not starting with a digit)`);
    args.push(`--setenv=${name}=${value}`);
  }
  for (const mount of inv.mounts) args.push(mountOption(mount, inv.privateUsers));
  if (inv.privateNetwork) args.push('--private-network');
  if (inv.privateUsers) args.push('--private-users=pick');
  if (inv.personality) args.push(`--personality=${inv.personality}`);
  if (inv.denyMounts === 'syscalls') args.push('--system-call-filter=~@mount');
  if (dropsSysAdmin(inv)) args.push('--drop-capability=CAP_SYS_ADMIN', `--tmpfs=${RUN_LOCK_TMPFS}`);
  if ((inv.host.nspawnVersion ?? 0) >= 250) args.push('--suppress-sync=yes');
  args.push(...(inv.extra ?? []), '--', ...inv.command);
  return args;
}

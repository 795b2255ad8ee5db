/** `nsmatrix doctor`: what this host can do for nsmatrix, each check with `ok`, `warn` or `FAIL` and a fix. */
import { existsSync, readFileSync } from 'node:fs';
import { access, constants, mkdir, rmdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ExitCode } from '../../errors.js';
import { resolveStateDir } from '../../images/index.js';
import { detectHost } from '../../lib/host.js';
import { PRIVATE_DIR_MODE, stateModeProblems, stateOwnerProblems, type ModeProblem } from '../../lib/private-dir.js';
import { CGROUP_GROUP, cgroupHierarchies } from '../../runtime/cgroup.js';
import type { HostInfo } from '../../lib/host.js';
import { archOverview, EMULATION_FIX, hostArch, readBinfmtEntries, type BinfmtEntry } from '../../lib/arch.js';

export type Level = 'ok' | 'warn' | 'FAIL';

export interface Check {
  level: Level;
  name: string;
  detail: string;
  fix?: string;
}

export interface DoctorFacts {
  host: HostInfo;
  btrfs: boolean;
  tools: Record<string, boolean>;
  /** Per-container cgroups could be made (null: not needed, systemd is PID 1). */
  cgroupsWritable: boolean | null;
  stateDir: string;
  stateDirWritable: boolean;
  /** Parts of an existing state directory other users can reach (they must be 0700, files 0600). */
  stateModes?: ModeProblem[];
  /** Parts of an existing state directory another user owns. */
  stateOwners?: { path: string; uid: number }[];
  freeBytes: number | null;
  /** The host's architecture and its binfmt_misc entries (absent: not gathered). */
  arch?: { host: string; entries: BinfmtEntry[] };
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8)}`;

const GiB = 1024 ** 3;

/** Pure: facts -> checks. */
export function doctorChecks(f: DoctorFacts): Check[] {
  const { host } = f;
  const checks: Check[] = [];
  const add = (level: Level, name: string, detail: string, fix?: string) => checks.push({ level, name, detail, ...(fix ? { fix } : {}) });

  add(host.isRoot ? 'ok' : 'FAIL', 'root', host.isRoot ? 'running as root' : 'not root: containers cannot start', 'run as root (as root: nsmatrix ...; else: sudo nsmatrix ...)');
  if (!host.nspawnPath) add('FAIL', 'systemd-nspawn', 'not found on PATH', 'apt-get install systemd-container');
  else if (host.nspawnVersion !== null && host.nspawnVersion < 250) {
    add('warn', 'systemd-nspawn', `${host.nspawnVersionText} at ${host.nspawnPath}: older than 250, so no --suppress-sync (slower package installs)`, 'upgrade systemd-container');
  } else add('ok', 'systemd-nspawn', `${host.nspawnVersionText ?? 'unknown version'} at ${host.nspawnPath}`);
  if (host.systemdIsPid1) add('ok', 'PID 1', 'systemd: containers get their own scope from systemd');
  else {
    add('ok', 'PID 1', 'not systemd: nsmatrix passes --register=no --keep-unit and gives each container its own cgroup');
  }
  add(host.overlayfs ? 'ok' : 'warn', 'overlayfs', host.overlayfs ? 'available: cells start in constant time' : 'missing: every cell copies its image (slow)', 'modprobe overlay');
  add(f.btrfs ? 'ok' : 'warn', 'btrfs', f.btrfs ? 'available: images on btrfs subvolumes are snapshotted' : 'not available (only matters for the btrfs-snapshot strategy)', 'apt-get install btrfs-progs');
  add(host.userNamespaces ? 'ok' : 'warn', 'user namespaces', host.userNamespaces ? 'enabled (private-users: true works)' : 'disabled: private-users: true will fail', 'sysctl user.max_user_namespaces=15000');

  const layoutText = { unified: 'unified (cgroup v2)', hybrid: 'hybrid (v1 + v2)', legacy: 'legacy (cgroup v1)' }[host.cgroupLayout];
  const hybridNote = host.cgroupLayout === 'hybrid' ? '; containers get SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (newer systemd refuses to boot on hybrid)' : '';
  // Only root can create cgroups: as another user the check says nothing about the host, so it does not blame it.
  if (!host.isRoot) add('warn', 'cgroups', `${layoutText}: per-container cgroups not checked (needs root)`, 'run as root: sudo nsmatrix doctor');
  else if (f.cgroupsWritable === false) add('FAIL', 'cgroups', `${layoutText}: cannot create per-container cgroups under /sys/fs/cgroup`, 'mount cgroupfs read-write (or run with systemd as PID 1)');
  else add(host.cgroupLayout === 'legacy' ? 'warn' : 'ok', 'cgroups', `${layoutText}${hybridNote}`, host.cgroupLayout === 'legacy' ? 'boot with systemd.unified_cgroup_hierarchy=1' : undefined);

  const tool = (names: string[], what: string, fix: string, missingLevel: Level = 'warn') => {
    const present = names.filter((n) => f.tools[n]);
    add(present.length ? 'ok' : missingLevel, names.join('/'), present.length ? `${present.join(', ')} found (${what})` : `missing: ${what}`, present.length ? undefined : fix);
  };
  tool(['mmdebstrap', 'debootstrap'], 'builds Debian images', 'apt-get install mmdebstrap', 'FAIL');
  // oci: images need both: skopeo talks to the registry, umoci unpacks the layers (Debian, Ubuntu, Fedora package both).
  tool(['skopeo'], 'pulls oci: images from registries', 'apt-get install skopeo (dnf install skopeo)');
  tool(['umoci'], 'unpacks oci: image layers', 'apt-get install umoci (dnf install umoci)');
  tool(['xmllint'], 'validates JUnit reports in CI', 'apt-get install libxml2-utils');

  add(f.stateDirWritable ? 'ok' : 'FAIL', 'state dir', `${f.stateDir} ${f.stateDirWritable ? 'is writable' : 'is not writable'}`, 'pass --state-dir DIR or run as root');
  if (f.stateModes && f.stateModes.length > 0) {
    const dirs = f.stateModes.filter((p) => p.want === PRIVATE_DIR_MODE).map((p) => p.path);
    const files = f.stateModes.filter((p) => p.want !== PRIVATE_DIR_MODE).map((p) => p.path);
    const fix = [dirs.length ? `chmod 700 ${dirs.join(' ')}` : '', files.length ? `chmod 600 ${files.join(' ')}` : ''].filter(Boolean).join(' && ');
    add(
      'FAIL',
      'state dir modes',
      `other users can reach ${f.stateModes.map((p) => `${p.path} (${octal(p.mode)})`).join(', ')}: image trees and cell roots hold setuid-root binaries`,
      `${fix} (every nsmatrix run and shell also does this before starting containers)`,
    );
  } else if (f.stateModes) add('ok', 'state dir modes', `${f.stateDir} and what nsmatrix keeps in it are private (0700, files 0600)`);
  if (f.stateOwners && f.stateOwners.length > 0) {
    const owned = f.stateOwners.map((p) => `${p.path} (uid ${p.uid})`).join(', ');
    add('FAIL', 'state dir owner', `owned by another user: ${owned}; they can open it up again or swap what nsmatrix keeps there`, `chown root:root ${f.stateOwners.map((p) => p.path).join(' ')} (or pass --state-dir DIR)`);
  }
  if (f.arch) {
    const { native, emulated, missing } = archOverview(f.arch.host, f.arch.entries);
    add('ok', 'arch native', native.join(', '));
    if (emulated.length > 0) add('ok', 'arch emulated', `${emulated.join(', ')} (qemu-user-static through binfmt_misc, F flag)`);
    if (missing.length > 0) add(emulated.length > 0 ? 'ok' : 'warn', 'arch missing', `${missing.join(', ')}: matrix cells of these architectures cannot run here`, EMULATION_FIX);
    if (emulated.length > 0 && !f.tools['arch-test'] && f.tools.mmdebstrap) {
      add('warn', 'arch-test', 'not installed: mmdebstrap refuses to build foreign-architecture images without it', 'apt-get install arch-test');
    }
  }
  if (f.freeBytes === null) add('warn', 'free space', `cannot measure free space at ${f.stateDir}`);
  else {
    const gib = f.freeBytes / GiB;
    add(gib < 2 ? 'FAIL' : gib < 10 ? 'warn' : 'ok', 'free space', `${gib.toFixed(1)} GiB free for images and overlays`, gib < 10 ? 'free space or pass --state-dir on a larger disk' : undefined);
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => `${c.level.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}${c.fix && c.level !== 'ok' ? `\n      ${' '.repeat(width)}  fix: ${c.fix}` : ''}`)
    .join('\n');
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => dir && existsSync(join(dir, name)));
}

async function nearestExisting(path: string): Promise<string> {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

async function canCreateCgroups(host: HostInfo): Promise<boolean | null> {
  if (host.systemdIsPid1) return null;
  try {
    for (const hierarchy of cgroupHierarchies(host.cgroupLayout)) {
      const probe = join(hierarchy, CGROUP_GROUP, `doctor-${process.pid}`);
      await mkdir(probe, { recursive: true });
      await rmdir(probe);
    }
    return true;
  } catch {
    return false;
  }
}

export async function gatherFacts(stateDirFlag?: string): Promise<DoctorFacts> {
  const host = detectHost();
  const stateDir = resolveStateDir(stateDirFlag);
  const existing = await nearestExisting(stateDir);
  const stateDirWritable = await access(existing, constants.W_OK).then(
    () => true,
    () => false,
  );
  const freeBytes = await statfs(existing).then(
    (s) => s.bavail * s.bsize,
    () => null,
  );
  let filesystems = '';
  try {
    filesystems = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    // unreadable: reported as missing
  }
  const tools = Object.fromEntries(['mmdebstrap', 'debootstrap', 'skopeo', 'umoci', 'xmllint', 'btrfs', 'arch-test'].map((t) => [t, onPath(t)]));
  return {
    host,
    btrfs: /\tbtrfs$/m.test(filesystems) || Boolean(tools.btrfs),
    tools,
    cgroupsWritable: host.isRoot ? await canCreateCgroups(host) : false,
    stateDir,
    stateDirWritable,
    ...(existsSync(stateDir) ? { stateModes: stateModeProblems(stateDir), stateOwners: stateOwnerProblems(stateDir) } : {}),
    freeBytes,
    arch: { host: hostArch(), entries: readBinfmtEntries() },
  };
}

export default async function doctor(args: { stateDir?: string }): Promise<number> {
  const checks = doctorChecks(await gatherFacts(args.stateDir));
  process.stdout.write(`${formatChecks(checks)}\n`);
  const failed = checks.filter((c) => c.level === 'FAIL').length;
  if (!checks.some((c) => c.name === 'root' && c.level === 'ok')) process.stdout.write('\nnsmatrix: run as root (sudo nsmatrix doctor): nsmatrix starts containers, which needs root\n');
  process.stdout.write(failed ? `\n${failed} ${failed === 1 ? 'check' : 'checks'} failed: nsmatrix cannot run containers here until they are fixed\n` : '\nthis host can run nsmatrix\n');
  return failed ? ExitCode.infrastructure : ExitCode.ok;
}

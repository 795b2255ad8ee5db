/**
 * CPU architectures by their Debian names (the matrix's `arch` axis), and what this host can run: natively, through
 * a qemu-user-static binfmt_misc entry carrying the F flag (the interpreter is opened at registration, so nothing is
 * needed inside the image), or not at all. Names and mappings are pure; host detection reads /proc and is cached.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { InfraError, UsageError } from '../errors.js';
import { didYouMean } from './did-you-mean.js';

export interface ArchInfo {
  /** `uname -m` inside a container of this architecture. */
  machine: string;
  /** binfmt_misc entry names qemu-user-static (and systemd-binfmt) register for it. */
  binfmt: string[];
  /** OCI platform: `architecture` and `variant`. */
  oci: { architecture: string; variant?: string };
  /** Architectures of a Linux kernel that run this one natively (besides itself). */
  nativeOn: string[];
}

/** Debian's release and ports architectures that a Linux amd64/arm64 host can run natively or under qemu-user. */
export const ARCHITECTURES: Record<string, ArchInfo> = {
  amd64: { machine: 'x86_64', binfmt: ['qemu-x86_64'], oci: { architecture: 'amd64' }, nativeOn: [] },
  i386: { machine: 'i686', binfmt: ['qemu-i386'], oci: { architecture: '386' }, nativeOn: ['amd64'] },
  arm64: { machine: 'aarch64', binfmt: ['qemu-aarch64'], oci: { architecture: 'arm64', variant: 'v8' }, nativeOn: [] },
  armhf: { machine: 'armv7l', binfmt: ['qemu-arm'], oci: { architecture: 'arm', variant: 'v7' }, nativeOn: [] },
  armel: { machine: 'armv7l', binfmt: ['qemu-arm'], oci: { architecture: 'arm', variant: 'v5' }, nativeOn: [] },
  ppc64el: { machine: 'ppc64le', binfmt: ['qemu-ppc64le'], oci: { architecture: 'ppc64le' }, nativeOn: [] },
  s390x: { machine: 's390x', binfmt: ['qemu-s390x'], oci: { architecture: 's390x' }, nativeOn: [] },
  riscv64: { machine: 'riscv64', binfmt: ['qemu-riscv64'], oci: { architecture: 'riscv64' }, nativeOn: [] },
  mips64el: { machine: 'mips64', binfmt: ['qemu-mips64el'], oci: { architecture: 'mips64le' }, nativeOn: [] },
  mipsel: { machine: 'mips', binfmt: ['qemu-mipsel'], oci: { architecture: 'mipsle' }, nativeOn: [] },
  loong64: { machine: 'loongarch64', binfmt: ['qemu-loongarch64'], oci: { architecture: 'loong64' }, nativeOn: [] },
  ppc64: { machine: 'ppc64', binfmt: ['qemu-ppc64'], oci: { architecture: 'ppc64' }, nativeOn: [] },
  powerpc: { machine: 'ppc', binfmt: ['qemu-ppc'], oci: { architecture: 'ppc' }, nativeOn: [] },
  sparc64: { machine: 'sparc64', binfmt: ['qemu-sparc64'], oci: { architecture: 'sparc64' }, nativeOn: [] },
  hppa: { machine: 'parisc', binfmt: ['qemu-hppa'], oci: { architecture: 'hppa' }, nativeOn: [] },
  m68k: { machine: 'm68k', binfmt: ['qemu-m68k'], oci: { architecture: 'm68k' }, nativeOn: [] },
  alpha: { machine: 'alpha', binfmt: ['qemu-alpha'], oci: { architecture: 'alpha' }, nativeOn: [] },
  sh4: { machine: 'sh4', binfmt: ['qemu-sh4'], oci: { architecture: 'sh4' }, nativeOn: [] },
};
// armhf on an arm64 kernel runs natively when the CPU has AArch32 (most do); armel too.
ARCHITECTURES.armhf!.nativeOn.push('arm64');
ARCHITECTURES.armel!.nativeOn.push('arm64');

export const ARCH_NAMES = Object.keys(ARCHITECTURES);

export function isArchName(name: string): boolean {
  return Object.hasOwn(ARCHITECTURES, name);
}

/** Node's `process.arch` to Debian's name. */
const NODE_TO_DEBIAN: Record<string, string> = {
  x64: 'amd64',
  ia32: 'i386',
  arm64: 'arm64',
  arm: 'armhf',
  ppc64: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64el',
};

/** The host's architecture, by Debian's name (what `dpkg --print-architecture` prints on a Debian host). */
export function hostArch(): string {
  const forced = process.env.NSMATRIX_HOST_ARCH;
  if (forced && isArchName(forced)) return forced;
  return NODE_TO_DEBIAN[process.arch] ?? process.arch;
}

export const BINFMT_DIR = '/proc/sys/fs/binfmt_misc';

export interface BinfmtEntry {
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
}

/** One `/proc/sys/fs/binfmt_misc/<name>` file. Pure. */
export function parseBinfmtEntry(name: string, text: string): BinfmtEntry {
  const lines = text.split('\n');
  const field = (prefix: string) => lines.find((line) => line.startsWith(prefix))?.slice(prefix.length).trim() ?? '';
  return { name, enabled: lines[0]?.trim() === 'enabled', interpreter: field('interpreter '), flags: field('flags:') };
}

/** The binfmt_misc entries registered on this host (none when binfmt_misc is not mounted). */
export function readBinfmtEntries(dir = BINFMT_DIR): BinfmtEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name !== 'register' && name !== 'status');
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    try {
      return [parseBinfmtEntry(name, readFileSync(`${dir}/${name}`, 'utf8'))];
    } catch {
      return [];
    }
  });
}

export type ArchSupport =
  | { arch: string; how: 'native' }
  | { arch: string; how: 'emulated'; entry: BinfmtEntry }
  | { arch: string; how: 'missing'; reason: string; fix: string };

export const EMULATION_FIX =
  'apt-get install qemu-user-static binfmt-support (then, on a host without systemd-binfmt: sudo bash scripts/setup-host.sh, which mounts binfmt_misc and registers the entries)';

/**
 * How `arch` runs on a host of `host` architecture with these binfmt entries. Pure. An emulated architecture needs an
 * enabled entry with the F flag: without it the interpreter path would be looked up inside the container's root.
 */
export function archSupport(arch: string, host: string, entries: readonly BinfmtEntry[]): ArchSupport {
  const info = ARCHITECTURES[arch];
  if (arch === host || info?.nativeOn.includes(host)) return { arch, how: 'native' };
  if (!info) return { arch, how: 'missing', reason: `unknown architecture "${arch}"`, fix: `use one of ${ARCH_NAMES.join(', ')}` };
  const candidates = entries.filter((entry) => info.binfmt.includes(entry.name));
  const usable = candidates.find((entry) => entry.enabled && entry.flags.includes('F'));
  if (usable) return { arch, how: 'emulated', entry: usable };
  const found = candidates[0];
  const reason = !found
    ? `no binfmt_misc entry for ${info.binfmt.join(' or ')} on this host`
    : !found.enabled
      ? `the binfmt_misc entry ${found.name} is disabled`
      : `the binfmt_misc entry ${found.name} lacks the F (fix-binary) flag, so its interpreter would be looked up inside the container`;
  const fix = !found
    ? EMULATION_FIX
    : !found.enabled
      ? `echo 1 > ${BINFMT_DIR}/${found.name}`
      : `re-register it with flags F (qemu-user-static's entries carry it: apt-get install qemu-user-static)`;
  return { arch, how: 'missing', reason, fix };
}

/** What this host can do for `arch`, read from /proc now. */
export function hostArchSupport(arch: string): ArchSupport {
  return archSupport(arch, hostArch(), readBinfmtEntries());
}

/**
 * Refuses, before anything starts, architectures this host cannot run (exit 3, with the fix) and boot mode on an
 * emulated one: systemd as PID 1 under qemu-user is not something this tool can promise (signals, ptrace-less
 * sandboxing, unsupported syscalls), so it is refused with a message naming what to do instead.
 */
export function requireRunnable(arches: Iterable<string>, options: { boot: boolean }, entries = readBinfmtEntries(), host = hostArch()): void {
  for (const arch of new Set(arches)) {
    const support = archSupport(arch, host, entries);
    if (support.how === 'missing') {
      throw new InfraError(`this ${host} host cannot run ${arch} containers: ${support.reason}; fix: ${support.fix}`);
    }
    if (support.how === 'emulated' && options.boot) {
      throw new InfraError(
        `boot: true is not supported for ${arch} on this ${host} host (emulated by ${support.entry.interpreter}): systemd cannot boot under qemu-user emulation; run the ${arch} cells with boot: false, or on a host that runs ${arch} natively`,
      );
    }
  }
}

/** `--arch NAME` as given on the command line: a known Debian name, else a usage error with the closest one. */
export function checkArchFlag(name: string | undefined): string | undefined {
  if (name === undefined || isArchName(name)) return name;
  const hint = didYouMean(name, ARCH_NAMES) || ` (known: ${ARCH_NAMES.join(', ')})`;
  throw new UsageError(`nsmatrix: --arch ${name}: unknown architecture${hint}`);
}

/** Every known architecture sorted by how this host runs it (doctor's lines). Pure. */
export function archOverview(host: string, entries: readonly BinfmtEntry[]): { native: string[]; emulated: string[]; missing: string[] } {
  const overview = { native: [] as string[], emulated: [] as string[], missing: [] as string[] };
  for (const arch of ARCH_NAMES) overview[archSupport(arch, host, entries).how].push(arch);
  return overview;
}

/**
 * systemd-nspawn's personality for a container of `arch` on a `host` kernel: what `uname -m` (and config.guess) see
 * inside. Only x86 on x86-64 needs one (nspawn knows x86 and x86-64); emulated architectures report their own.
 */
export function nspawnPersonality(arch: string | undefined, host = hostArch()): 'x86' | undefined {
  return arch === 'i386' && host === 'amd64' ? 'x86' : undefined;
}

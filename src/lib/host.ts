/**
 * What this machine can do, read once per process: root, systemd-nspawn and its version, whether systemd is
 * PID 1 (without it and without a system bus nspawn must not try to register with machined), overlayfs, user
 * namespaces and the cgroup layout. Shared by the images stage (which runs nspawn for package installs) and
 * the runtime stage.
 */
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileIdentity, readRootCache, ROOT_CACHE_DIR, writeRootCache } from './root-cache.js';
import { hostname } from 'node:os';
import { runSync } from './process.js';

export interface HostInfo {
  isRoot: boolean;
  nspawnPath: string | null;
  /** Major version of systemd-nspawn, e.g. 252. */
  nspawnVersion: number | null;
  nspawnVersionText: string | null;
  systemdIsPid1: boolean;
  overlayfs: boolean;
  userNamespaces: boolean;
  /** Mixed cgroup v1/v2 ("hybrid"), pure v2 ("unified") or pure v1 ("legacy"). */
  cgroupLayout: 'unified' | 'hybrid' | 'legacy';
  hostname: string;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function findOnPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const candidate = `${dir}/${command}`;
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

export function systemdIsPid1(): boolean {
  // /run/systemd/system exists exactly when systemd is the running init (sd_booted(3)); PID 1's executable
  // name confirms it where /run is not a tmpfs and could hold a stale directory.
  if (!existsSync('/run/systemd/system')) return false;
  try {
    return /systemd$/.test(readlinkSync('/proc/1/exe'));
  } catch {
    return (readText('/proc/1/comm') ?? '').trim() === 'systemd';
  }
}

function cgroupLayout(): HostInfo['cgroupLayout'] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'unified';
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) return 'hybrid';
  return 'legacy';
}

interface NspawnVersion {
  major: number | null;
  text: string | null;
}

/** Where root keeps what `systemd-nspawn --version` said (on /run: gone at the next boot, with the binary's state). */
export const NSPAWN_VERSION_CACHE_DIR = ROOT_CACHE_DIR;

/** The binary as it is now: any upgrade (new inode, size or times) changes it. */
function binaryIdentity(path: string): string | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return null;
  }
  const identity = fileIdentity(real);
  return identity === null ? null : `${real}:${identity}`;
}

/**
 * The version of systemd-nspawn at `path`. Running it costs a process start (10 to 20 ms) on every command that
 * starts a container, so root keeps the answer in `cacheDir`, keyed by the binary's identity (real path, device,
 * inode, size, mtime, ctime): an upgraded or replaced binary is asked again. Not root, or no usable cache
 * directory: asked every time, as before.
 */
export function readNspawnVersion(path: string | null, cacheDir: string = NSPAWN_VERSION_CACHE_DIR): NspawnVersion {
  if (!path) return { major: null, text: null };
  const identity = process.getuid?.() === 0 ? binaryIdentity(path) : null;
  if (identity) {
    try {
      const entry = JSON.parse(readRootCache(join(cacheDir, 'nspawn-version.json'))?.toString('utf8') ?? 'null') as { identity?: unknown; major?: unknown; text?: unknown } | null;
      if (entry?.identity === identity && (typeof entry.major === 'number' || entry.major === null) && (typeof entry.text === 'string' || entry.text === null)) {
        return { major: entry.major, text: entry.text };
      }
    } catch {
      // unreadable: ask the binary
    }
  }
  const version = askNspawn(path);
  if (identity && version.text !== null) writeRootCache(cacheDir, 'nspawn-version.json', JSON.stringify({ identity, ...version }));
  return version;
}

function askNspawn(path: string): NspawnVersion {
  // Synchronous: read once, when a command first asks what the host can do (never by --version or --help).
  const result = runSync([path, '--version'], { stderr: 'ignore' });
  if (result.failed) return { major: null, text: null };
  const first = result.stdout.split('\n')[0] ?? '';
  const match = /systemd (\d+)/.exec(first);
  return { major: match ? Number(match[1]) : null, text: first.trim() || null };
}

let cached: HostInfo | undefined;

export function detectHost(): HostInfo {
  if (cached) return cached;
  const nspawnPath = findOnPath('systemd-nspawn');
  const version = readNspawnVersion(nspawnPath);
  const maxUserNs = Number((readText('/proc/sys/user/max_user_namespaces') ?? '0').trim());
  cached = {
    isRoot: process.getuid?.() === 0,
    nspawnPath,
    nspawnVersion: version.major,
    nspawnVersionText: version.text,
    systemdIsPid1: systemdIsPid1(),
    overlayfs: /\toverlay$/m.test(readText('/proc/filesystems') ?? ''),
    userNamespaces: maxUserNs > 0,
    cgroupLayout: cgroupLayout(),
    hostname: hostname(),
  };
  return cached;
}

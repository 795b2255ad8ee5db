/**
 * The shared package download cache (issue 15, part 1): one pool per package family, release and architecture
 * under `<state>/caches/packages/`, seen by every cell and image build of that release, so a package is downloaded
 * once per host.
 *
 * A container never writes the pool. Each cell (and each image build) gets the pool as the lower layer of its own
 * overlay on the package manager's download directory (`/var/cache/apt/archives` for apt), with an upper directory
 * in the run's scratch space:
 * - what the container downloads lands in its upper directory; deleting (`apt-get clean`) only whites out its view;
 * - apt's lock file (`archives/lock`) is per container, so concurrent cells never fail on each other's lock (apt
 *   takes that lock with a non-blocking fcntl and gives up at once when another apt holds it);
 * - after the container has stopped, the host harvests the upper directory: a regular file (never through a
 *   link) whose name, size and SHA-256 match an entry of the image's own package indexes (`/var/lib/apt/lists`,
 *   written at build time by apt after checking the Release signature) is copied into the pool by exclusive
 *   link(2); anything else is left behind with the scratch directory.
 *
 * Verification is the host's, not apt's: apt (2.6, measured) reuses a file in its archives directory when only its
 * size matches the index, and dpkg then unpacks it. A shared directory a container could write would let one cell
 * plant a package for every later cell; a pool only the host writes, with hashes the host checked, does not.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, rmSync, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readOsRelease } from '../images/os-release.js';
import { detectFamily, parseOsRelease, type PackageFamily } from '../images/package-managers.js';
import type { PackagePool, PackagePoolLease } from '../images/types.js';

/** Where each family's package manager keeps downloaded packages (the overlay's target in the container). */
export const PACKAGE_CACHE_TARGETS: Record<PackageFamily, string> = {
  apt: '/var/cache/apt/archives',
  dnf: '/var/cache/libdnf5',
  zypper: '/var/cache/zypp/packages',
  pacman: '/var/cache/pacman/pkg',
  apk: '/var/cache/apk',
};

/** Largest package file the host copies into a pool, and the most it harvests from one container. */
export const MAX_PACKAGE_BYTES = 1024 ** 3;
export const MAX_HARVEST_BYTES = 8 * 1024 ** 3;

const APT_ARCHIVE_NAME = /^[A-Za-z0-9][A-Za-z0-9+.~%_-]*\.deb$/;

export function cachesDir(stateDir: string): string {
  return join(stateDir, 'caches');
}

export function packagePoolsDir(stateDir: string): string {
  return join(cachesDir(stateDir), 'packages');
}

/** Makes `<state>/caches/{,packages,tmp}` (0700: what a pool holds is for the host's root only). */
export async function ensureCachesDirs(stateDir: string): Promise<void> {
  for (const dir of [cachesDir(stateDir), packagePoolsDir(stateDir), join(cachesDir(stateDir), 'tmp')]) {
    await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  }
}

const ELF_MACHINES: Record<number, string> = { 0x03: 'i386', 0x28: 'arm', 0x3e: 'amd64', 0xb7: 'arm64', 0xf3: 'riscv64', 0x15: 'ppc64', 0x16: 's390x' };

/** The architecture of a tree: the ELF machine of a binary every family ships (never through a link). */
async function treeArchitecture(root: string): Promise<string | undefined> {
  for (const candidate of ['usr/bin/env', 'bin/busybox', 'usr/bin/dpkg', 'bin/sh']) {
    const path = join(root, candidate);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
    if (!handle) continue;
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(20), 0, 20, 0);
      if (bytesRead < 20 || buffer.readUInt32BE(0) !== 0x7f454c46) continue;
      const machine = buffer[5] === 2 ? buffer.readUInt16BE(18) : buffer.readUInt16LE(18);
      const name = ELF_MACHINES[machine];
      if (name) return name;
    } finally {
      await handle.close();
    }
  }
  return undefined;
}

const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);

/** `apt-debian-bookworm-amd64`: the pool an image root uses, or undefined (unknown OS or architecture). */
export async function packagePoolName(root: string): Promise<{ name: string; family: PackageFamily } | undefined> {
  const osRelease = readOsRelease(root);
  if (!osRelease) return undefined;
  const family = detectFamily(osRelease);
  if (!family) return undefined;
  const fields = parseOsRelease(osRelease);
  let release = fields.VERSION_CODENAME || fields.VERSION_ID || '';
  // Debian testing and sid share a codename in os-release; debian_version says "trixie/sid" only there.
  const debianVersion = family === 'apt' ? await readSmallFile(join(root, 'etc/debian_version')) : undefined;
  if (debianVersion?.includes('/sid') || (!release && fields.ID === 'debian')) release = 'sid';
  if (!release && family === 'pacman') release = 'rolling';
  const arch = await treeArchitecture(root);
  if (!release || !arch || !fields.ID) return undefined;
  return { name: [family, slug(fields.ID), slug(release), arch].join('-'), family };
}

async function readSmallFile(path: string): Promise<string | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
  if (!handle) return undefined;
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** apt's archive file name for a version: `name_version_arch.deb`, an epoch's ":" quoted as "%3a". */
export function aptArchiveName(pkg: string, version: string, arch: string): string {
  return `${pkg}_${version.replace(/:/g, '%3a')}_${arch}.deb`;
}

export interface IndexEntry {
  size: number;
  sha256: string;
}

/**
 * The entries of an apt `Packages` text for `wanted` archive names (all when undefined). Streaming: a
 * release's index is tens of megabytes.
 */
export async function parsePackagesIndex(lines: AsyncIterable<string>, wanted?: ReadonlySet<string>): Promise<Map<string, IndexEntry>> {
  const found = new Map<string, IndexEntry>();
  let stanza: Record<string, string> = {};
  const flush = () => {
    const { Package: pkg, Version: version, Architecture: arch, Size: size, SHA256: sha256 } = stanza;
    stanza = {};
    if (!pkg || !version || !arch || !size || !sha256 || !/^[0-9a-f]{64}$/.test(sha256) || !/^\d+$/.test(size)) return;
    const name = aptArchiveName(pkg, version, arch);
    if (!wanted || wanted.has(name)) found.set(name, { size: Number(size), sha256 });
  };
  for await (const line of lines) {
    if (line === '') flush();
    else if (line[0] !== ' ' && line[0] !== '\t') {
      const colon = line.indexOf(':');
      if (colon > 0) {
        const field = line.slice(0, colon);
        if (field === 'Package' || field === 'Version' || field === 'Architecture' || field === 'Size' || field === 'SHA256') stanza[field] = line.slice(colon + 1).trim();
      }
    }
  }
  flush();
  return found;
}

/** Index entries for `wanted` from the tree's `/var/lib/apt/lists/*_Packages` (regular files only, never a link). */
export async function aptIndexOf(root: string, wanted: ReadonlySet<string>): Promise<Map<string, IndexEntry>> {
  const listsDir = join(root, 'var/lib/apt/lists');
  const dirStat = await lstat(listsDir).catch(() => undefined);
  const found = new Map<string, IndexEntry>();
  if (!dirStat?.isDirectory()) return found;
  for (const name of await readdir(listsDir)) {
    if (!name.endsWith('_Packages')) continue;
    const handle = await open(join(listsDir, name), constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => undefined);
    if (!handle) continue;
    try {
      if (!(await handle.stat()).isFile()) continue;
      const stream = handle.createReadStream({ encoding: 'utf8', autoClose: false });
      for (const [key, entry] of await parsePackagesIndex(process.getBuiltinModule('node:readline').createInterface({ input: stream, crlfDelay: Infinity }), wanted)) found.set(key, entry);
    } finally {
      await handle.close();
    }
  }
  return found;
}

export interface PackageCacheMount {
  family: PackageFamily;
  pool: string;
  upper: string;
  target: string;
}

/** Which pool an image root uses (`<state>/caches/packages/<name>`), the caches directories made; undefined: none. */
async function poolOf(stateDir: string, imageRoot: string): Promise<{ family: PackageFamily; dir: string } | undefined> {
  const pool = await packagePoolName(imageRoot);
  // Only apt's pool is verified on harvest; the other families' would have to trust files a container wrote.
  if (pool?.family !== 'apt') return undefined;
  await ensureCachesDirs(stateDir);
  return { family: pool.family, dir: join(packagePoolsDir(stateDir), pool.name) };
}

/** The pool directory (made again if `cache rm` removed it) and a fresh upper directory in `workDir`. */
async function mountPool(pool: { family: PackageFamily; dir: string }, workDir: string): Promise<PackageCacheMount> {
  await mkdir(pool.dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  if (!(await lstat(pool.dir)).isDirectory()) throw new Error(`${pool.dir} is not a directory`);
  // In a directory of its own: nspawn makes the overlay's work directory next to the upper one.
  const upper = join(workDir, 'upper');
  await mkdir(upper, { recursive: true, mode: 0o700 });
  return { family: pool.family, pool: pool.dir, upper, target: PACKAGE_CACHE_TARGETS[pool.family] };
}

/**
 * The package pools of `stateDir` as the images stage and the scheduler use them (images/types.ts): per container,
 * the pool shown at the family's download directory over an upper directory of its own, harvested afterwards.
 * Which pool an image root uses is worked out once per root (the cells of a run share a few images).
 */
export function packagePool(stateDir: string): PackagePool {
  const pools = new Map<string, Promise<{ family: PackageFamily; dir: string } | undefined>>();
  return {
    async open(imageRoot: string, workDir: string): Promise<PackagePoolLease | undefined> {
      let pool = pools.get(imageRoot);
      if (!pool) {
        pool = poolOf(stateDir, imageRoot);
        pools.set(imageRoot, pool);
        // A failure is not remembered: the next container tries again.
        pool.catch(() => pools.delete(imageRoot));
      }
      const found = await pool;
      if (!found) return undefined;
      const mount = await mountPool(found, workDir);
      return {
        name: basename(mount.pool),
        mount: { type: 'overlay', lower: mount.pool, upper: mount.upper, container: mount.target },
        harvest: () => harvestPackages(mount, stateDir, imageRoot),
        release: () => removeUpper(mount),
      };
    },
  };
}

export interface HarvestReport {
  /** Files added to the pool. */
  added: string[];
  /** Files seen but not added, with why (unverifiable, hash mismatch, too big, not a regular file). */
  refused: { name: string; why: string }[];
  bytes: number;
}

/** Copies `source` (opened without following links, the inode `seen`) to `dest` while hashing it; the hex SHA-256. */
async function copyHashing(source: string, seen: Stats, dest: string): Promise<string | undefined> {
  const handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return undefined;
  const out = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== seen.ino || st.dev !== seen.dev) return undefined;
    const hash = createHash('sha256');
    const stream = createReadStream('', { fd: handle.fd, autoClose: false, start: 0 });
    let total = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_PACKAGE_BYTES) return undefined;
      hash.update(chunk);
      await out.write(chunk);
    }
    await out.sync();
    return hash.digest('hex');
  } finally {
    await out.close();
    await handle.close();
  }
}

/**
 * After the container has stopped: adds to the pool the packages it downloaded that the image's index vouches for
 * (name, size and SHA-256). Never throws for what the container left; the upper directory is the caller's to
 * remove (removeUpper).
 */
export async function harvestPackages(mount: PackageCacheMount, stateDir: string, imageRoot: string): Promise<HarvestReport> {
  const report: HarvestReport = { added: [], refused: [], bytes: 0 };
  const names = await readdir(mount.upper).catch(() => [] as string[]);
  const candidates: { name: string; st: Stats }[] = [];
  for (const name of names) {
    const st = await lstat(join(mount.upper, name)).catch(() => undefined);
    if (!st || !isPackageName(mount.family, name)) continue;
    if (!st.isFile()) {
      report.refused.push({ name, why: 'not a regular file' });
      continue;
    }
    if (st.size > MAX_PACKAGE_BYTES) {
      report.refused.push({ name, why: 'too big' });
      continue;
    }
    if (await lstat(join(mount.pool, name)).then(() => true, () => false)) continue;
    candidates.push({ name, st });
  }
  if (candidates.length === 0) return report;
  const index = await aptIndexOf(imageRoot, new Set(candidates.map((c) => c.name)));
  const tmpDir = join(cachesDir(stateDir), 'tmp');
  for (const { name, st } of candidates) {
    const expected = index.get(name);
    if (!expected) {
      report.refused.push({ name, why: "not in the image's package index" });
      continue;
    }
    if (expected.size !== st.size) {
      report.refused.push({ name, why: 'size differs from the index' });
      continue;
    }
    if (report.bytes + st.size > MAX_HARVEST_BYTES) {
      report.refused.push({ name, why: 'harvest limit reached' });
      continue;
    }
    const tmp = join(tmpDir, `pkg.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      const sha256 = await copyHashing(join(mount.upper, name), st, tmp);
      if (!sha256) {
        report.refused.push({ name, why: 'changed or vanished while read' });
        continue;
      }
      if (sha256 !== expected.sha256) {
        report.refused.push({ name, why: 'SHA-256 differs from the index' });
        continue;
      }
      await chmod(tmp, 0o644);
      // Exclusive: a concurrent harvest of the same file wins and ours is dropped; a pool file is never replaced.
      await link(tmp, join(mount.pool, name)).then(
        () => {
          report.added.push(name);
          report.bytes += st.size;
        },
        (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        },
      );
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
  return report;
}

/** Only apt's pool is harvested (its index lets the host verify each file); see README "Caches" for the others. */
function isPackageName(family: PackageFamily, name: string): boolean {
  return family === 'apt' && APT_ARCHIVE_NAME.test(name);
}

/** Removes staging files of harvests whose process is gone (a harvest killed between copy and link). */
export async function gcPackageStaging(stateDir: string): Promise<string[]> {
  const dir = join(cachesDir(stateDir), 'tmp');
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(/^pkg\.(\d+)\./.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 0);
      continue;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    await rm(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

/** Removes a container's upper directory and nspawn's overlay work directory next to it, without following links. */
export async function removeUpper(mount: PackageCacheMount): Promise<void> {
  // Synchronous: usually an empty upper and nspawn's work directory, each entry a thread-pool round trip otherwise.
  rmSync(dirname(mount.upper), { recursive: true, force: true });
}

/**
 * `cache:` directories kept across runs (issue 15, part 2), in the spirit of actions/cache.
 *
 * Layout, all under the 0700 state directory: `caches/paths/<id>/` per cache (id: a hash of its key and container
 * path), holding immutable versions `v.<time>.<random>/`, a `current` symlink naming the published one, and
 * `meta.json` (key, path, image, last use). `caches/paths/<id>.lock` is the cache's lock (flock(1): the kernel drops
 * it when a holder dies).
 *
 * - Restore (before the container opens): under a shared lock, `current` is read (a link the host made, naming a
 *   version by a fixed pattern) and that version copied with `cp -a --reflink=auto` into the cell's scratch space,
 *   which is bound at the path. Cells never see a published version, only their own copy.
 * - Save (after the container has stopped): the cell's copy is disarmed (disarmTree: setuid/setgid bits, file
 *   capabilities, device nodes), measured (`du`, links not followed) and refused above the size limit, then, under
 *   the exclusive lock, renamed into the cache as a new version and published by renaming a new `current` link over
 *   the old one; versions `current` does not name are removed. The last writer wins; nothing half-written is ever
 *   named by `current`, so a save killed at any point leaves the previous version in force.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { treeSize } from '../images/fs-ops.js';
import { acquireFlock, type FileLock } from '../lib/flock.js';
import { runChecked } from '../lib/process.js';
import { disarmTree } from '../runtime/disarm.js';
import { cachesDir, ensureCachesDirs, gcPackageStaging } from './packages.js';

/** Largest cache saved (bytes, as `du -sb` counts them, links not followed); a bigger one is not published and the old one stays. */
export const DEFAULT_CACHE_MAX_BYTES = 4 * 1024 ** 3;
const VERSION_RE = /^v\.\d{13}\.[0-9a-f]{12}$/;
const ID_RE = /^[0-9a-f]{24}$/;

export interface CacheMeta {
  key: string;
  path: string;
  image: string;
  lastUsed: string;
  updated?: string;
}

export function pathCachesDir(stateDir: string): string {
  return join(cachesDir(stateDir), 'paths');
}

/** The id of a cache: key text (the `key:` given, else the image key) and container path. */
export function cacheId(key: string, path: string): string {
  return createHash('sha256').update(`${key}\0${path.replace(/\/+$/, '')}`).digest('hex').slice(0, 24);
}

function lockOf(stateDir: string, id: string, shared: boolean, signal?: AbortSignal): Promise<FileLock> {
  return acquireFlock(join(pathCachesDir(stateDir), `${id}.lock`), { shared, label: `cache ${id}`, mode: 0o600, ...(signal ? { signal } : {}) }).then((lock) => {
    if (!lock) throw new Error(`cache ${id} is locked`);
    return lock;
  });
}

/** The published version directory of cache `id`, or undefined. Reads only a link nsmatrix made, checks its shape. */
export async function currentVersion(stateDir: string, id: string): Promise<string | undefined> {
  const dir = join(pathCachesDir(stateDir), id);
  const target = await readlink(join(dir, 'current')).catch(() => undefined);
  if (!target || !VERSION_RE.test(target)) return undefined;
  const st = await lstat(join(dir, target)).catch(() => undefined);
  return st?.isDirectory() ? join(dir, target) : undefined;
}

async function writeMeta(dir: string, meta: CacheMeta): Promise<void> {
  const tmp = join(dir, `meta.json.${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(tmp, join(dir, 'meta.json'));
}

export async function readMeta(stateDir: string, id: string): Promise<CacheMeta | undefined> {
  try {
    return JSON.parse(await readFile(join(pathCachesDir(stateDir), id, 'meta.json'), 'utf8')) as CacheMeta;
  } catch {
    return undefined;
  }
}

export interface RestoredCache {
  id: string;
  key: string;
  path: string;
  image: string;
  /** The cell's own copy, bound read-write at `path`. */
  data: string;
  /** Whether a published version was copied in (false: the cache started empty). */
  hit: boolean;
}

async function ensurePathCaches(stateDir: string, id: string): Promise<string> {
  await ensureCachesDirs(stateDir);
  for (const dir of [pathCachesDir(stateDir), join(pathCachesDir(stateDir), id)]) {
    await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    if (!(await lstat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
  }
  return join(pathCachesDir(stateDir), id);
}

/** Copies the cache's published version (if any) into `<workDir>/data` for one cell. */
export async function restoreCache(stateDir: string, spec: { key: string; path: string; image: string }, workDir: string, signal?: AbortSignal): Promise<RestoredCache> {
  const id = cacheId(spec.key, spec.path);
  const dir = await ensurePathCaches(stateDir, id);
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const data = join(workDir, 'data');
  const lock = await lockOf(stateDir, id, true, signal);
  let hit = false;
  try {
    const version = await currentVersion(stateDir, id);
    if (version) {
      // -a: links stay links (never followed), owners and modes kept; reflinks where the file system has them.
      await runChecked(['cp', '-a', '--reflink=auto', '--no-target-directory', version, data]);
      hit = true;
    }
    // Under the lock, like everything written into a cache's directory: gc (gcCaches) takes the exclusive lock
    // and may then remove whatever is not published.
    const now = new Date().toISOString();
    const old = await readMeta(stateDir, id);
    await writeMeta(dir, { key: spec.key, path: spec.path, image: spec.image, lastUsed: now, ...(old?.updated ? { updated: old.updated } : {}) }).catch(() => undefined);
  } finally {
    await lock.release();
  }
  if (!hit) await mkdir(data, { mode: 0o755 });
  return { id, key: spec.key, path: spec.path, image: spec.image, data, hit };
}

export type SaveOutcome = { saved: true; bytes: number } | { saved: false; why: string };

/**
 * Publishes a cell's copy as the cache's new version (see the file comment). The copy must no longer be reachable
 * by any container. `data` is moved, not copied.
 */
export async function saveCache(stateDir: string, restored: RestoredCache, options: { maxBytes?: number } = {}): Promise<SaveOutcome> {
  const maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  const st = await lstat(restored.data).catch(() => undefined);
  if (!st?.isDirectory()) return { saved: false, why: 'the cache directory is gone' };
  await disarmTree(restored.data);
  const bytes = await treeSize(restored.data);
  if (bytes > maxBytes) return { saved: false, why: `larger than ${maxBytes} bytes` };
  const dir = await ensurePathCaches(stateDir, restored.id);
  const name = `v.${String(Date.now()).padStart(13, '0')}.${randomBytes(6).toString('hex')}`;
  const lock = await lockOf(stateDir, restored.id, false);
  try {
    await rename(restored.data, join(dir, name)).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV') throw error;
      await runChecked(['cp', '-a', '--reflink=auto', '--no-target-directory', restored.data, join(dir, `${name}.partial`)]);
      await rename(join(dir, `${name}.partial`), join(dir, name));
    });
    const link = join(dir, `current.${randomBytes(6).toString('hex')}`);
    await symlink(name, link);
    await rename(link, join(dir, 'current'));
    await removeStaleVersions(dir, name);
    const now = new Date().toISOString();
    await writeMeta(dir, { key: restored.key, path: restored.path, image: restored.image, lastUsed: now, updated: now }).catch(() => undefined);
  } finally {
    await lock.release();
  }
  return { saved: true, bytes };
}

/** Under the cache's exclusive lock: everything but `keep`, `current`, the meta and its lock goes (killed saves' leftovers included). */
async function removeStaleVersions(dir: string, keep: string | undefined): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(dir)) {
    if (entry === keep || entry === 'current' || entry === 'meta.json') continue;
    await rm(join(dir, entry), { recursive: true, force: true });
    removed.push(join(dir, entry));
  }
  return removed;
}

/**
 * `nsmatrix gc`'s part: what killed saves and removals left in the caches. Every entry of a cache's directory is
 * written under the cache's lock (shared: restore's meta; exclusive: save, remove), and a restore copies `current`
 * under it, so with the exclusive lock held nothing but `current`, the version it names and `meta.json` is in use
 * by anyone: the rest (a version a killed save renamed in but did not publish, a `.partial` copy, `current.*` and
 * `meta.json.*` not yet renamed, an old version a save was removing) goes. The lock is tried, never waited for: a
 * cache whose lock is held belongs to a live run at the moment and is left for the next gc (its holder cleans up
 * after itself). Also `.trash.<id>.*` (removeCache killed between rename and rm; under its cache's lock too) and
 * the package pool's staging files of dead harvests. Returns the paths removed.
 */
export async function gcCaches(stateDir: string): Promise<string[]> {
  const root = pathCachesDir(stateDir);
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const trash = /^\.trash\.([0-9a-f]{24})\.[0-9a-f]+$/.exec(name);
    const id = trash ? trash[1]! : ID_RE.test(name) ? name : undefined;
    if (id === undefined) continue;
    const st = await lstat(join(root, name)).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const lock = await acquireFlock(join(root, `${id}.lock`), { label: `cache ${id}`, mode: 0o600, nonBlocking: true });
    if (!lock) continue;
    try {
      if (trash) {
        await rm(join(root, name), { recursive: true, force: true });
        removed.push(join(root, name));
        continue;
      }
      const current = await currentVersion(stateDir, id);
      removed.push(...(await removeStaleVersions(join(root, id), current === undefined ? undefined : basename(current))));
    } finally {
      await lock.release();
    }
  }
  removed.push(...(await gcPackageStaging(stateDir)));
  return removed;
}

export interface CacheEntry {
  id: string;
  meta?: CacheMeta;
  bytes: number;
  /** Whether a version is published. */
  published: boolean;
}

export async function listCaches(stateDir: string): Promise<CacheEntry[]> {
  const root = pathCachesDir(stateDir);
  if (!existsSync(root)) return [];
  const entries: CacheEntry[] = [];
  for (const id of (await readdir(root)).filter((n) => ID_RE.test(n))) {
    const version = await currentVersion(stateDir, id);
    entries.push({ id, ...(await readMeta(stateDir, id).then((meta) => (meta ? { meta } : {}))), bytes: version ? await treeSize(version) : 0, published: version !== undefined });
  }
  return entries;
}

/** Removes cache `id` (waits for its writers and readers). */
export async function removeCache(stateDir: string, id: string): Promise<void> {
  if (!ID_RE.test(id)) throw new Error(`not a cache id: ${id}`);
  const lock = await lockOf(stateDir, id, false);
  try {
    const dir = join(pathCachesDir(stateDir), id);
    const trash = join(pathCachesDir(stateDir), `.trash.${id}.${randomBytes(6).toString('hex')}`);
    await rename(dir, trash).catch(() => undefined);
    await rm(trash, { recursive: true, force: true });
  } finally {
    await lock.release();
  }
}

/**
 * Removes caches unused for `olderThanMs`, then the least recently used until the total is at most `maxBytes`.
 * Returns the ids removed.
 */
export async function pruneCaches(stateDir: string, options: { olderThanMs?: number; maxBytes?: number; now?: number }): Promise<string[]> {
  const now = options.now ?? Date.now();
  const entries = (await listCaches(stateDir)).sort((a, b) => Date.parse(a.meta?.lastUsed ?? '1970') - Date.parse(b.meta?.lastUsed ?? '1970'));
  const removed: string[] = [];
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  for (const entry of entries) {
    const age = now - Date.parse(entry.meta?.lastUsed ?? '1970');
    const tooOld = options.olderThanMs !== undefined && age > options.olderThanMs;
    const tooBig = options.maxBytes !== undefined && total > options.maxBytes;
    if (!tooOld && !tooBig && entry.published) continue;
    await removeCache(stateDir, entry.id);
    removed.push(entry.id);
    total -= entry.bytes;
  }
  // Leftovers of killed saves and removals, as `nsmatrix gc` removes them.
  await gcCaches(stateDir);
  return removed;
}

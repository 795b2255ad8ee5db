/**
 * What `nsmatrix shell` keeps under the state directory (mode 0700), both written by containers and so treated as
 * hostile data: the host bind-mounts the directories it made and never follows, reads or copies what is in them
 * (sizes by `du`, removal by `rm --one-file-system`, neither follows a link).
 *
 * - `shell/homes/<id>/home/`: the home directory of one user in one project (id: a hash of the project directory's
 *   real path and the uid), mounted as that user's home in every shell of the project; `meta.json` beside it says
 *   whose. It persists until `nsmatrix shell --rm-home` (in the project, or naming it) removes it.
 * - `shell/sandboxes/<name>/`: a sandbox kept by `--keep NAME`: `root/` is the upper layer of the overlay over the
 *   image (every change outside /src, the home and binds), `src/` the upper layer of an overlay /src, `meta.json`
 *   the image (key) and project it was made for: it is entered again only over the same image from the same project.
 *   `shell/locks/<name>` is its lock: one shell at a time (an overlay upper layer must not be shared). `gc` lists
 *   kept sandboxes and never removes them; `nsmatrix shell --rm NAME` does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { chown, chmod, lstat, mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { removeTree, treeSize } from '../images/fs-ops.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { acquireFlock, type FileLock } from '../lib/flock.js';

/** Sandbox names: one path component, no leading dot or dash, at most 64 characters. */
export const SANDBOX_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const HOME_ID_RE = /^[0-9a-f]{24}$/;

export function shellDir(stateDir: string): string {
  return join(stateDir, 'shell');
}
const sandboxesDir = (stateDir: string) => join(shellDir(stateDir), 'sandboxes');
const homesDir = (stateDir: string) => join(shellDir(stateDir), 'homes');
const locksDir = (stateDir: string) => join(shellDir(stateDir), 'locks');

/** A sandbox name as given by `--keep` or `--rm` (`flag`), refused in one line unless it is a safe name. */
export function checkSandboxName(name: string, flag: string): string {
  if (SANDBOX_NAME_RE.test(name)) return name;
  throw new UsageError(`nsmatrix: ${flag} ${JSON.stringify(name)}: a sandbox name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
}

async function ensureDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { mode }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  // Made by nsmatrix in a directory only root can write: anything else there is not ours to use.
  if (!(await lstat(path)).isDirectory()) throw new Error(`${path} is not a directory`);
}

async function ensureShellDirs(stateDir: string): Promise<void> {
  for (const dir of [shellDir(stateDir), sandboxesDir(stateDir), homesDir(stateDir), locksDir(stateDir)]) await ensureDir(dir);
}

async function writeJson(dir: string, name: string, value: unknown): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(tmp, join(dir, name));
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Owner and permission bits a directory the container's user writes gets: the source directory's, or the user's own. */
export interface Ownership {
  uid: number;
  gid: number;
  mode: number;
}

async function own(path: string, owner: Ownership): Promise<void> {
  await chown(path, owner.uid, owner.gid);
  await chmod(path, owner.mode);
}

/**
 * An overlay's upper directory for /src, owned like the source directory: the top of an overlay takes its owner
 * and mode from the upper directory, and a user must be able to write /src as they can write their project.
 */
export async function makeSourceUpper(path: string, owner: Ownership): Promise<string> {
  await ensureDir(path);
  await own(path, owner);
  return path;
}

// ---------------------------------------------------------------------------------------------------------------
// Project homes

export interface HomeMeta {
  project: string;
  uid: number;
  gid: number;
  created: string;
  lastUsed: string;
}

export function homeId(projectDir: string, uid: number): string {
  return createHash('sha256').update(`${projectDir}\0${uid}`).digest('hex').slice(0, 24);
}

/** The project's home for `uid` (created empty, owned by the user, 0700), as a host path to mount. */
export async function ensureHome(stateDir: string, projectDir: string, owner: { uid: number; gid: number }): Promise<string> {
  await ensureShellDirs(stateDir);
  const dir = join(homesDir(stateDir), homeId(projectDir, owner.uid));
  await ensureDir(dir);
  const home = join(dir, 'home');
  const existed = existsSync(home);
  await ensureDir(home);
  if (!existed) await own(home, { ...owner, mode: 0o700 });
  const old = readJson<HomeMeta>(join(dir, 'meta.json'));
  const now = new Date().toISOString();
  await writeJson(dir, 'meta.json', { project: projectDir, uid: owner.uid, gid: owner.gid, created: old?.created ?? now, lastUsed: now } satisfies HomeMeta).catch(() => undefined);
  return home;
}

export interface HomeEntry extends Partial<HomeMeta> {
  id: string;
  bytes: number;
}

export async function listHomes(stateDir: string): Promise<HomeEntry[]> {
  const dir = homesDir(stateDir);
  if (!existsSync(dir)) return [];
  const entries: HomeEntry[] = [];
  for (const id of (await readdir(dir)).filter((n) => HOME_ID_RE.test(n)).sort()) {
    entries.push({ id, ...readJson<HomeMeta>(join(dir, id, 'meta.json')), bytes: await treeSize(join(dir, id, 'home')) });
  }
  return entries;
}

/** Removes the home `id` (see listHomes); false when there is none. */
export async function removeHome(stateDir: string, id: string): Promise<boolean> {
  if (!HOME_ID_RE.test(id)) return false;
  const dir = join(homesDir(stateDir), id);
  if (!existsSync(dir)) return false;
  await discard(homesDir(stateDir), dir);
  return true;
}

/** Renamed out of the way first (so a half-removed directory is never used again), then removed. */
async function discard(parent: string, dir: string): Promise<void> {
  const trash = join(parent, `.trash.${randomBytes(6).toString('hex')}`);
  await rename(dir, trash);
  await removeTree(trash);
}

// ---------------------------------------------------------------------------------------------------------------
// Kept sandboxes

export interface SandboxMeta {
  name: string;
  /** The image as named, its key, and what it was made from. */
  image: string;
  imageKey: string;
  madeFrom: string;
  /** The project directory (real path) at /src. */
  project: string;
  created: string;
  lastUsed: string;
}

export interface KeptSandbox {
  name: string;
  /** Undefined when the sandbox is new. */
  meta: SandboxMeta | undefined;
  /** Upper layers: of the root, and of an overlay /src. */
  rootUpper: string;
  sourceUpper: string;
  /** Refuses (one-line usage error) another project or image name than the sandbox's: before any image is built. */
  check(imageName: string, project: string): void;
  /** Refuses another project or image (key) than the sandbox's; creates a new sandbox; records the use. */
  enter(image: { name: string; key: string; madeFrom: string }, project: string, sourceOwner: Ownership): Promise<void>;
  release(): Promise<void>;
}

const lockOf = (stateDir: string, name: string, nonBlocking: boolean) =>
  acquireFlock(join(locksDir(stateDir), name), { label: `sandbox ${name}`, nonBlocking, mode: 0o600 });

/** Opens (or prepares to create) the kept sandbox `name`, holding its lock: refused at once while another shell is in it. */
export async function openSandbox(stateDir: string, name: string): Promise<KeptSandbox> {
  checkSandboxName(name, '--keep');
  await ensureShellDirs(stateDir);
  const lock: FileLock | null = await lockOf(stateDir, name, true);
  if (!lock) throw new UsageError(`nsmatrix: --keep ${name}: another shell is in this sandbox (one at a time: its upper layer cannot be shared)`);
  const dir = join(sandboxesDir(stateDir), name);
  const meta = readJson<SandboxMeta>(join(dir, 'meta.json'));
  const sandbox: KeptSandbox = {
    name,
    meta,
    rootUpper: join(dir, 'root'),
    sourceUpper: join(dir, 'src'),
    check(imageName, project) {
      if (meta && meta.project !== project) {
        throw new UsageError(`nsmatrix: --keep ${name}: this sandbox belongs to ${meta.project}, not to ${project} (its /src changes are that project's): enter it from there, or choose another name`);
      }
      if (meta && meta.image !== imageName) {
        throw new UsageError(`nsmatrix: --keep ${name}: this sandbox was made over ${meta.image}, not ${imageName}: enter it with the options it was made with, or remove it with nsmatrix shell --rm ${name}`);
      }
    },
    async enter(image, project, sourceOwner) {
      sandbox.check(image.name, project);
      if (meta && meta.imageKey !== image.key) {
        throw new UsageError(
          `nsmatrix: --keep ${name}: this sandbox was made over image ${meta.imageKey} (${meta.image}), this shell's image is ${image.key} (${image.name}): enter it with the options it was made with, or remove it with nsmatrix shell --rm ${name}`,
        );
      }
      if (!meta) {
        // A directory without a meta is a creation that did not finish: start it again.
        if (existsSync(dir)) await discard(sandboxesDir(stateDir), dir);
        await ensureDir(dir);
        await ensureDir(sandbox.rootUpper, 0o755);
        await makeSourceUpper(sandbox.sourceUpper, sourceOwner);
      }
      const now = new Date().toISOString();
      const record: SandboxMeta = { name, image: image.name, imageKey: image.key, madeFrom: image.madeFrom, project, created: meta?.created ?? now, lastUsed: now };
      await writeJson(dir, 'meta.json', record);
    },
    release: () => lock.release(),
  };
  return sandbox;
}

export interface SandboxEntry {
  name: string;
  meta?: SandboxMeta;
  bytes: number;
}

/** Every kept sandbox, by name (sizes by `du`, which follows no link). */
export async function listSandboxes(stateDir: string, options: { sizes?: boolean } = {}): Promise<SandboxEntry[]> {
  const dir = sandboxesDir(stateDir);
  if (!existsSync(dir)) return [];
  const entries: SandboxEntry[] = [];
  for (const name of readdirSync(dir).filter((n) => SANDBOX_NAME_RE.test(n)).sort()) {
    if (!lstatSync(join(dir, name)).isDirectory()) continue;
    const meta = readJson<SandboxMeta>(join(dir, name, 'meta.json'));
    entries.push({ name, ...(meta ? { meta } : {}), bytes: options.sizes === false ? 0 : await treeSize(join(dir, name)) });
  }
  return entries;
}

/** Removes the kept sandbox `name`: a usage error when there is none, or while a shell is in it. */
export async function removeSandbox(stateDir: string, name: string): Promise<void> {
  checkSandboxName(name, '--rm');
  const dir = join(sandboxesDir(stateDir), name);
  if (!existsSync(dir)) {
    const names = (await listSandboxes(stateDir, { sizes: false })).map((s) => s.name);
    const hint = didYouMean(name, names) || (names.length ? ` (kept: ${names.join(', ')})` : ' (none is kept)');
    throw new UsageError(`nsmatrix: --rm ${name}: no kept sandbox of that name${hint}`);
  }
  const lock = await lockOf(stateDir, name, true);
  if (!lock) throw new UsageError(`nsmatrix: --rm ${name}: a shell is in this sandbox: exit it first`);
  try {
    await discard(sandboxesDir(stateDir), dir);
  } finally {
    await lock.release();
  }
}

/**
 * `gc`'s part: leftovers of interrupted removals, and the overlay work directories systemd-nspawn leaves beside an
 * upper layer when it is killed (`.#root…`, `.#src…`) in sandboxes no shell is in. Kept sandboxes themselves stay.
 */
export async function gcShellState(stateDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const parent of [sandboxesDir(stateDir), homesDir(stateDir)]) {
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent).filter((n) => n.startsWith('.trash.'))) {
      await removeTree(join(parent, name));
      removed.push(join(parent, name));
    }
  }
  for (const { name } of await listSandboxes(stateDir, { sizes: false })) {
    const dir = join(sandboxesDir(stateDir), name);
    const stale = readdirSync(dir).filter((n) => n.startsWith('.#'));
    if (stale.length === 0) continue;
    const lock = await lockOf(stateDir, name, true);
    if (!lock) continue;
    try {
      for (const entry of stale) {
        await removeTree(join(dir, entry));
        removed.push(join(dir, entry));
      }
    } finally {
      await lock.release();
    }
  }
  return removed;
}

/**
 * Directories nsmatrix creates as root: made one component at a time (Node's `mkdir -p` spins forever when
 * mkdir(2) answers ENOENT under an existing parent, as in /proc), each problem a one-line UsageError naming where
 * the path came from, and the state directory's tree kept private (0700, files 0600) at every start, also when it
 * already existed with looser modes: image trees and overlay upper directories hold setuid-root binaries.
 */
import { chmodSync, closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { pseudoFilesystemOf, realOrResolved } from './host-paths.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** What the state directory holds; every one of them is private. */
export const STATE_SUBDIRS = ['run', 'images', 'tmp', 'locks', 'logs'] as const;
/** Directories whose files (locks, build logs) are made 0600. */
const PRIVATE_FILE_DIRS = ['locks', 'logs'] as const;

function describeErrno(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on device';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return e.code ?? e.message ?? String(error);
  }
}

/**
 * Makes `path` a directory (creating missing ancestors with `mode` too) and returns its real path. `label` names
 * the path's origin in errors, e.g. `--output nsmatrix-results`. Throws a one-line UsageError when it cannot be.
 */
export function ensureDirectory(path: string, options: { mode: number; label: string }): string {
  const absolute = resolve(path);
  const fail = (why: string): never => {
    throw new UsageError(`nsmatrix: ${options.label}: ${why}`);
  };
  const pseudo = pseudoFilesystemOf(absolute);
  if (pseudo) fail(`${absolute} is in ${pseudo} (the host kernel's interface), not a place for files`);
  // Walk up to the nearest existing ancestor, then create downwards one level at a time.
  const toCreate: string[] = [];
  let current = absolute;
  for (;;) {
    let st;
    try {
      st = statSync(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        const parent = dirname(current);
        if (parent === current) fail(`cannot create ${absolute}: no such file or directory`);
        toCreate.push(current);
        current = parent;
        continue;
      }
      if (code === 'ENOTDIR') {
        toCreate.push(current);
        current = dirname(current);
        continue;
      }
      return fail(`cannot use ${current}: ${describeErrno(error)}`);
    }
    if (!st.isDirectory()) fail(`${current} ${current === absolute ? 'exists and ' : ''}is not a directory`);
    break;
  }
  const resolvedPseudo = pseudoFilesystemOf(realpathSync(current));
  if (resolvedPseudo) fail(`${absolute} is in ${resolvedPseudo} (the host kernel's interface), not a place for files`);
  for (const dir of toCreate.reverse()) {
    try {
      mkdirSync(dir, { mode: options.mode });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
      fail(`cannot create ${dir}: ${describeErrno(error)}`);
    }
  }
  return realpathSync(absolute);
}

/** Sets `mode` on an existing directory or file unless it already has exactly that mode (never follows a symlink). */
function tighten(path: string, mode: number, kind: 'directory' | 'file'): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return;
  if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) return;
  if ((st.mode & 0o7777) !== mode) chmodSync(path, mode);
}

/** A private (0700) directory: created so, and tightened when it already existed with another mode. */
export function ensurePrivateDirectory(path: string, label: string): string {
  const real = ensureDirectory(path, { mode: PRIVATE_DIR_MODE, label });
  try {
    tighten(real, PRIVATE_DIR_MODE, 'directory');
  } catch (error) {
    throw new UsageError(`nsmatrix: ${label}: cannot make ${real} private (mode 0700): ${describeErrno(error)}`);
  }
  return real;
}

/**
 * The state directory and everything nsmatrix keeps directly in it (`run`, `images`, `tmp`, `locks`, `logs`)
 * exist and are 0700; lock files and build logs are 0600. Run at every start of a command that writes the state
 * directory, before any container starts. Returns the state directory's real path.
 *
 * Making a directory private changes it, so a typo like `--state-dir /usr` must not chmod a system directory: an
 * existing directory that holds other things than nsmatrix state is refused (`foreign: 'refuse'`, the commands'
 * choice), or used with only its nsmatrix subdirectories made private (`'keep-mode'`, for library callers whose
 * users keep other things there; the subdirectories alone keep other users out).
 */
export function securePrivateState(stateDir: string, label = `state directory ${stateDir}`, options: { foreign?: 'refuse' | 'keep-mode' } = {}): string {
  const foreign = options.foreign ?? 'refuse';
  const done = securedHere.get(resolve(stateDir));
  if (done && (done.foreign === 'refuse' || foreign === 'keep-mode') && fingerprint(done.real) === done.fingerprint) return done.real;
  const real = secureState(stateDir, label, foreign);
  const print = fingerprint(real);
  if (print !== null) securedHere.set(resolve(stateDir), { real, foreign, fingerprint: print });
  return real;
}

/**
 * State directories this process has secured. A command secures its state directory up front, and the images
 * stage does again for its library callers: some 3 ms of a shell's start the second time, for nothing, unless a
 * directory was replaced meanwhile (a test removing and remaking it): each one's identity and change time say so.
 */
const securedHere = new Map<string, { real: string; foreign: 'refuse' | 'keep-mode'; fingerprint: string }>();

function fingerprint(real: string): string | null {
  try {
    return [real, ...STATE_SUBDIRS.map((sub) => join(real, sub))]
      .map((path) => {
        const st = lstatSync(path, { bigint: true });
        return `${st.dev}:${st.ino}:${st.ctimeNs}:${st.mode}`;
      })
      .join(' ');
  } catch {
    return null;
  }
}

function secureState(stateDir: string, label: string, foreign: 'refuse' | 'keep-mode'): string {
  if (realOrResolved(stateDir) === '/') throw new UsageError(`nsmatrix: ${label}: refusing to use the host's root directory as the state directory`);
  const ours = holdsOnlyNsmatrixState(stateDir);
  if (!ours && foreign === 'refuse') {
    throw new UsageError(`nsmatrix: ${label}: ${resolve(stateDir)} holds other things than nsmatrix state: refusing to make it private (0700) and use it as the state directory`);
  }
  const real = ours ? ensurePrivateDirectory(stateDir, label) : ensureDirectory(stateDir, { mode: PRIVATE_DIR_MODE, label });
  for (const sub of STATE_SUBDIRS) ensurePrivateDirectory(join(real, sub), label);
  // Mode 0700 keeps nobody out of a directory another user owns: they can chmod it back, or swap what is in it.
  const [foreignOwner] = stateOwnerProblems(real);
  if (foreignOwner && foreign === 'refuse') {
    throw new UsageError(`nsmatrix: ${label}: ${foreignOwner.path} is owned by uid ${foreignOwner.uid}, not by this user: that user could replace what nsmatrix keeps there (chown it, or choose another state directory)`);
  }
  for (const sub of PRIVATE_FILE_DIRS) {
    const dir = join(real, sub);
    for (const name of readdirSync(dir)) {
      try {
        tighten(join(dir, name), PRIVATE_FILE_MODE, 'file');
      } catch {
        // Removed meanwhile (a build finished, a lock was released): nothing to tighten.
      }
    }
  }
  return real;
}

/** Absent, empty, only what nsmatrix keeps there, or an image store: /var (tmp, run, lib, ...) is none of these. */
function holdsOnlyNsmatrixState(stateDir: string): boolean {
  let names: string[];
  try {
    if (!statSync(stateDir).isDirectory()) return true; // reported by ensureDirectory
    names = readdirSync(stateDir);
  } catch {
    return true;
  }
  // lost+found: a file system of its own for the state directory (doctor suggests one when space is short).
  const ours: readonly string[] = [...STATE_SUBDIRS, 'lost+found'];
  return names.every((n) => ours.includes(n)) || names.includes('images');
}

export interface ModeProblem {
  path: string;
  /** Permission bits found, e.g. 0o755. */
  mode: number;
  /** Permission bits wanted. */
  want: number;
}

/** The parts of an existing state directory whose modes are looser than private (for `nsmatrix doctor`). */
export function stateModeProblems(stateDir: string): ModeProblem[] {
  const problems: ModeProblem[] = [];
  const check = (path: string, want: number, kind: 'directory' | 'file') => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st || (kind === 'directory' ? !st.isDirectory() : !st.isFile())) return;
    if ((st.mode & 0o777 & ~want) !== 0) problems.push({ path, mode: st.mode & 0o7777, want });
  };
  let real: string;
  try {
    real = realpathSync(stateDir);
  } catch {
    return problems;
  }
  check(real, PRIVATE_DIR_MODE, 'directory');
  for (const sub of STATE_SUBDIRS) check(join(real, sub), PRIVATE_DIR_MODE, 'directory');
  for (const sub of PRIVATE_FILE_DIRS) {
    const dir = join(real, sub);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      // absent: nothing to check
    }
    for (const name of names) check(join(dir, name), PRIVATE_FILE_MODE, 'file');
  }
  return problems;
}

/** The state directory and its subdirectories that another user owns (they could chmod or replace them). */
export function stateOwnerProblems(stateDir: string): { path: string; uid: number }[] {
  const me = process.getuid?.();
  if (me === undefined) return [];
  return [stateDir, ...STATE_SUBDIRS.map((sub) => join(stateDir, sub))]
    .map((path) => ({ path, uid: lstatSync(path, { throwIfNoEntry: false })?.uid }))
    .filter((p): p is { path: string; uid: number } => p.uid !== undefined && p.uid !== me);
}

/**
 * Creates `file` only if nothing exists at that path (O_EXCL, never through a symlink). Returns false when
 * something already existed there.
 */
export function createExclusive(file: string, mode = 0o644): boolean {
  try {
    closeSync(openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * The image store: `<stateDir>/images/<key>/{rootfs/, manifest.json, build.log}`. A published directory with a
 * manifest is a complete image (it appears by one atomic rename); `tmp/` holds builds in progress, `locks/` one
 * lock file per key, `logs/` the logs of failed builds.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KeyInputs } from './key.js';
import { securePrivateState } from '../lib/private-dir.js';

export const DEFAULT_STATE_DIR = '/var/lib/nsmatrix';

export function resolveStateDir(flag?: string): string {
  return resolve(flag ?? process.env.NSMATRIX_STATE_DIR ?? DEFAULT_STATE_DIR);
}

export interface Manifest {
  name: string;
  key: string;
  baseKey: string;
  /** `base` or `top`. */
  layer: 'base' | 'top';
  /** Source kind of the base: debian, ubuntu, tarball, directory, machine. */
  kind: string;
  keyInputs: KeyInputs;
  /** Absolute root filesystem: `<dir>/rootfs`, or the external directory of `path:`/`machine:` bases. */
  root: string;
  sizeBytes: number;
  created: string;
  lastUsed: string;
  toolVersion: string;
  madeFrom: string;
  buildMs: number;
}

const KEY_RE = /^[0-9a-f]{24}$/;
export const isKey = (text: string): boolean => KEY_RE.test(text);

export const storePaths = (stateDir: string) => ({
  images: join(stateDir, 'images'),
  tmp: join(stateDir, 'tmp'),
  locks: join(stateDir, 'locks'),
  logs: join(stateDir, 'logs'),
});

export function ensureStore(stateDir: string): void {
  // 0700, also when it existed looser: image trees keep their setuid binaries, so host users must not reach them
  // (like /var/lib/machines). securePrivateState makes every directory of storePaths() and `run/`; the commands
  // that start containers (run, shell) have already refused a state directory holding other things.
  securePrivateState(stateDir, `state directory ${stateDir}`, { foreign: 'keep-mode' });
}

export const imageDir = (stateDir: string, key: string): string => {
  if (!isKey(key)) throw new Error(`not an image key: ${key}`);
  return join(storePaths(stateDir).images, key);
};

/**
 * The manifest of a published image, or undefined. An image whose root is gone (the external directory of a
 * `path:`/`machine:` base was removed) is not an image any more: it reads as unpublished, so it is rebuilt when
 * needed and removed by gc, never handed to a container.
 */
export function readManifest(stateDir: string, key: string): Manifest | undefined {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(join(imageDir(stateDir, key), 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
  return existsSync(manifest.root) ? manifest : undefined;
}

/** Write a file so readers see the old or the new content, never half: temporary file, then rename. */
export function writeFileAtomic(path: string, text: string): void {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, path);
}

export function writeManifest(dir: string, manifest: Manifest): void {
  writeFileAtomic(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

export function touchLastUsed(stateDir: string, manifest: Manifest): Manifest {
  const updated = { ...manifest, lastUsed: new Date().toISOString() };
  try {
    writeManifest(imageDir(stateDir, manifest.key), updated);
  } catch {
    // Removed meanwhile (images rm): the caller still has a valid view of what it used.
  }
  return updated;
}

export function listManifests(stateDir: string): Manifest[] {
  const dir = storePaths(stateDir).images;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter(isKey)
    .map((key) => readManifest(stateDir, key))
    .filter((m): m is Manifest => m !== undefined);
}

/** A fresh temporary build directory for a key: `tmp/<key>.<pid>.<random>`. */
export function newBuildDir(stateDir: string, key: string): string {
  const dir = join(storePaths(stateDir).tmp, `${key}.${process.pid}.${randomBytes(6).toString('hex')}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

export function buildDirsOf(stateDir: string, key?: string): string[] {
  const dir = storePaths(stateDir).tmp;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => (key ? name.startsWith(`${key}.`) : true))
    .map((name) => join(dir, name));
}

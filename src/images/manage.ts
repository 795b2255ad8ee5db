/** Store management: list, remove, prune by age, and garbage-collect leftovers of killed builds. */
import { readdirSync } from 'node:fs';
import { InfraError } from '../errors.js';
import { sweepPropagateDirs } from '../lib/propagate.js';
import { removeTree } from './fs-ops.js';
import { BUILD_MACHINE_PREFIX } from './layer.js';
import { acquireKeyLock, tryKeyLock } from './lock.js';
import { buildDirsOf, imageDir, isKey, listManifests, storePaths, type Manifest } from './store.js';

/** A stored image and the architecture it was built for (undefined: not chosen by architecture, e.g. a tarball). */
export type ListedImage = Manifest & { arch?: string };

/** The architecture of an image: its base's key input (a top layer's base is looked up by key). */
export function archOfImage(manifest: Manifest, byKey: ReadonlyMap<string, Manifest>): string | undefined {
  const base = manifest.layer === 'base' ? manifest : byKey.get(manifest.baseKey);
  const arch = base?.keyInputs.arch;
  return typeof arch === 'string' ? arch : undefined;
}

export function listImages(stateDir: string): ListedImage[] {
  const manifests = listManifests(stateDir);
  const byKey = new Map(manifests.map((m) => [m.key, m]));
  return manifests
    .map((m): ListedImage => {
      const arch = archOfImage(m, byKey);
      return arch === undefined ? m : { ...m, arch };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || (a.arch ?? '').localeCompare(b.arch ?? '') || a.created.localeCompare(b.created));
}

async function removeKey(stateDir: string, key: string): Promise<void> {
  const lock = await acquireKeyLock(stateDir, key);
  try {
    await removeTree(imageDir(stateDir, key));
  } finally {
    await lock.release();
  }
}

/** Removes images by key (or unique key prefix) or by name (every image of that name); returns removed keys. */
export async function removeImage(stateDir: string, refOrKey: string): Promise<string[]> {
  const all = listManifests(stateDir);
  let targets = all.filter((m) => m.name === refOrKey);
  if (!targets.length && /^[0-9a-f]{4,24}$/.test(refOrKey)) {
    targets = all.filter((m) => m.key.startsWith(refOrKey));
    if (targets.length > 1) throw new InfraError(`key prefix ${refOrKey} is ambiguous: ${targets.map((m) => m.key).join(', ')}`);
  }
  if (!targets.length) throw new InfraError(`no image named or keyed ${refOrKey} in ${stateDir}`);
  for (const manifest of targets) await removeKey(stateDir, manifest.key);
  return targets.map((m) => m.key);
}

/** Removes images not used for `olderThanMs`; returns removed keys. */
export async function pruneImages(stateDir: string, olderThanMs: number, now = Date.now()): Promise<string[]> {
  const stale = listManifests(stateDir).filter((m) => now - Date.parse(m.lastUsed) > olderThanMs);
  for (const manifest of stale) await removeKey(stateDir, manifest.key);
  return stale.map((m) => m.key);
}

/**
 * Removes leftovers of killed builds (`tmp/<key>.*` whose key lock is free) and image directories without a
 * manifest. A build in progress holds its key's lock, so its directory is never touched.
 */
export async function gcImages(stateDir: string): Promise<string[]> {
  const removed: string[] = [];
  const byKey = new Map<string, string[]>();
  for (const dir of buildDirsOf(stateDir)) {
    const key = dir.slice(dir.lastIndexOf('/') + 1).split('.')[0] ?? '';
    byKey.set(key, [...(byKey.get(key) ?? []), dir]);
  }
  for (const [key, dirs] of byKey) {
    if (!isKey(key)) continue;
    // A held lock means a live build owns (at least one of) these directories: leave them to it.
    const lock = await tryKeyLock(stateDir, key);
    if (!lock) continue;
    try {
      for (const dir of dirs) {
        await removeTree(dir);
        removed.push(dir);
      }
    } finally {
      await lock.release();
    }
  }
  let names: string[];
  try {
    names = readdirSync(storePaths(stateDir).images);
  } catch {
    names = [];
  }
  const published = new Set(listManifests(stateDir).map((m) => m.key));
  // A SIGKILLed build's nspawn leaves its propagation directory under /run (empty: rmdir only).
  removed.push(...sweepPropagateDirs(BUILD_MACHINE_PREFIX));
  for (const name of names) {
    if (isKey(name) && !published.has(name)) {
      await removeTree(imageDir(stateDir, name));
      removed.push(imageDir(stateDir, name));
    }
  }
  return removed;
}

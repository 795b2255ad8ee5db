/**
 * Validated matrix models that root keeps between commands (ROOT_CACHE_DIR/matrix-models; see lib/root-cache.ts
 * for what root believes). Reading a matrix file is YAML parsing, building and running the zod schema and the
 * cross checks: some 13 ms of every `nsmatrix shell` in a project, for a file that rarely changes between two
 * commands. A model is a pure function of the file's text, the name it was given by, the directory that name is
 * resolved from, and nsmatrix's code: the key hashes all four (the code by the bundle's identity; without a bundle
 * nothing is kept). Only models of valid files are kept, so a file with problems is parsed, and its problems
 * reported, every time.
 */
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readRootCache, ROOT_CACHE_DIR, writeRootCache } from '../lib/root-cache.js';
import { bundleIdentity } from '../lib/version.js';
import type { MatrixModel } from './types.js';

/** Models kept at most; the least recently written go first. */
export const MAX_KEPT_MODELS = 64;

export interface ModelCacheOptions {
  dir?: string;
  /** The code's identity; default: the running bundle's (null: keep nothing). */
  build?: string | null;
}

function modelKey(text: string, file: string, build: string): string {
  return createHash('sha256').update(JSON.stringify([build, file, resolve(file), text])).digest('hex');
}

export function cachedModel(text: string, file: string, options: ModelCacheOptions = {}): MatrixModel | null {
  const build = options.build === undefined ? bundleIdentity() : options.build;
  if (build === null) return null;
  const data = readRootCache(join(options.dir ?? join(ROOT_CACHE_DIR, 'matrix-models'), `${modelKey(text, file, build)}.json`));
  if (data === null) return null;
  try {
    return JSON.parse(data.toString('utf8')) as MatrixModel;
  } catch {
    return null;
  }
}

export function keepModel(text: string, file: string, model: MatrixModel, options: ModelCacheOptions = {}): void {
  const build = options.build === undefined ? bundleIdentity() : options.build;
  if (build === null) return;
  const dir = options.dir ?? join(ROOT_CACHE_DIR, 'matrix-models');
  if (!writeRootCache(dir, `${modelKey(text, file, build)}.json`, JSON.stringify(model))) return;
  try {
    const kept = readdirSync(dir).filter((name) => name.endsWith('.json'));
    if (kept.length <= MAX_KEPT_MODELS) return;
    const byAge = kept.map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs })).sort((a, b) => a.mtime - b.mtime);
    for (const { name } of byAge.slice(0, kept.length - MAX_KEPT_MODELS)) rmSync(join(dir, name), { force: true });
  } catch {
    // another nsmatrix pruning at the same time: the next write prunes again
  }
}

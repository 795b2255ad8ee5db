/** `nsmatrix cache list | rm | prune`: the `cache:` directories and package pools kept in the state directory. */
import { existsSync, readdirSync } from 'node:fs';
import { rm as removePath } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { packagePoolsDir } from '../../caches/packages.js';
import { listCaches, pruneCaches, removeCache } from '../../caches/paths.js';
import { treeSize } from '../../images/fs-ops.js';
import { parseDuration } from '../../lib/duration.js';
import { formatBytes, usableStateDir } from './images.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

function pools(stateDir: string): string[] {
  const dir = packagePoolsDir(stateDir);
  return existsSync(dir) ? readdirSync(dir).filter((n) => /^[a-z0-9.-]+$/.test(n)) : [];
}

export async function list(args: { stateDir?: string; format: 'table' | 'json' }): Promise<number> {
  const stateDir = usableStateDir(args.stateDir, { create: false });
  const caches = await listCaches(stateDir);
  const packagePools = await Promise.all(pools(stateDir).map(async (name) => ({ name, bytes: await treeSize(join(packagePoolsDir(stateDir), name)) })));
  if (args.format === 'json') {
    out(JSON.stringify({ caches, packagePools }, null, 2));
    return 0;
  }
  if (caches.length === 0 && packagePools.length === 0) out(`no caches in ${stateDir}`);
  for (const c of caches) {
    out(`${c.id}  ${formatBytes(c.bytes).padStart(9)}  ${c.meta?.lastUsed ?? '-'}  ${c.meta?.path ?? '?'}  ${c.meta?.key ?? '?'}${c.published ? '' : '  (nothing saved yet)'}`);
  }
  for (const p of packagePools) out(`packages/${p.name}  ${formatBytes(p.bytes).padStart(9)}`);
  return 0;
}

/** Removes caches by id prefix (4+ hex digits), `packages/<pool>`, or `--all`. */
export async function rm(args: { stateDir?: string; ids: string[]; all?: boolean }): Promise<number> {
  const stateDir = usableStateDir(args.stateDir, { create: false });
  const caches = await listCaches(stateDir);
  const targets = args.all ? [...caches.map((c) => c.id), ...pools(stateDir).map((p) => `packages/${p}`)] : args.ids;
  if (targets.length === 0) throw new UsageError('cache rm: name a cache id (prefix), packages/POOL, or --all');
  for (const target of targets) {
    if (target.startsWith('packages/')) {
      const pool = target.slice('packages/'.length);
      if (!pools(stateDir).includes(pool)) throw new UsageError(`cache rm: no package pool ${pool}`);
      // Each pool file is published by link(2) and read by containers through their own overlay: removing is safe.
      await removePath(join(packagePoolsDir(stateDir), pool), { recursive: true, force: true });
      out(`removed ${target}`);
      continue;
    }
    if (!/^[0-9a-f]{4,24}$/.test(target)) throw new UsageError(`cache rm: ${JSON.stringify(target)} is not a cache id (4+ hex digits) or packages/POOL`);
    const matches = caches.filter((c) => c.id.startsWith(target));
    if (matches.length !== 1) throw new UsageError(`cache rm: ${target} matches ${matches.length} caches`);
    await removeCache(stateDir, matches[0]!.id);
    out(`removed ${matches[0]!.id}`);
  }
  return 0;
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i;

export function parseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()));
}

export async function prune(args: { stateDir?: string; olderThan?: string; maxSize?: string }): Promise<number> {
  const stateDir = usableStateDir(args.stateDir, { create: false });
  const olderThanMs = args.olderThan === undefined ? undefined : parseDuration(args.olderThan);
  if (args.olderThan !== undefined && olderThanMs === undefined) throw new UsageError(`cache prune: --older-than ${JSON.stringify(args.olderThan)} is not a duration (e.g. 14d)`);
  const maxBytes = args.maxSize === undefined ? undefined : parseSize(args.maxSize);
  if (args.maxSize !== undefined && maxBytes === undefined) throw new UsageError(`cache prune: --max-size ${JSON.stringify(args.maxSize)} is not a size (e.g. 10G, 500M)`);
  if (olderThanMs === undefined && maxBytes === undefined) throw new UsageError('cache prune: give --older-than, --max-size or both');
  const removed = await pruneCaches(stateDir, { ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) });
  for (const id of removed) out(`removed ${id}`);
  out(`${removed.length} cache(s) removed`);
  return 0;
}

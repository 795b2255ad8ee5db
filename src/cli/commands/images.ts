/** `nsmatrix images build|list|rm|prune`: the image store from the command line. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { formatDuration, parseDuration } from '../../lib/duration.js';
import { checkStateDir, stateDirLabel } from '../../lib/run-paths.js';
import { securePrivateState } from '../../lib/private-dir.js';
import { listImages, provisionImage, pruneImages, removeImage, resolveStateDir } from '../../images/index.js';
import type { Manifest } from '../../images/index.js';
import { didYouMean } from '../../lib/did-you-mean.js';
import { checkArchFlag, hostArch, requireRunnable } from '../../lib/arch.js';
import { packagePool } from '../../caches/packages.js';

/**
 * The state directory a command that reads or removes what is in it may use: never /, /proc, /sys, /dev, nor a
 * directory that holds other things than nsmatrix state (`gc --state-dir /var` would otherwise clean /var/run
 * and /var/tmp). `create: false` (listing) leaves a directory that does not exist alone.
 */
export function usableStateDir(flag: string | undefined, options: { create: boolean }): string {
  const stateDir = resolveStateDir(flag);
  const label = stateDirLabel(flag, stateDir);
  checkStateDir(stateDir, label);
  if (!options.create && !existsSync(stateDir)) return stateDir;
  securePrivateState(stateDir, label);
  return stateDir;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function build(args: { refs: string[]; stateDir?: string; packages: string[]; arch?: string }): Promise<number> {
  const arch = checkArchFlag(args.arch) ?? hostArch();
  // Building a foreign image runs its maintainer scripts under emulation: the host must be able to.
  requireRunnable([arch], { boot: false });
  const stateDir = usableStateDir(args.stateDir, { create: true });
  const many = args.refs.length > 1;
  const results = await Promise.all(
    args.refs.map(async (ref) => {
      const started = Date.now();
      const image = await provisionImage(
        { name: ref, spec: { packages: [] }, packages: args.packages, arch },
        { stateDir, packagePool: packagePool(stateDir), onProgress: (line) => process.stderr.write(`${many ? `[${ref}] ` : ''}${line}\n`) },
      );
      return { image, ms: Date.now() - started };
    }),
  );
  for (const { image, ms } of results) {
    out(`${image.name}  ${arch}  ${image.key}  ${image.cached ? 'cached' : `built in ${formatDuration(ms)}`}`);
    out(`  made from: ${image.madeFrom}`);
    out(`  root: ${image.root}`);
  }
  return 0;
}

export function formatBytes(bytes: number): string {
  if (bytes <= 0) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function ago(iso: string, now: number): string {
  const ms = now - Date.parse(iso);
  return Number.isFinite(ms) ? `${formatDuration(Math.max(0, ms))} ago` : '?';
}

export function imagesTable(manifests: (Manifest & { arch?: string })[], now = Date.now()): string[] {
  const rows = [
    ['NAME', 'ARCH', 'KEY', 'LAYER', 'SIZE', 'AGE', 'LAST USED'],
    ...manifests.map((m) => [m.name, m.arch ?? '-', m.key, m.layer, formatBytes(m.sizeBytes), ago(m.created, now), ago(m.lastUsed, now)]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd());
}

export async function list(args: { stateDir?: string; format: 'table' | 'json' }): Promise<number> {
  const stateDir = usableStateDir(args.stateDir, { create: false });
  const manifests = existsSync(stateDir) ? listImages(stateDir) : [];
  if (args.format === 'json') out(JSON.stringify(manifests, null, 2));
  else if (manifests.length === 0) out(`no images in ${stateDir}`);
  else for (const line of imagesTable(manifests)) out(line);
  return 0;
}

export async function rm(args: { stateDir?: string; refs: string[] }): Promise<number> {
  const stateDir = usableStateDir(args.stateDir, { create: false });
  // A name or key that matches nothing is the user's typo (exit 2, with the closest name), checked before any removal.
  const manifests = existsSync(stateDir) ? listImages(stateDir) : [];
  for (const ref of args.refs) {
    if (manifests.some((m) => m.name === ref || (/^[0-9a-f]{4,24}$/.test(ref) && m.key.startsWith(ref)))) continue;
    const names = [...new Set(manifests.map((m) => m.name))];
    const hint = didYouMean(ref, names) || (names.length > 0 ? ` (images: ${names.join(', ')})` : ' (the cache is empty)');
    throw new UsageError(`nsmatrix: images rm ${ref}: no image named or keyed ${ref} in ${stateDir}${hint}`);
  }
  for (const ref of args.refs) {
    for (const key of await removeImage(stateDir, ref)) out(`removed ${key} (${ref})`);
  }
  return 0;
}

export async function prune(args: { stateDir?: string; olderThan?: string }): Promise<number> {
  const text = args.olderThan ?? '14d';
  const olderThanMs = parseDuration(text);
  if (olderThanMs === undefined) throw new UsageError(`nsmatrix: --older-than: invalid duration "${text}" (e.g. 14d, 12h, 90m)`);
  const stateDir = usableStateDir(args.stateDir, { create: true });
  const removed = await pruneImages(stateDir, olderThanMs);
  for (const key of removed) out(`removed ${key}`);
  out(`pruned ${removed.length} image(s) unused for ${text}`);
  return 0;
}

/**
 * Caches (issue 15) on matrices/packaging.yaml: the example's cells install their build dependencies with apt, so
 * its second run takes them from the package pool, and compile through ccache kept as a `cache:` directory. Images
 * are built by a warm-up run (not measured); then, PAIRS times, every cache of the state directory (package pools
 * and `cache:` directories) is emptied and the matrix run twice: first (cold caches) and second (warm). Reports the
 * medians of each run's wall time, of the second/first ratio per pair, and of the bytes apt said it would fetch.
 *
 *   npm run build && node --import tsx bench/caches-packaging.ts
 *
 * Environment: NSMATRIX_BENCH_STATE_DIR (a kept state directory; default: a fresh one, removed after),
 * NSMATRIX_BENCH_PACKAGING_MATRIX (default matrices/packaging.yaml), NSMATRIX_BENCH_PACKAGING_FILTER (a --filter,
 * e.g. image=debian:bookworm; default: every cell), NSMATRIX_BENCH_PAIRS (default 3).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packagePoolsDir } from '../src/caches/packages.js';
import { listCaches, removeCache } from '../src/caches/paths.js';
import { downloadedBytes } from './caches.js';
import { median, report } from './stats.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

export async function benchCachesPackaging(options: { stateDir: string; file: string; filter?: string; pairs: number }): Promise<Record<string, number>> {
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-packaging-');
  const run = (name: string) => {
    const out = join(work, name);
    const args = [CLI, 'run', options.file, '--state-dir', options.stateDir, '-o', out, '--plain', ...(options.filter ? ['--filter', options.filter] : [])];
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore', timeout: 3_600_000 });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (r.status !== 0) throw new Error(`bench caches-packaging: run ${name} failed (exit ${r.status}); see ${out}`);
    return { ms, bytes: downloadedBytes(out) };
  };
  try {
    run('warm-up');
    const firsts: { ms: number; bytes: number }[] = [];
    const seconds: { ms: number; bytes: number }[] = [];
    for (let pair = 0; pair < options.pairs; pair++) {
      rmSync(packagePoolsDir(options.stateDir), { recursive: true, force: true });
      for (const cache of await listCaches(options.stateDir)) await removeCache(options.stateDir, cache.id);
      firsts.push(run(`first-${pair}`));
      seconds.push(run(`second-${pair}`));
      process.stderr.write(`pair ${pair}: first ${firsts[pair]!.ms.toFixed(0)} ms ${firsts[pair]!.bytes} B, second ${seconds[pair]!.ms.toFixed(0)} ms ${seconds[pair]!.bytes} B\n`);
    }
    const rows = {
      firstMs: Math.round(median(firsts.map((r) => r.ms))),
      secondMs: Math.round(median(seconds.map((r) => r.ms))),
      ratio: Number(median(firsts.map((f, i) => seconds[i]!.ms / f.ms)).toFixed(3)),
      firstDownloadedBytes: median(firsts.map((r) => r.bytes)),
      secondDownloadedBytes: median(seconds.map((r) => r.bytes)),
      pairs: options.pairs,
    };
    report(`caches: ${options.file}${options.filter ? ` --filter ${options.filter}` : ''}, ${options.pairs} pair(s)`, [
      ['first run, caches emptied, median (ms)', rows.firstMs],
      ['second run, median (ms)', rows.secondMs],
      ['second / first, median of pairs (ratio)', rows.ratio, 'aim: at most 0.6'],
      ['downloaded, first run, median (bytes)', rows.firstDownloadedBytes],
      ['downloaded, second run, median (bytes)', rows.secondDownloadedBytes],
    ]);
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const kept = process.env.NSMATRIX_BENCH_STATE_DIR;
  const stateDir = kept ?? mkdtempSync('/var/tmp/nsmatrix-bench-state-');
  try {
    const rows = await benchCachesPackaging({
      stateDir,
      file: resolve(process.env.NSMATRIX_BENCH_PACKAGING_MATRIX ?? 'matrices/packaging.yaml'),
      ...(process.env.NSMATRIX_BENCH_PACKAGING_FILTER ? { filter: process.env.NSMATRIX_BENCH_PACKAGING_FILTER } : {}),
      pairs: Number(process.env.NSMATRIX_BENCH_PAIRS ?? 3),
    });
    process.stdout.write(`\n${JSON.stringify(rows, null, 2)}\n`);
  } finally {
    if (!kept) rmSync(stateDir, { recursive: true, force: true });
  }
}

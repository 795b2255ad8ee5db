/**
 * Caches (issue 15): one apt-heavy matrix run twice on already-built images, the package pool emptied before the
 * first run only. Reports wall time of each run, their ratio, and the bytes apt downloaded in each (the sum of
 * "Need to get" over every cell's logs). NSMATRIX_BENCH_CACHES_MATRIX=matrices/packaging.yaml measures that matrix
 * instead of the default small one (bookworm, two cells installing a compiler toolchain and libraries), which
 * is what fits this 2-core machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packagePoolsDir } from '../src/caches/packages.js';
import { report } from './stats.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

const DEFAULT_PACKAGES = ['build-essential', 'pkg-config', 'libssl-dev', 'zlib1g-dev', 'python3'];

function defaultMatrix(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nsmatrix.yaml');
  writeFileSync(
    file,
    [
      'matrix:',
      '  image: [debian:bookworm]',
      '  n: [1, 2]',
      'fail-fast: false',
      'steps:',
      '  - name: install',
      '    run: |',
      '      apt-get update -qq',
      `      apt-get install -y --no-install-recommends ${DEFAULT_PACKAGES.join(' ')}`,
    ].join('\n') + '\n',
  );
  return file;
}

const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };

/** Bytes apt said it would fetch, over every step log of a run's output directory. */
export function downloadedBytes(out: string): number {
  let total = 0;
  for (const cell of readdirSync(out, { withFileTypes: true }).filter((e) => e.isDirectory())) {
    for (const log of readdirSync(join(out, cell.name)).filter((n) => n.endsWith('.log'))) {
      for (const m of readFileSync(join(out, cell.name, log), 'utf8').matchAll(/Need to get ([\d.,]+) (B|kB|MB|GB)/g)) {
        total += Number(m[1]!.replace(/,/g, '')) * UNITS[m[2]!]!;
      }
    }
  }
  return Math.round(total);
}

function runOnce(file: string, stateDir: string, out: string): { ms: number; code: number | null } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--plain'], { stdio: 'ignore', timeout: 3_600_000 });
  return { ms: Date.now() - started, code: r.status };
}

export async function benchCaches(options: { stateDir: string }): Promise<Record<string, number>> {
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-caches-');
  try {
    const chosen = process.env.NSMATRIX_BENCH_CACHES_MATRIX;
    const file = chosen ? resolve(chosen) : defaultMatrix(join(work, 'm'));
    // Images built first (not measured): a warm-up run, then an empty pool.
    const warm = runOnce(file, options.stateDir, join(work, 'warm'));
    if (warm.code !== 0) throw new Error(`bench caches: the warm-up run failed (exit ${warm.code})`);
    rmSync(packagePoolsDir(options.stateDir), { recursive: true, force: true });
    const first = runOnce(file, options.stateDir, join(work, 'first'));
    const second = runOnce(file, options.stateDir, join(work, 'second'));
    const rows = {
      firstMs: first.ms,
      secondMs: second.ms,
      ratio: Number((second.ms / first.ms).toFixed(3)),
      firstDownloadedBytes: downloadedBytes(join(work, 'first')),
      secondDownloadedBytes: downloadedBytes(join(work, 'second')),
      exitCodes: (first.code ?? 99) * 100 + (second.code ?? 99),
    };
    report(`caches: ${chosen ?? 'bookworm x2 installing ' + DEFAULT_PACKAGES.join(' ')}`, [
      ['first run, cold package pool (ms)', rows.firstMs],
      ['second run (ms)', rows.secondMs],
      ['second / first (ratio)', rows.ratio, 'aim: at most 0.6'],
      ['downloaded, first run (bytes)', rows.firstDownloadedBytes],
      ['downloaded, second run (bytes)', rows.secondDownloadedBytes],
    ]);
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Whole `nsmatrix run` invocations on a cached image: per-cell overhead against a raw systemd-nspawn loop over the
 * same image and command in the same run, and the peak memory of a run whose step prints 1 GiB (it must stay flat:
 * output is streamed to the log, never held).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionImage } from '../src/images/index.js';
import { detectHost } from '../src/lib/host.js';
import { hostNspawnArgs, hostNspawnEnv } from '../src/lib/nspawn.js';
import { median, report, timeIt } from './stats.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

function matrix(dir: string, cells: number, run: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nsmatrix.yaml');
  const values = Array.from({ length: cells }, (_, i) => i + 1).join(', ');
  writeFileSync(file, `matrix:\n  image: [debian:bookworm]\n  n: [${values}]\nfail-fast: false\nsteps:\n  - name: s\n    run: ${JSON.stringify(run)}\n`);
  return file;
}

/** Peak RSS in MiB of a whole command, from GNU time. */
function peakRssMiB(args: string[]): { code: number | null; mib: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...args], { encoding: 'utf8', maxBuffer: 2 ** 26 });
  const kib = Number(r.stderr.trim().split('\n').pop());
  return { code: r.status, mib: kib / 1024 };
}

export async function benchCliRun(options: { stateDir?: string; cells?: number; repeats?: number } = {}): Promise<Record<string, number>> {
  const cells = options.cells ?? 20;
  const repeats = options.repeats ?? 5;
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-run-');
  const stateDir = options.stateDir ?? join(work, 'state');
  try {
    const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [] }, { stateDir });
    const file = matrix(join(work, 'm'), cells, 'true');
    const out = join(work, 'out');
    const nsmatrix = (jobs: number) => execFileSync(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--jobs', String(jobs), '--plain'], { stdio: 'ignore' });

    const host = detectHost();
    const upper = join(work, 'upper');
    const raw = () => {
      for (let i = 0; i < cells; i++) {
        rmSync(upper, { recursive: true, force: true });
        mkdirSync(upper);
        execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', image.root, '--read-only', `--overlay=+/:${upper}:/`, '--as-pid2', '--pipe', `--machine=bench-${i}`, '--', '/bin/true'], {
          stdio: 'ignore',
          env: { ...process.env, ...hostNspawnEnv(host) },
        });
      }
    };
    // Interleaved rounds (start-up, nsmatrix, raw loop): on a host whose load changes from minute to minute, each
    // round's ratio compares runs made at about the same moment; the median of those ratios is the figure.
    const starts: number[] = [];
    const serials: number[] = [];
    const raws: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < repeats; round++) {
      const [s, n, r] = [(await timeIt(1, () => execFileSync(process.execPath, [CLI, '--version'], { stdio: 'ignore' }))).median, (await timeIt(1, () => nsmatrix(1))).median, (await timeIt(1, raw)).median];
      starts.push(s);
      serials.push(n);
      raws.push(r);
      ratios.push((n - s) / r);
    }
    const start = { median: median(starts) };
    const serial = { median: median(serials) };
    const rawLoop = { median: median(raws) };
    const parallel = await timeIt(repeats, () => nsmatrix(2));
    const perCell = (serial.median - start.median) / cells;
    const rawPerCell = rawLoop.median / cells;
    const pairedRatio = median(ratios);

    const big = matrix(join(work, 'big'), 1, 'yes nsmatrix-output-line | head -c 1073741824');
    const small = matrix(join(work, 'small'), 1, 'yes nsmatrix-output-line | head -c 10485760');
    const runArgs = (f: string) => [process.execPath, CLI, 'run', f, '--state-dir', stateDir, '-o', join(work, 'out-big'), '--plain'];
    const rss10 = peakRssMiB(runArgs(small));
    const started = performance.now();
    const rss1g = peakRssMiB(runArgs(big));
    const bigMs = performance.now() - started;
    // The same output from raw systemd-nspawn --pipe into a file: what the step-to-log path is measured against.
    const rawOut = openSync(join(work, 'raw-big.log'), 'w');
    const rawStarted = performance.now();
    try {
      rmSync(upper, { recursive: true, force: true });
      mkdirSync(upper);
      execFileSync('systemd-nspawn', ['--quiet', ...hostNspawnArgs(host), '-D', image.root, '--read-only', `--overlay=+/:${upper}:/`, '--as-pid2', '--pipe', '--machine=bench-big', '--', '/bin/sh', '-c', 'yes nsmatrix-output-line | head -c 1073741824'], {
        stdio: ['ignore', rawOut, 'ignore'],
        env: { ...process.env, ...hostNspawnEnv(host) },
      });
    } finally {
      closeSync(rawOut);
    }
    const rawBigMs = performance.now() - rawStarted;
    rmSync(join(work, 'raw-big.log'), { force: true });

    report(`nsmatrix run on a cached debian:bookworm image, ${cells} cells of /bin/true (median of ${repeats})`, [
      [`nsmatrix run --jobs 1 (${cells} cells)`, serial.median],
      [`nsmatrix run --jobs 2 (${cells} cells)`, parallel.median],
      [`raw systemd-nspawn overlay loop (${cells} containers, serial)`, rawLoop.median],
      ['per cell: nsmatrix (run minus CLI start-up) / cells', perCell, `ratio ${(perCell / rawPerCell).toFixed(2)}x raw nspawn`],
      ['per cell: raw systemd-nspawn', rawPerCell],
      [`per-round ratio nsmatrix/raw, median of ${repeats} interleaved rounds (x)`, pairedRatio, `rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}`],
    ]);
    const mibPerS = (ms: number) => 1024 / (ms / 1000);
    report('a step that prints 1 GiB of 21-byte lines: throughput end to end, and peak RSS of the whole nsmatrix process', [
      ['nsmatrix run, step output to its log, whole command (MiB/s)', mibPerS(bigMs), `${(bigMs / 1000).toFixed(1)} s, exit ${rss1g.code}`],
      ['raw systemd-nspawn --pipe into a file (MiB/s)', mibPerS(rawBigMs), `${(rawBigMs / 1000).toFixed(1)} s`],
      ['10 MiB of output (MiB)', rss10.mib],
      ['1 GiB of output (MiB)', rss1g.mib],
    ]);
    return {
      perCellMs: perCell,
      rawPerCellMs: rawPerCell,
      ratio: perCell / rawPerCell,
      pairedRatio,
      run2Ms: parallel.median,
      throughputMiBs: mibPerS(bigMs),
      rawThroughputMiBs: mibPerS(rawBigMs),
      rss10MiB: rss10.mib,
      rss1GiB: rss1g.mib,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export { median };

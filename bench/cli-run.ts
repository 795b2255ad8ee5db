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

export async function benchCliRun(options: { stateDir?: string; cells?: number; repeats?: number; bigRounds?: number } = {}): Promise<Record<string, number>> {
  const cells = options.cells ?? 20;
  const repeats = options.repeats ?? 9;
  const bigRounds = options.bigRounds ?? 3;
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-run-');
  const stateDir = options.stateDir ?? join(work, 'state');
  try {
    const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [] }, { stateDir });
    const file = matrix(join(work, 'm'), cells, 'true');
    const out = join(work, 'out');
    const one = matrix(join(work, 'one'), 1, 'true');
    const runOf = (f: string, o: string, jobs: number) => execFileSync(CLI, ['run', f, '--state-dir', stateDir, '-o', o, '--jobs', String(jobs), '--plain'], { stdio: 'ignore' });
    const nsmatrix = (jobs: number) => runOf(file, out, jobs);

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
    // Warm-up: a freshly built bundle has no V8 code cache yet; its first runs compile and save one (about 20 ms at
    // exit, for up to four runs). The figures are the steady state of a user who runs the tool again and again.
    for (let i = 0; i < 4; i++) nsmatrix(1);
    execFileSync(CLI, ['--version'], { stdio: 'ignore' });
    // Interleaved rounds (start-up, nsmatrix, a one-cell run, raw loop): on a host whose load changes from minute to
    // minute, each round's ratio compares runs made at about the same moment; the median of those ratios is the
    // figure. The one-cell run splits a run's cost into what every cell adds and what a run costs once; alone, it
    // is a run with nothing to overlap (a cell's container is set up while the one before runs: runtime/exec.ts).
    const starts: number[] = [];
    const serials: number[] = [];
    const singles: number[] = [];
    const raws: number[] = [];
    const ratios: number[] = [];
    const marginalRatios: number[] = [];
    const singleRatios: number[] = [];
    for (let round = 0; round < repeats; round++) {
      const s = (await timeIt(1, () => execFileSync(CLI, ['--version'], { stdio: 'ignore' }))).median;
      const n = (await timeIt(1, () => nsmatrix(1))).median;
      const n1 = (await timeIt(1, () => runOf(one, join(work, 'out-one'), 1))).median;
      const r = (await timeIt(1, raw)).median;
      starts.push(s);
      serials.push(n);
      singles.push(n1);
      raws.push(r);
      ratios.push((n - s) / r);
      marginalRatios.push((n - n1) / (cells - 1) / (r / cells));
      singleRatios.push((n1 - s) / (r / cells));
    }
    const start = { median: median(starts) };
    const serial = { median: median(serials) };
    const rawLoop = { median: median(raws) };
    const parallel = await timeIt(repeats, () => nsmatrix(2));
    const perCell = (serial.median - start.median) / cells;
    const rawPerCell = rawLoop.median / cells;
    const pairedRatio = median(ratios);
    const marginal = (serial.median - median(singles)) / (cells - 1);
    const fixed = median(singles) - start.median - marginal;

    const big = matrix(join(work, 'big'), 1, 'yes nsmatrix-output-line | head -c 1073741824');
    const small = matrix(join(work, 'small'), 1, 'yes nsmatrix-output-line | head -c 10485760');
    const runArgs = (f: string) => [process.execPath, CLI, 'run', f, '--state-dir', stateDir, '-o', join(work, 'out-big'), '--plain'];
    const rss10 = peakRssMiB(runArgs(small));
    // The same output from raw systemd-nspawn --pipe into a file: what the step-to-log path is measured against.
    const rawBig = () => {
      const rawOut = openSync(join(work, 'raw-big.log'), 'w');
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
    };
    // Interleaved pairs, as above: a 1 GiB run takes seconds, and the load moves between them.
    const bigMss: number[] = [];
    const rawBigMss: number[] = [];
    const exits: (number | null)[] = [];
    let rss1GiB = 0;
    for (let round = 0; round < bigRounds; round++) {
      rmSync(join(work, 'out-big'), { recursive: true, force: true });
      const started = performance.now();
      const rss = peakRssMiB(runArgs(big));
      bigMss.push(performance.now() - started);
      exits.push(rss.code);
      rss1GiB = Math.max(rss1GiB, rss.mib);
      rawBigMss.push((await timeIt(1, rawBig)).median);
      rmSync(join(work, 'raw-big.log'), { force: true });
    }
    const bigMs = median(bigMss);
    const rawBigMs = median(rawBigMss);
    const bigRatio = median(bigMss.map((ms, i) => rawBigMss[i]! / ms));

    report(`nsmatrix run on a cached debian:bookworm image, ${cells} cells of /bin/true (median of ${repeats})`, [
      [`nsmatrix run --jobs 1 (${cells} cells)`, serial.median],
      [`nsmatrix run --jobs 2 (${cells} cells)`, parallel.median],
      [`raw systemd-nspawn overlay loop (${cells} containers, serial)`, rawLoop.median],
      ['per cell: nsmatrix (run minus CLI start-up) / cells', perCell, `ratio ${(perCell / rawPerCell).toFixed(2)}x raw nspawn`],
      ['per cell: raw systemd-nspawn', rawPerCell],
      [`per-round ratio nsmatrix/raw, median of ${repeats} interleaved rounds (x)`, pairedRatio, `rounds ${ratios.map((r) => r.toFixed(2)).join(' ')}`],
      // Not the target's figure (that is the line above): how the whole-run ratio splits, for the notes.
      [`what each further cell adds: (${cells}-cell run - 1-cell run) / ${cells - 1}`, marginal, `ratio ${(marginal / rawPerCell).toFixed(2)}x raw nspawn`],
      [`per-round ratio of that to raw nspawn, median of ${repeats} rounds (x)`, median(marginalRatios), `rounds ${marginalRatios.map((r) => r.toFixed(2)).join(' ')}`],
      ['what a run costs once: 1-cell run - CLI start-up - one further cell', fixed, 'its first container is not overlapped'],
      ['a 1-cell run (nothing to overlap): run minus CLI start-up', median(singles) - start.median, `per-round ratio ${median(singleRatios).toFixed(2)}x one raw container`],
    ]);
    const mibPerS = (ms: number) => 1024 / (ms / 1000);
    const mibs = (list: number[]) => list.map((ms) => mibPerS(ms).toFixed(0)).join(' ');
    report(`a step that prints 1 GiB of 21-byte lines: throughput end to end (median of ${bigRounds} interleaved pairs), and peak RSS of the whole nsmatrix process`, [
      ['nsmatrix run, step output to its log, whole command (MiB/s)', mibPerS(bigMs), `rounds ${mibs(bigMss)}, exit ${exits.join(' ')}`],
      ['raw systemd-nspawn --pipe into a file (MiB/s)', mibPerS(rawBigMs), `rounds ${mibs(rawBigMss)}`],
      ['per-round throughput ratio nsmatrix/raw (x)', bigRatio],
      ['10 MiB of output (MiB)', rss10.mib],
      ['1 GiB of output, the largest of the rounds (MiB)', rss1GiB],
    ]);
    return {
      perCellMs: perCell,
      rawPerCellMs: rawPerCell,
      ratio: perCell / rawPerCell,
      pairedRatio,
      marginalPerCellMs: marginal,
      marginalPairedRatio: median(marginalRatios),
      fixedMs: fixed,
      singleCellMs: median(singles) - start.median,
      singleCellPairedRatio: median(singleRatios),
      run2Ms: parallel.median,
      throughputMiBs: mibPerS(bigMs),
      rawThroughputMiBs: mibPerS(rawBigMs),
      throughputRatio: bigRatio,
      rss10MiB: rss10.mib,
      rss1GiB,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export { median };

/**
 * Whole `nsmatrix run` invocations on a cached image: per-cell overhead against a raw systemd-nspawn loop over the
 * same image and command in the same run, and the peak memory of a run whose step prints 1 GiB (it must stay flat:
 * output is streamed to the log, never held).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    const start = await timeIt(repeats, () => execFileSync(process.execPath, [CLI, '--version'], { stdio: 'ignore' }));
    const serial = await timeIt(repeats, () => nsmatrix(1));
    const parallel = await timeIt(repeats, () => nsmatrix(2));
    const rawLoop = await timeIt(repeats, raw);
    const perCell = (serial.median - start.median) / cells;
    const rawPerCell = rawLoop.median / cells;

    const big = matrix(join(work, 'big'), 1, 'yes nsmatrix-output-line | head -c 1073741824');
    const small = matrix(join(work, 'small'), 1, 'yes nsmatrix-output-line | head -c 10485760');
    const runArgs = (f: string) => [process.execPath, CLI, 'run', f, '--state-dir', stateDir, '-o', join(work, 'out-big'), '--plain'];
    const rss10 = peakRssMiB(runArgs(small));
    const started = performance.now();
    const rss1g = peakRssMiB(runArgs(big));
    const bigMs = performance.now() - started;

    report(`nsmatrix run on a cached debian:bookworm image, ${cells} cells of /bin/true (median of ${repeats})`, [
      [`nsmatrix run --jobs 1 (${cells} cells)`, serial.median],
      [`nsmatrix run --jobs 2 (${cells} cells)`, parallel.median],
      [`raw systemd-nspawn overlay loop (${cells} containers, serial)`, rawLoop.median],
      ['per cell: nsmatrix (run minus CLI start-up) / cells', perCell, `ratio ${(perCell / rawPerCell).toFixed(2)}x raw nspawn`],
      ['per cell: raw systemd-nspawn', rawPerCell],
    ]);
    report('a step that prints to its log: peak RSS of the whole nsmatrix process', [
      ['10 MiB of output (MiB)', rss10.mib],
      ['1 GiB of output (MiB)', rss1g.mib, `exit ${rss1g.code}, ${(bigMs / 1000).toFixed(1)} s`],
    ]);
    return { perCellMs: perCell, rawPerCellMs: rawPerCell, ratio: perCell / rawPerCell, run2Ms: parallel.median, rss10MiB: rss10.mib, rss1GiB: rss1g.mib };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export { median };

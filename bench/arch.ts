/**
 * Architectures (NSMATRIX_BENCH=arch): image build time per architecture (base and top layer of
 * matrices/multi-arch.yaml's image, built one at a time into a fresh state directory), then the same package build
 * (the example's package from source, its "build" step) on native amd64, native i386 and emulated arm64, one cell at a
 * time, as times and as a ratio to amd64. Needs root, the mirror, and qemu-user-static's binfmt entries.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { imageRequestFor, listImages, provisionImage } from '../src/images/index.js';
import { loadMatrix } from '../src/matrix/index.js';
import type { RunResult } from '../src/run/result.js';
import { report } from './stats.js';

const ARCHES = ['amd64', 'i386', 'arm64'];
const MATRIX = resolve('matrices/multi-arch.yaml');

export async function benchArch(options: { stateDir?: string } = {}): Promise<Record<string, number>> {
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-arch-');
  const stateDir = options.stateDir ?? join(work, 'state');
  try {
    const model = await loadMatrix(MATRIX);
    const figures: Record<string, number> = {};
    for (const arch of ARCHES) {
      const started = Date.now();
      await provisionImage(imageRequestFor('debian:bookworm', model, arch), { stateDir });
      figures[`image ${arch} (s)`] = (Date.now() - started) / 1000;
    }
    for (const manifest of listImages(stateDir)) {
      if (manifest.arch && ARCHES.includes(manifest.arch)) figures[`${manifest.layer} layer ${manifest.arch} (s)`] = manifest.buildMs / 1000;
    }
    const out = join(work, 'out');
    const cli = resolve('dist/src/cli/main.js');
    execFileSync(process.execPath, [cli, 'run', MATRIX, '--state-dir', stateDir, '-o', out, '--jobs', '1', '-r', 'json', '--plain'], { stdio: 'ignore' });
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    for (const cell of result.cells) {
      const arch = String(cell.values.arch);
      for (const step of cell.steps) {
        const ms = step.attempts.at(-1)?.durationMs;
        if (ms !== undefined) figures[`${step.name} ${arch} (s)`] = ms / 1000;
      }
    }
    for (const arch of ARCHES.filter((a) => a !== 'amd64')) {
      for (const what of ['build', 'test suite', 'fetch source']) {
        const native = figures[`${what} amd64 (s)`];
        const other = figures[`${what} ${arch} (s)`];
        if (native && other) figures[`${what} ${arch}/amd64 (x)`] = other / native;
      }
      const base = figures['base layer amd64 (s)'];
      const other = figures[`base layer ${arch} (s)`];
      if (base && other) figures[`base layer ${arch}/amd64 (x)`] = other / base;
    }
    report('architectures: images and the same package build (matrices/multi-arch.yaml), one at a time', Object.entries(figures).map(([name, value]) => [name, value]));
    return figures;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchArch();

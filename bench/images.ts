/**
 * Image provisioning: a cold build against plain debootstrap (and plain mmdebstrap) of the same suite in the same
 * run, cache-hit provisioning, the copy of a base for a top layer, and a top-layer rebuild after adding one package.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pickMirrors, readHostAptSources } from '../src/images/apt-sources.js';
import { provisionImage } from '../src/images/index.js';
import { copyTree, removeTree, syncFileSystem } from '../src/images/fs-ops.js';
import { imageDir, readManifest } from '../src/images/store.js';
import type { ImageRequest } from '../src/images/types.js';
import { median, report, timeIt } from './stats.js';

const SUITE = 'bookworm';
const request = (packages: string[]): ImageRequest => ({ name: `debian:${SUITE}`, spec: { packages: [] }, packages });

export async function benchImages(options: { coldRuns?: number; hitRuns?: number } = {}): Promise<Record<string, number>> {
  const coldRuns = options.coldRuns ?? 3;
  const hitRuns = options.hitRuns ?? 50;
  const mirror = pickMirrors(readHostAptSources()).main;
  if (!mirror) throw new Error('no Debian mirror in the host apt sources');
  const work = mkdtempSync('/var/tmp/nsmatrix-bench-images-');
  try {
    let stateDir = '';
    const cold = await timeIt(coldRuns, async () => {
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      stateDir = mkdtempSync(join(work, 'state-'));
      await provisionImage(request([]), { stateDir });
    });
    const plainTarget = join(work, 'plain');
    const debootstrap = await timeIt(coldRuns, async () => {
      await removeTree(plainTarget);
      execFileSync('debootstrap', ['--variant=minbase', SUITE, plainTarget, mirror], { stdio: 'ignore' });
    });
    await removeTree(plainTarget);
    const mmdebstrap = await timeIt(coldRuns, async () => {
      await removeTree(plainTarget);
      execFileSync('mmdebstrap', ['--variant=minbase', '--mode=root', SUITE, plainTarget, `deb ${mirror} ${SUITE} main`], { stdio: 'ignore' });
    });
    await removeTree(plainTarget);

    const withHello = await provisionImage(request(['hello']), { stateDir });
    const hit = await timeIt(hitRuns, () => provisionImage(request(['hello']), { stateDir }));
    const copyTarget = join(work, 'copy');
    // Removing a tree right before copying one slows the copy several times over on ext4 (the deletion is still
    // being written back): every removal below is followed by a flush, outside the measured time.
    const settle = async (path: string) => {
      await removeTree(path);
      await syncFileSystem(work);
    };
    const copySamples: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      const started = performance.now();
      await copyTree(join(imageDir(stateDir, withHello.baseKey), 'rootfs'), copyTarget);
      copySamples.push(performance.now() - started);
      await settle(copyTarget);
    }
    const copy = { median: median(copySamples) };
    // Each run removes the previous result first, outside the measured time.
    const topSamples: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      const started = performance.now();
      const top = await provisionImage(request(['hello', 'tree']), { stateDir });
      topSamples.push(performance.now() - started);
      await settle(imageDir(stateDir, top.key));
    }
    const topRebuild = { median: median(topSamples) };
    const baseBytes = readManifest(stateDir, withHello.baseKey)?.sizeBytes ?? 0;

    const results = {
      coldBuildMs: cold.median,
      plainDebootstrapMs: debootstrap.median,
      plainMmdebstrapMs: mmdebstrap.median,
      cacheHitMs: hit.median,
      baseCopyMs: copy.median,
      topLayerRebuildPlusOnePackageMs: topRebuild.median,
    };
    report('images (debian:bookworm minbase)', [
      [`cold build, nsmatrix (mmdebstrap + store), ${coldRuns} runs`, cold.median],
      [`plain debootstrap --variant=minbase, ${coldRuns} runs`, debootstrap.median],
      [`plain mmdebstrap --variant=minbase, ${coldRuns} runs`, mmdebstrap.median],
      [`cache-hit provision, ${hitRuns} runs`, hit.median, `min ${hit.min.toFixed(2)} max ${hit.max.toFixed(2)}`],
      [`copy of the base (cp -a --reflink=auto), ${coldRuns} runs`, copy.median],
      [`top layer rebuild after adding one package, ${coldRuns} runs`, topRebuild.median],
      ['size of the base tree (MB)', baseBytes / 1e6],
    ]);
    return results;
  } finally {
    await removeTree(work);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await benchImages();
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

/**
 * Provisioning: find or build the base, then find or build the top layer. Cache hits take no lock; builds take
 * the key's lock, re-check, clear leftovers of killed builds of that key, build into `tmp/` and publish with one
 * atomic rename.
 */
import { mkdirSync, renameSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from '../errors.js';
import { resources, type Releasable } from '../lib/resources.js';
import { BuildLog } from './build-log.js';
import { builderFor } from './builders/index.js';
import type { BaseBuilder } from './builders/types.js';
import { cloneTree, makeRootDir, removeTree, syncFileSystem, treeSize } from './fs-ops.js';
import { deriveKey, topLayerInputs } from './key.js';
import { toolVersion } from '../lib/version.js';
import { buildTopLayer, validatePackages } from './layer.js';
import { acquireKeyLock } from './lock.js';
import { readOsRelease } from './os-release.js';
import { describeOs, detectFamily, PACKAGE_FAMILIES, packagesForFamily, parseOsRelease, type PackageFamily } from './package-managers.js';
import { parseImageRef } from './ref.js';
import {
  buildDirsOf,
  ensureStore,
  imageDir,
  newBuildDir,
  readManifest,
  storePaths,
  touchLastUsed,
  writeManifest,
  type Manifest,
} from './store.js';
import type { ImageRequest, ProvisionedImage, ProvisionOptions } from './types.js';

interface LayerPlan extends Pick<Manifest, 'name' | 'key' | 'baseKey' | 'layer' | 'kind' | 'keyInputs' | 'madeFrom'> {
  /** Fills `<buildDir>/rootfs`; returns the root the manifest records. */
  build(buildDir: string, log: BuildLog): Promise<string>;
}

const progress = (options: ProvisionOptions, line: string) => options.onProgress?.(line);

async function ensureLayer(plan: LayerPlan, options: ProvisionOptions): Promise<{ manifest: Manifest; cached: boolean }> {
  const { stateDir } = options;
  const hit = readManifest(stateDir, plan.key);
  if (hit) return { manifest: touchLastUsed(stateDir, hit), cached: true };

  const lock = await acquireKeyLock(stateDir, plan.key, {
    signal: options.signal,
    onWait: () => progress(options, `waiting for another build of ${plan.name} (${plan.layer} ${plan.key})`),
  });
  let buildDir: string | undefined;
  let dirHolder: Releasable | undefined;
  try {
    const built = readManifest(stateDir, plan.key);
    if (built) return { manifest: touchLastUsed(stateDir, built), cached: true };
    // We hold the key's lock: any build directory of this key belongs to a build that died, and a published
    // directory without a manifest is not an image (the rename below needs its place).
    for (const leftover of buildDirsOf(stateDir, plan.key)) await removeTree(leftover);
    if (!existsSync(join(imageDir(stateDir, plan.key), 'manifest.json'))) await removeTree(imageDir(stateDir, plan.key));

    buildDir = newBuildDir(stateDir, plan.key);
    // Released (removed) by the registry if we are interrupted before publishing; forgotten once published.
    const pending = buildDir;
    dirHolder = resources.add(`image build directory ${pending}`, async () => {
      if (buildDir === pending) await removeTree(pending);
    });
    const log = new BuildLog(join(buildDir, 'build.log'), options.onProgress);
    log.info(`building ${plan.layer} layer ${plan.key} of ${plan.name}: ${plan.madeFrom}`);
    const started = Date.now();
    let root: string;
    try {
      root = await plan.build(buildDir, log);
    } catch (error) {
      throw keepFailedLog(stateDir, plan.key, log, error);
    }
    const external = !root.startsWith(`${buildDir}/`);
    const now = new Date().toISOString();
    const manifest: Manifest = {
      name: plan.name,
      key: plan.key,
      baseKey: plan.baseKey,
      layer: plan.layer,
      kind: plan.kind,
      keyInputs: plan.keyInputs,
      root: external ? root : join(imageDir(stateDir, plan.key), 'rootfs'),
      sizeBytes: external ? 0 : await treeSize(root),
      created: now,
      lastUsed: now,
      toolVersion: toolVersion(),
      madeFrom: plan.madeFrom,
      buildMs: Date.now() - started,
    };
    // Installs ran without fsync: flush once, so a power loss can never leave a published but torn tree.
    const flushStarted = Date.now();
    await syncFileSystem(buildDir);
    log.info(`flushed to disk in ${Date.now() - flushStarted} ms`);
    log.info(`built ${plan.layer} layer ${plan.key} in ${Date.now() - started} ms`);
    writeManifest(buildDir, manifest);
    // Under the key's lock, an existing directory for this key is a stale image (its root vanished): replace it.
    await removeTree(imageDir(stateDir, plan.key));
    renameSync(buildDir, imageDir(stateDir, plan.key));
    buildDir = undefined;
    await syncFileSystem(storePaths(stateDir).images);
    return { manifest, cached: false };
  } finally {
    await dirHolder?.release().catch(() => undefined);
    await lock.release();
  }
}

/** The failed build's directory is about to go: keep its log under logs/ and name it in the error. */
function keepFailedLog(stateDir: string, key: string, log: BuildLog, error: unknown): InfraError {
  const kept = join(storePaths(stateDir).logs, `${key}.failed.log`);
  // The build directory (and the log in it) is removed after this: only a copy that was really made may be named.
  let logPath: string | undefined;
  try {
    copyFileSync(log.path, kept);
    logPath = kept;
  } catch {
    logPath = undefined;
  }
  const where = logPath ? `log: ${logPath}` : 'the build log could not be kept, is the disk full? its last lines follow';
  const tail = error instanceof InfraError && error.tail.length ? error.tail : log.tail();
  const message = error instanceof InfraError ? error.message : `image build failed: ${(error as Error).message}`;
  return new InfraError(`${message} (${where})`, { ...(logPath ? { logPath } : {}), tail, cause: error });
}

function basePlan(name: string, builder: BaseBuilder, options: ProvisionOptions): LayerPlan {
  const key = deriveKey(builder.keyInputs);
  return {
    name,
    key,
    baseKey: key,
    layer: 'base',
    kind: builder.kind,
    keyInputs: builder.keyInputs,
    madeFrom: builder.madeFrom,
    build: async (buildDir, log) => {
      if (builder.existingRoot) return builder.existingRoot;
      const rootfs = join(buildDir, 'rootfs');
      const scratchDir = join(buildDir, 'scratch');
      await makeRootDir(rootfs);
      mkdirSync(scratchDir, { mode: 0o700 });
      await builder.build(rootfs, { log, scratchDir, signal: options.signal });
      await removeTree(scratchDir);
      return rootfs;
    },
  };
}

function describeTop(base: Manifest, packages: string[], setup: string | undefined): string {
  const parts = [`base ${base.key} (${base.madeFrom})`];
  if (packages.length) parts.push(`packages ${[...new Set(packages)].sort().join(' ')}`);
  if (setup?.trim()) parts.push(`setup script (${setup.length} bytes)`);
  parts.push(`nsmatrix ${toolVersion()}`);
  return parts.join(' + ');
}

/** The base's package manager: known to its builder, else read from the tree's os-release. */
function familyOfBase(name: string, builder: BaseBuilder, baseRoot: string): { family: PackageFamily; os: string } {
  if (builder.family) return { family: builder.family, os: builder.family };
  const osRelease = readOsRelease(baseRoot);
  const family = osRelease ? detectFamily(osRelease) : undefined;
  if (!osRelease || !family) {
    const found = osRelease ? `ID ${JSON.stringify(parseOsRelease(osRelease).ID ?? '')} is not a known family` : 'no /etc/os-release';
    throw new InfraError(`image "${name}": cannot tell its package manager (${found}; known: ${PACKAGE_FAMILIES.join(', ')})`);
  }
  return { family, os: describeOs(osRelease) };
}

export async function provisionImage(request: ImageRequest, options: ProvisionOptions): Promise<ProvisionedImage> {
  ensureStore(options.stateDir);
  const source = parseImageRef(request.name, request.spec);
  validatePackages(request.packages);
  const builder = await builderFor(source, options.signal, request.arch);
  const plan = basePlan(request.name, builder, options);
  const setup = request.setup?.trim() ? request.setup : undefined;
  const layered = request.packages.length > 0 || Boolean(request.boot) || setup !== undefined;
  const topKeyFor = (packages: string[]) => {
    const inputs = topLayerInputs(plan.key, packages, setup, toolVersion());
    return { inputs, key: deriveKey(inputs) };
  };

  // With a family known up front the top key depends only on pure inputs: a published top layer needs no look
  // at its base. Otherwise the base (a cache hit is one manifest read) tells the family first.
  if (layered && builder.family) {
    const hit = readManifest(options.stateDir, topKeyFor(packagesForFamily(request, builder.family, request.name)).key);
    if (hit) {
      const used = touchLastUsed(options.stateDir, hit);
      return { name: request.name, key: used.key, baseKey: used.baseKey, root: used.root, cached: true, madeFrom: used.madeFrom };
    }
  }

  const base = await ensureLayer(plan, options);
  if (!base.cached) progress(options, `base ${base.manifest.key}: ${base.manifest.madeFrom}`);
  if (!layered) {
    return {
      name: request.name,
      key: base.manifest.key,
      baseKey: base.manifest.key,
      root: base.manifest.root,
      cached: base.cached,
      madeFrom: base.manifest.madeFrom,
    };
  }
  const { family, os } = request.packages.length > 0 || request.boot
    ? familyOfBase(request.name, builder, base.manifest.root)
    : { family: builder.family ?? ('apt' as const), os: '' };
  const packages = packagesForFamily(request, family, request.name, os || family);
  const { inputs, key: topKey } = topKeyFor(packages);

  const top = await ensureLayer(
    {
      name: request.name,
      key: topKey,
      baseKey: base.manifest.key,
      layer: 'top',
      kind: base.manifest.kind,
      keyInputs: inputs,
      madeFrom: describeTop(base.manifest, packages, setup),
      build: async (buildDir, log) => {
        const rootfs = join(buildDir, 'rootfs');
        const started = Date.now();
        // A copy takes seconds (tens under load): an interrupt stops it rather than waiting for its end.
        const strategy = await cloneTree(base.manifest.root, rootfs, options.signal);
        log.info(`cloned base ${base.manifest.key} by ${strategy === 'copy' ? 'cp -a --reflink=auto' : 'btrfs subvolume snapshot'} in ${Date.now() - started} ms`);
        await buildTopLayer(rootfs, { packages, family, ...(setup ? { setup } : {}) }, log, { signal: options.signal, packagePool: options.packagePool });
        return rootfs;
      },
    },
    options,
  );
  if (!top.cached) progress(options, `image ${top.manifest.key}: ${top.manifest.madeFrom}`);
  return {
    name: request.name,
    key: top.manifest.key,
    baseKey: base.manifest.key,
    root: top.manifest.root,
    cached: top.cached,
    madeFrom: top.manifest.madeFrom,
  };
}

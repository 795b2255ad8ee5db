/**
 * The customised top layer: a copy of the base (reflink where the filesystem can) in which systemd-nspawn runs
 * the package installation and the setup script, without fsync.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { harvestPackages, preparePackageCache, removeUpper } from '../caches/packages.js';
import { InfraError } from '../errors.js';
import { detectHost } from '../lib/host.js';
import { nspawnArgs, nspawnEnvironment } from '../lib/nspawn.js';
import type { HostInfo } from '../lib/host.js';
import type { BuildLog } from './build-log.js';
import { expiredReleaseHint } from './builders/bootstrap.js';
import { installScript, type PackageFamily } from './package-managers.js';
import { runLogged } from './process.js';

/** The apt script (Debian-family images); other families: installScript in package-managers.ts. */
export function packageInstallScript(packages: string[]): string {
  return installScript('apt', packages);
}

/** An image build step: the payload as init, writing the build's own copy of the tree. */
export function layerNspawnArgv(host: HostInfo, root: string, command: string[], extra: string[] = []): string[] {
  return [
    'systemd-nspawn',
    ...nspawnArgs({
      host,
      machine: `nsmatrix-build-${randomBytes(4).toString('hex')}`,
      root,
      rootWrites: 'direct',
      payload: 'pid1',
      pipe: true,
      env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' },
      mounts: [],
      extra,
      command,
    }),
  ];
}

// Upper case: Fedora and Arch package names have it (perl-IO-Socket-SSL).
const PACKAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9+.:=~_/-]*$/;

export function validatePackages(packages: string[]): void {
  const bad = packages.filter((p) => !PACKAGE_NAME_RE.test(p));
  if (bad.length) throw new InfraError(`invalid package name(s): ${bad.join(', ')}`);
}

export async function buildTopLayer(
  root: string,
  request: { packages: string[]; setup?: string; family?: PackageFamily; packageCache?: boolean },
  log: BuildLog,
  signal?: AbortSignal,
): Promise<void> {
  const host = detectHost();
  const env = nspawnEnvironment(host, { mode: 'build' });
  const family = request.family ?? 'apt';
  // The shared package download cache (caches/packages.ts), over the pool of the release being built.
  const stateDir = stateDirOfBuild(root);
  const cache = stateDir && request.packageCache !== false && request.packages.length > 0 ? await preparePackageCache(stateDir, root, join(dirname(root), 'pkgcache')).catch(() => undefined) : undefined;
  const step = async (what: string, command: string[]) => {
    log.info(what);
    const outcome = await runLogged(layerNspawnArgv(host, root, command, cache ? [cache.option] : []), log, { env, signal });
    if (outcome.isCanceled) throw new InfraError(`${what}: aborted`, { logPath: log.path });
    if (outcome.exitCode !== 0) {
      const hint = expiredReleaseHint(log.text());
      throw new InfraError(`${what} failed (exit ${outcome.exitCode ?? outcome.signal})${hint ? `: ${hint}` : ''}`, {
        logPath: log.path,
        tail: log.tail(),
      });
    }
  };
  try {
    if (request.packages.length) {
      await step(`installing ${request.packages.join(' ')} (${family})`, ['/bin/sh', '-c', installScript(family, request.packages, { keepDownloads: cache !== undefined })]);
    }
    if (request.setup?.trim()) await step('running the setup script', ['/bin/sh', '-e', '-c', request.setup]);
    if (cache) {
      const harvest = await harvestPackages(cache, stateDir!, root);
      log.info(`package cache ${basename(cache.pool)}: ${harvest.added.length} package(s) added (${harvest.bytes} bytes)${harvest.refused.length ? `, ${harvest.refused.length} refused` : ''}`);
    }
  } finally {
    // Never published with the image: the build directory is renamed into the store as a whole.
    if (cache) await removeUpper(cache);
  }
}

/**
 * The state directory of a top-layer build, from where provisioning builds it (`<state>/tmp/<key>.<pid>.<rand>/rootfs`),
 * or undefined for a root elsewhere (then no package cache is used).
 */
export function stateDirOfBuild(root: string): string | undefined {
  const buildDir = dirname(root);
  const tmp = dirname(buildDir);
  if (basename(root) !== 'rootfs' || basename(tmp) !== 'tmp') return undefined;
  const stateDir = dirname(tmp);
  return existsSync(join(stateDir, 'images')) ? stateDir : undefined;
}

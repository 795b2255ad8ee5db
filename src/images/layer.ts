/**
 * The customised top layer: a copy of the base (reflink where the filesystem can) in which systemd-nspawn runs
 * the package installation and the setup script, without fsync.
 */
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { InfraError } from '../errors.js';
import { detectHost } from '../lib/host.js';
import { nspawnArgs, nspawnEnvironment, type NspawnMount } from '../lib/nspawn.js';
import { removePropagateDir } from '../lib/propagate.js';
import type { HostInfo } from '../lib/host.js';
import type { BuildLog } from './build-log.js';
import { expiredReleaseHint } from './builders/bootstrap.js';
import { installScript, type PackageFamily } from './package-managers.js';
import { runLogged } from './process.js';
import type { PackagePool } from './types.js';

/** The apt script (Debian-family images); other families: installScript in package-managers.ts. */
export function packageInstallScript(packages: string[]): string {
  return installScript('apt', packages);
}

export const BUILD_MACHINE_PREFIX = 'nsmatrix-build-';
export const buildMachineName = () => `${BUILD_MACHINE_PREFIX}${randomBytes(4).toString('hex')}`;

/** An image build step: the payload as init, writing the build's own copy of the tree. */
export function layerNspawnArgv(host: HostInfo, root: string, command: string[], mounts: NspawnMount[] = [], machine = buildMachineName()): string[] {
  return [
    'systemd-nspawn',
    ...nspawnArgs({
      host,
      machine,
      root,
      rootWrites: 'direct',
      payload: 'pid1',
      pipe: true,
      // The setup script is the matrix's (a pull request's): as hostile as a step, and it needs no mounts either.
      denyMounts: 'syscalls',
      env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' },
      mounts,
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
  request: { packages: string[]; setup?: string; family?: PackageFamily },
  log: BuildLog,
  options: { signal?: AbortSignal; packagePool?: PackagePool } = {},
): Promise<void> {
  const { signal } = options;
  const host = detectHost();
  const env = nspawnEnvironment(host, { mode: 'build' });
  const family = request.family ?? 'apt';
  // The shared package download cache (injected: caches/packages.ts), over the pool of the release being built;
  // its upper directory in the build directory, beside the root.
  const cache = options.packagePool && request.packages.length > 0 ? await options.packagePool.open(root, join(dirname(root), 'pkgcache')).catch(() => undefined) : undefined;
  const step = async (what: string, command: string[]) => {
    log.info(what);
    const machine = buildMachineName();
    const outcome = await runLogged(layerNspawnArgv(host, root, command, cache ? [cache.mount] : [], machine), log, { env, signal }).finally(() =>
      // An aborted build's nspawn is SIGKILLed (images/process.ts) and cannot remove this itself.
      removePropagateDir(machine),
    );
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
      const harvest = await cache.harvest();
      log.info(`package cache ${cache.name}: ${harvest.added.length} package(s) added (${harvest.bytes} bytes)${harvest.refused.length ? `, ${harvest.refused.length} refused` : ''}`);
    }
  } finally {
    // Never published with the image: the build directory is renamed into the store as a whole.
    if (cache) await cache.release();
  }
}

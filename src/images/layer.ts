/**
 * The customised top layer: a copy of the base (reflink where the filesystem can) in which systemd-nspawn runs
 * the package installation and the setup script, without fsync.
 */
import { randomBytes } from 'node:crypto';
import { InfraError } from '../errors.js';
import { detectHost, hostNspawnArgs, hostNspawnEnv } from '../lib/host.js';
import type { HostInfo } from '../lib/host.js';
import type { BuildLog } from './build-log.js';
import { expiredReleaseHint } from './builders/bootstrap.js';
import { installScript, type PackageFamily } from './package-managers.js';
import { runLogged } from './process.js';

/** The apt script (Debian-family images); other families: installScript in package-managers.ts. */
export function packageInstallScript(packages: string[]): string {
  return installScript('apt', packages);
}

export function layerNspawnArgv(host: HostInfo, root: string, command: string[]): string[] {
  const argv = ['systemd-nspawn', '--quiet', '--pipe', '-D', root, `--machine=nsmatrix-build-${randomBytes(4).toString('hex')}`];
  argv.push(...hostNspawnArgs(host));
  if ((host.nspawnVersion ?? 0) >= 250) argv.push('--suppress-sync=yes');
  argv.push('--setenv=DEBIAN_FRONTEND=noninteractive', '--setenv=LC_ALL=C.UTF-8', '--', ...command);
  return argv;
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
  signal?: AbortSignal,
): Promise<void> {
  const host = detectHost();
  const env = hostNspawnEnv(host);
  const step = async (what: string, command: string[]) => {
    log.info(what);
    const outcome = await runLogged(layerNspawnArgv(host, root, command), log, { env, signal });
    if (outcome.aborted) throw new InfraError(`${what}: aborted`, { logPath: log.path });
    if (outcome.exitCode !== 0) {
      const hint = expiredReleaseHint(log.text());
      throw new InfraError(`${what} failed (exit ${outcome.exitCode ?? outcome.signal})${hint ? `: ${hint}` : ''}`, {
        logPath: log.path,
        tail: log.tail(),
      });
    }
  };
  if (request.packages.length) {
    const family = request.family ?? 'apt';
    await step(`installing ${request.packages.join(' ')} (${family})`, ['/bin/sh', '-c', installScript(family, request.packages)]);
  }
  if (request.setup?.trim()) await step('running the setup script', ['/bin/sh', '-e', '-c', request.setup]);
}

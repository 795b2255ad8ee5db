/**
 * The customised top layer: a copy of the base (reflink where the filesystem can) in which systemd-nspawn runs
 * the package installation and the setup script, without fsync.
 */
import { randomBytes } from 'node:crypto';
import { InfraError } from '../errors.js';
import { detectHost, hostNspawnArgs, hostNspawnEnv } from '../lib/host.js';
import type { HostInfo } from '../runtime/types.js';
import type { BuildLog } from './build-log.js';
import { expiredReleaseHint } from './builders/bootstrap.js';
import { runLogged } from './process.js';

export function packageInstallScript(packages: string[]): string {
  // No translations: the base was bootstrapped without them, and they would add ~30 MB to every top layer.
  const apt = 'apt-get -q -o Acquire::Languages=none -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0';
  const quoted = packages.map((p) => `'${p.replace(/'/g, `'\\''`)}'`).join(' ');
  return [`set -e`, `${apt} update`, `${apt} install -y --no-install-recommends ${quoted}`, `apt-get clean`].join('\n');
}

export function layerNspawnArgv(host: HostInfo, root: string, command: string[]): string[] {
  const argv = ['systemd-nspawn', '--quiet', '--pipe', '-D', root, `--machine=nsmatrix-build-${randomBytes(4).toString('hex')}`];
  argv.push(...hostNspawnArgs(host));
  if ((host.nspawnVersion ?? 0) >= 250) argv.push('--suppress-sync=yes');
  argv.push('--setenv=DEBIAN_FRONTEND=noninteractive', '--setenv=LC_ALL=C.UTF-8', '--', ...command);
  return argv;
}

const PACKAGE_NAME_RE = /^[a-z0-9][a-z0-9+.:=~_/-]*$/;

export function validatePackages(packages: string[]): void {
  const bad = packages.filter((p) => !PACKAGE_NAME_RE.test(p));
  if (bad.length) throw new InfraError(`invalid package name(s): ${bad.join(', ')}`);
}

export async function buildTopLayer(
  root: string,
  request: { packages: string[]; setup?: string },
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
    await step(`installing ${request.packages.join(' ')}`, ['/bin/sh', '-c', packageInstallScript(request.packages)]);
  }
  if (request.setup?.trim()) await step('running the setup script', ['/bin/sh', '-e', '-c', request.setup]);
}

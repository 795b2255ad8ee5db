/**
 * Debian-family bases (debian:, ubuntu:) built by mmdebstrap when installed, else debootstrap, as minbase.
 * The argv builders are pure and unit-tested; `build` runs them through the guarded process runner.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from '../../errors.js';
import { mirrorUrlProblem } from '../../matrix/schema.js';
import { pickMirrors, readHostAptSources } from '../apt-sources.js';
import { runLogged } from '../process.js';
import { resolveSuite } from '../suites.js';
import { hostArch } from '../../lib/arch.js';
import type { BaseBuilder, BuildContext } from './types.js';

export type BootstrapTool = 'mmdebstrap' | 'debootstrap';

export interface BootstrapPlan {
  distro: string;
  suite: string;
  mirror: string;
  /** The security archive, when the suite has a security pocket and one is known. */
  securityMirror?: string;
  components: string[];
  /** Pockets (`-updates`) are added only for released suites. */
  pockets: boolean;
  allowExpiredRelease: boolean;
  tool: BootstrapTool;
  /** Debian architecture name to build for (mmdebstrap --architectures, debootstrap --arch). */
  arch: string;
}

const RELEASED_SUITES = new Set(['bullseye', 'bookworm', 'trixie', 'focal', 'jammy', 'noble', 'oracular', 'plucky', 'questing']);
export const DEFAULT_UBUNTU_MIRROR = 'http://archive.ubuntu.com/ubuntu';
/** Ubuntu publishes only amd64 and i386 on its archive; every other architecture (and its security suite) on ports. */
export const DEFAULT_UBUNTU_PORTS_MIRROR = 'http://ports.ubuntu.com/ubuntu-ports';
const UBUNTU_ARCHIVE_ARCHES = new Set(['amd64', 'i386']);
const EXPIRED_OPTION = 'Acquire::Check-Valid-Until "false"';

/** The apt source lines of the image: the suite, its updates pocket and its security suite. */
export function sourceLines(plan: BootstrapPlan): string[] {
  const components = plan.components.join(' ');
  const lines = [`deb ${plan.mirror} ${plan.suite} ${components}`];
  if (plan.pockets) {
    lines.push(`deb ${plan.mirror} ${plan.suite}-updates ${components}`);
    // Since bullseye the security suite is `<suite>-security` (buster's `buster/updates` is not supported).
    if (plan.securityMirror) lines.push(`deb ${plan.securityMirror} ${plan.suite}-security ${components}`);
  }
  return lines;
}

export function mmdebstrapArgv(plan: BootstrapPlan, target: string): string[] {
  const argv = ['mmdebstrap', '--variant=minbase', '--mode=root', '--format=directory'];
  if (plan.allowExpiredRelease) argv.push(`--aptopt=${EXPIRED_OPTION}`);
  // Keeping the package lists lets the top layer's `apt-get update` fetch only what changed.
  argv.push('--skip=cleanup/apt/lists');
  argv.push(`--architectures=${plan.arch}`);
  argv.push(plan.suite, target, ...sourceLines(plan));
  return argv;
}

export function debootstrapArgv(plan: BootstrapPlan, target: string): string[] {
  // A foreign --arch runs its second stage through the host's binfmt_misc entry (qemu-user-static, F flag).
  return ['debootstrap', '--variant=minbase', `--arch=${plan.arch}`, `--components=${plan.components.join(',')}`, plan.suite, target, plan.mirror];
}

export function bootstrapArgv(plan: BootstrapPlan, target: string): string[] {
  return plan.tool === 'mmdebstrap' ? mmdebstrapArgv(plan, target) : debootstrapArgv(plan, target);
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => dir && existsSync(join(dir, command)));
}

/** mmdebstrap when installed, else debootstrap; `NSMATRIX_BOOTSTRAP_TOOL` forces one (and makes both testable). */
export function availableBootstrapTool(): BootstrapTool {
  const forced = process.env.NSMATRIX_BOOTSTRAP_TOOL;
  if (forced === 'mmdebstrap' || forced === 'debootstrap') {
    if (!onPath(forced)) throw new InfraError(`NSMATRIX_BOOTSTRAP_TOOL=${forced}, but ${forced} is not installed`);
    return forced;
  }
  if (forced) throw new InfraError(`NSMATRIX_BOOTSTRAP_TOOL: expected mmdebstrap or debootstrap, got "${forced}"`);
  if (onPath('mmdebstrap')) return 'mmdebstrap';
  if (onPath('debootstrap')) return 'debootstrap';
  throw new InfraError('neither mmdebstrap nor debootstrap is installed: apt-get install mmdebstrap');
}

/**
 * Mirror and security archive: `mirror:` wins; else the host's apt sources (Debian: one mirror serves every
 * architecture) or Ubuntu's archive (amd64, i386) or ports (the other architectures).
 */
export function chooseMirrors(distro: string, mirror: string | undefined, arch: string = hostArch()): { mirror: string; securityMirror?: string } {
  if (mirror) {
    // The matrix schema checked it already; the image spec may come from elsewhere.
    const problem = mirrorUrlProblem(mirror);
    if (problem) throw new InfraError(`invalid mirror ${JSON.stringify(mirror)}: ${problem}`);
    return { mirror: mirror.replace(/\/+$/, '') };
  }
  if (distro === 'ubuntu') {
    const ubuntu = UBUNTU_ARCHIVE_ARCHES.has(arch) ? DEFAULT_UBUNTU_MIRROR : DEFAULT_UBUNTU_PORTS_MIRROR;
    return { mirror: ubuntu, securityMirror: ubuntu };
  }
  const host = pickMirrors(readHostAptSources());
  if (!host.main) {
    throw new InfraError('no Debian mirror in the host apt sources (/etc/apt/sources.list*): set mirror: in the image spec');
  }
  return { mirror: host.main, ...(host.security ? { securityMirror: host.security } : {}) };
}

export async function planBootstrap(source: {
  distro: string;
  suite: string;
  mirror?: string;
  allowExpiredRelease: boolean;
  arch?: string;
}): Promise<BootstrapPlan> {
  const arch = source.arch ?? hostArch();
  const mirrors = chooseMirrors(source.distro, source.mirror, arch);
  const suite = await resolveSuite(source.distro, source.suite, mirrors.mirror);
  const plan: BootstrapPlan = {
    distro: source.distro,
    suite,
    mirror: mirrors.mirror,
    components: source.distro === 'ubuntu' ? ['main', 'universe'] : ['main'],
    pockets: RELEASED_SUITES.has(suite),
    allowExpiredRelease: source.allowExpiredRelease,
    tool: availableBootstrapTool(),
    arch,
  };
  if (mirrors.securityMirror) plan.securityMirror = mirrors.securityMirror;
  return plan;
}

export function expiredReleaseHint(logText: string): string | undefined {
  return /Release file .* is expired|is not valid yet|expired \(invalid since/i.test(logText)
    ? 'the mirror\'s Release file has expired: set "allow-expired-release: true" in the image spec'
    : undefined;
}

export function bootstrapBuilder(plan: BootstrapPlan): BaseBuilder {
  return {
    kind: plan.distro,
    family: 'apt',
    keyInputs: {
      layer: 'base',
      kind: 'bootstrap',
      distro: plan.distro,
      suite: plan.suite,
      mirror: plan.mirror,
      securityMirror: plan.pockets ? (plan.securityMirror ?? null) : null,
      components: plan.components,
      variant: 'minbase',
      allowExpiredRelease: plan.allowExpiredRelease,
      tool: plan.tool,
      arch: plan.arch,
      // Bumped when what the builder does to the tree changes (2: no build host /etc/hostname).
      format: 2,
    },
    madeFrom: `${plan.tool} --variant=minbase ${plan.suite} ${plan.arch} from ${plan.mirror}${plan.allowExpiredRelease ? ' (expired Release allowed)' : ''}`,
    async build(targetDir: string, context: BuildContext): Promise<void> {
      const outcome = await runLogged(bootstrapArgv(plan, targetDir), context.log, { signal: context.signal });
      if (outcome.isCanceled) throw new InfraError(`building ${plan.distro}:${plan.suite} was aborted`, { logPath: context.log.path });
      if (outcome.exitCode !== 0) {
        const tail = context.log.tail();
        const hint = expiredReleaseHint(context.log.text());
        throw new InfraError(
          `${plan.tool} failed for ${plan.distro}:${plan.suite} from ${plan.mirror} (exit ${outcome.exitCode ?? outcome.signal})` +
            (hint ? `: ${hint}` : ''),
          { logPath: context.log.path, tail },
        );
      }
      // mmdebstrap and debootstrap copy the build host's /etc/hostname into the tree: an image must not carry the
      // identity of the machine that built it (nspawn gives each container its machine name instead).
      rmSync(join(targetDir, 'etc/hostname'), { force: true });
      const aptConf = join(targetDir, 'etc/apt/apt.conf.d');
      mkdirSync(aptConf, { recursive: true });
      if (plan.allowExpiredRelease) writeFileSync(join(aptConf, '99nsmatrix-allow-expired'), `${EXPIRED_OPTION};\n`);
      if (plan.tool === 'debootstrap') {
        writeFileSync(join(targetDir, 'etc/apt/sources.list'), `${sourceLines(plan).join('\n')}\n`);
      }
    },
  };
}

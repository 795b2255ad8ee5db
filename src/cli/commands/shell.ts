/**
 * `nsmatrix shell IMAGE [-p PKG,...] [--bind ...] [-- CMD ...]`: a throwaway container with the current directory
 * at /src (an overlay: the host tree is never written). Interactive with a TTY when attached to one; otherwise the
 * command's stdin/stdout/stderr are nsmatrix's and its exit status is returned. `-p` packages go into a cached
 * image layer, so the second shell with the same packages starts at once.
 */
import { join } from 'node:path';
import { InfraError, UsageError } from '../../errors.js';
import { provisionImage, resolveStateDir } from '../../images/index.js';
import { detectHost } from '../../lib/host.js';
import { checkArchFlag, hostArch, requireRunnable } from '../../lib/arch.js';
import { resources } from '../../lib/resources.js';
import { createRunScratch, openContainer, parseBind, validateBinds } from '../../runtime/index.js';
import { sourceProblem } from '../../runtime/binds.js';
import { securePrivateState } from '../../lib/private-dir.js';
import { checkStateDir, stateDirLabel } from '../../lib/run-paths.js';

export interface ShellArgs {
  image: string;
  packages: string[];
  bind: string[];
  command: string[];
  stateDir?: string;
  network: 'host' | 'private';
  /** Debian architecture name; absent: the host's. */
  arch?: string;
}

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** The script the container runs: the command verbatim, or the image's best interactive shell. */
export function shellScript(command: string[]): string {
  if (command.length > 0) return `exec ${command.map(quote).join(' ')}`;
  return 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi';
}

/** A status as a shell reports it: death by signal N is 128+N. */
function exitStatus(result: { exitCode: number | null; signal: string | null }): number {
  if (result.exitCode !== null) return result.exitCode;
  const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return 128 + (result.signal ? (signals[result.signal] ?? 0) : 0);
}

export default async function shell(args: ShellArgs): Promise<number> {
  const host = detectHost();
  if (!host.isRoot) throw new InfraError('nsmatrix: run as root: starting containers needs root (the nsmatrix that scripts/setup-host.sh installs goes through sudo itself)');
  if (!host.nspawnPath) throw new InfraError('systemd-nspawn is not installed: apt-get install systemd-container (see nsmatrix doctor)');
  const arch = checkArchFlag(args.arch) ?? hostArch();
  requireRunnable([arch], { boot: false });
  const stateDir = resolveStateDir(args.stateDir);
  const stateLabel = stateDirLabel(args.stateDir, stateDir);
  checkStateDir(stateDir, stateLabel);
  const binds = args.bind.map((b) => parseBind(b, `nsmatrix: --bind ${b}`));
  // The shell's "output" (its log) lives in the run scratch, inside the state directory: guarding the state
  // directory guards it. The current directory is the overlay source at /src: never /, nor one holding the state.
  const guard = { stateDir, outputDir: join(stateDir, 'run') };
  const checkedBinds = validateBinds(binds, guard, (index) => `nsmatrix: --bind ${args.bind[index]}: `);
  const source = sourceProblem(process.cwd(), 'overlay', guard);
  if (source) throw new UsageError(`nsmatrix: the current directory is mounted at /src: ${source}`);

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  try {
    // Private (0700) before any container can leave a setuid binary in the run scratch.
    securePrivateState(stateDir, stateLabel);
    const image = await provisionImage(
      { name: args.image, spec: { packages: [] }, packages: [...new Set(args.packages)], arch },
      { stateDir, signal: controller.signal, onProgress: (line) => process.stderr.write(`${line}\n`) },
    );
    const scratch = await createRunScratch(stateDir);
    const cellOutputDir = join(scratch.dir, 'shell');
    const container = await openContainer({
      cellId: 'shell',
      root: image.root,
      cellOutputDir,
      scratchDir: scratch.dir,
      sourceDir: process.cwd(),
      sourceMode: 'overlay',
      network: args.network,
      privateUsers: false,
      boot: false,
      binds: checkedBinds,
      nspawnExtra: [], arch,
      env: interactive && process.env.TERM ? { TERM: process.env.TERM } : {},
      interactive,
    });
    // Files written under /src go to the overlay's upper layer and vanish with the container: say so first.
    process.stderr.write(`${shellBanner(args.image, process.cwd())}\n`);
    try {
      const result = await container.exec({
        index: 0,
        name: 'shell',
        script: shellScript(args.command),
        env: {},
        timeoutMs: 0,
        logPath: join(cellOutputDir, '01-shell.log'),
        signal: controller.signal,
        inheritStdio: true,
      });
      if (result.infrastructureError) throw new InfraError(`nsmatrix shell: ${result.infrastructureError}`, { tail: result.tail });
      if (result.aborted) return 130;
      return exitStatus(result);
    } finally {
      await container.close();
      await scratch.remove();
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof InfraError) throw error;
    throw new InfraError(`nsmatrix shell: ${(error as Error).message}`, { cause: error });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    for (const failure of await resources.releaseAll()) process.stderr.write(`nsmatrix: cleanup: ${failure.message}\n`);
  }
}

/** What the user must know before typing: /src is their directory, but what they write there is thrown away. */
export function shellBanner(image: string, cwd: string): string {
  return `nsmatrix: ${image}, ${cwd} at /src (an overlay: files written under /src vanish when the shell exits; write to a --bind directory to keep them)`;
}

/**
 * `nsmatrix shell [IMAGE] [--cell ID] [-p PKG,...] [--source overlay|ro|rw] [--keep NAME] [-- CMD ...]`: a container
 * with the project at /src, like nix-shell. With no image, the project's own environment (the matrix file's
 * `shell:` section, else its first cell's image); `--cell ID` enters exactly one cell's environment (src/shell/plan.ts).
 * Commands run as the user behind sudo (src/shell/user.ts), with a home kept per project; `--keep NAME` keeps the
 * whole sandbox to enter again (src/shell/state.ts). Interactive with a TTY when attached to one; otherwise the
 * command's stdin/stdout/stderr are nsmatrix's and its exit status is returned. Packages and setup go into a cached
 * image layer, so the second shell with the same ones starts at once.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InfraError, UsageError } from '../../errors.js';
import { packagePool } from '../../caches/packages.js';
import { provisionImage, resolveStateDir } from '../../images/index.js';
import { formatDuration } from '../../lib/duration.js';
import { realOrResolved } from '../../lib/host-paths.js';
import { detectHost } from '../../lib/host.js';
import { requireRunnable } from '../../lib/arch.js';
import { resources } from '../../lib/resources.js';
import { findMatrixFile } from '../../matrix/load.js';
import type { SourceMode } from '../../matrix/types.js';
import { createRunScratch, openContainer } from '../../runtime/index.js';
import { securePrivateState } from '../../lib/private-dir.js';
import { checkStateDir, stateDirLabel } from '../../lib/run-paths.js';
import { planShell, type ShellRequest } from '../../shell/plan.js';
import { checkSandboxName, ensureHome, HOME_ID_RE, homeId, listHomes, listSandboxes, makeSourceUpper, openSandbox, removeHome, removeSandbox, type KeptSandbox, type Ownership } from '../../shell/state.js';
import { describeUser, shellUser, userScript, type ShellUser } from '../../shell/user.js';
import type { Container } from '../../runtime/types.js';
import { formatBytes } from './images.js';

export interface ShellArgs extends ShellRequest {
  command: string[];
  stateDir?: string;
  /** Keep the sandbox under this name (and enter it again when it exists). */
  keep?: string;
  /** Run as root inside, as a cell's steps do, rather than as the user behind sudo. */
  root?: boolean;
  /** `--list`, `--rm NAME`, `--rm-home [ID|DIR]`: manage what shells keep instead of entering one. */
  list?: boolean;
  rm?: string;
  /** '': this project's home; a home id (as --list shows it), or a project directory (which may be gone). */
  rmHome?: string;
}

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** A command verbatim, or the image's best interactive shell (as root: `--shell-on-failure` uses it too). */
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

export interface BannerFacts {
  user?: ShellUser;
  /** The home directory inside, when the project's home is mounted there. */
  home?: string;
  sandbox?: { name: string; isNew: boolean };
}

/**
 * What the user must know before typing: which directory /src is and what becomes of what they write there, who
 * they are, and that everything else is discarded at exit (or kept in a named sandbox). Two lines.
 */
export function shellBanner(title: string, sourceDir: string, mode: SourceMode = 'overlay', facts: BannerFacts = {}): string {
  const owner = facts.user === undefined || facts.user.uid === 0 ? 'root' : `${facts.user.name} (uid ${facts.user.uid})`;
  const src = {
    overlay: facts.sandbox
      ? `an overlay: files written under /src stay in sandbox ${facts.sandbox.name}, never in ${sourceDir}`
      : 'an overlay: files written under /src vanish when the shell exits',
    ro: 'read-only',
    rw: `read-write: files written under /src stay in the project, owned by ${owner}`,
  }[mode];
  const first = `nsmatrix: ${title}, ${sourceDir} at /src (${src})`;
  const parts: string[] = [];
  if (facts.user) parts.push(describeUser(facts.user));
  if (facts.home) parts.push(`home ${facts.home} kept for this project`);
  if (facts.sandbox) {
    const { name, isNew } = facts.sandbox;
    parts.push(`everything else is kept in sandbox ${name} (${isNew ? 'new' : 'entered again'}): --keep ${name} enters it again, nsmatrix shell --rm ${name} removes it`);
  } else {
    parts.push('everything else is discarded at exit');
  }
  return `${first}\nnsmatrix: ${parts.join('; ')}`;
}

function ago(iso: string | undefined, now = Date.now()): string {
  const ms = iso === undefined ? NaN : now - Date.parse(iso);
  return Number.isFinite(ms) ? `${formatDuration(Math.max(0, ms))} ago` : '?';
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd());
}

const out = (line: string) => process.stdout.write(`${line}\n`);

/** The home `--rm-home` means: an id as --list shows it, a project directory, else this project's (the matrix file's directory, or here). */
function homeToRemove(args: ShellArgs, cwd: string, uid: number): string {
  const given = args.rmHome ?? '';
  if (HOME_ID_RE.test(given)) return given;
  if (given !== '') return homeId(realOrResolved(resolve(cwd, given)), uid);
  try {
    return homeId(realOrResolved(dirname(join(cwd, findMatrixFile(cwd, args.matrix)))), uid);
  } catch (error) {
    if (args.matrix !== undefined) throw error;
    return homeId(realOrResolved(cwd), uid);
  }
}

/** `--list`, `--rm NAME`, `--rm-home`. */
async function manage(args: ShellArgs, stateDir: string): Promise<number> {
  const chosen = [args.list && '--list', args.rm !== undefined && '--rm', args.rmHome !== undefined && '--rm-home'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`nsmatrix: ${chosen.join(' and ')}: give one of them`);
  const other = args.image ?? args.cell ?? args.keep ?? (args.command.length ? args.command.join(' ') : undefined);
  if (other !== undefined) throw new UsageError(`nsmatrix: ${chosen[0]} enters no shell: drop "${other}"`);
  if (args.rm !== undefined) {
    checkSandboxName(args.rm, '--rm');
    await removeSandbox(stateDir, args.rm);
    out(`removed sandbox ${args.rm}`);
    return 0;
  }
  if (args.rmHome !== undefined) {
    const user = shellUser(process.env, { root: args.root ?? false });
    const id = homeToRemove(args, process.cwd(), user.uid);
    const home = (await listHomes(stateDir)).find((h) => h.id === id);
    if (!(await removeHome(stateDir, id))) {
      const what = args.rmHome ? `--rm-home ${args.rmHome}: no such home` : `--rm-home: no home of uid ${user.uid} for this project`;
      throw new UsageError(`nsmatrix: ${what} (nsmatrix shell --list shows them)`);
    }
    out(`removed home ${id}${home?.project ? ` (${home.project}, uid ${home.uid ?? '?'})` : ''}`);
    return 0;
  }
  const sandboxes = await listSandboxes(stateDir);
  if (sandboxes.length === 0) out('no kept sandboxes (nsmatrix shell --keep NAME keeps one)');
  else {
    out('kept sandboxes (nsmatrix shell --keep NAME enters one again, --rm NAME removes it):');
    const rows = sandboxes.map((s) => [s.name, s.meta?.image ?? '?', s.meta?.project ?? '?', formatBytes(s.bytes), ago(s.meta?.created), ago(s.meta?.lastUsed)]);
    for (const line of table([['NAME', 'IMAGE', 'PROJECT', 'SIZE', 'CREATED', 'LAST USED'], ...rows])) out(`  ${line}`);
  }
  const homes = await listHomes(stateDir);
  if (homes.length > 0) {
    out('project homes (nsmatrix shell --rm-home ID removes one; in a project, --rm-home removes yours):');
    const rows = homes.map((h) => [h.id, h.project === undefined ? '?' : existsSync(h.project) ? h.project : `${h.project} (gone)`, String(h.uid ?? '?'), formatBytes(h.bytes), ago(h.lastUsed)]);
    for (const line of table([['ID', 'PROJECT', 'UID', 'SIZE', 'LAST USED'], ...rows])) out(`  ${line}`);
  }
  return 0;
}

export default async function shell(args: ShellArgs): Promise<number> {
  const stateDir = resolveStateDir(args.stateDir);
  const stateLabel = stateDirLabel(args.stateDir, stateDir);
  if (args.keep !== undefined) checkSandboxName(args.keep, '--keep');
  if (args.rm !== undefined) checkSandboxName(args.rm, '--rm');
  const host = detectHost();
  if (!host.isRoot) throw new InfraError('nsmatrix: run as root: starting containers needs root (the nsmatrix that scripts/setup-host.sh installs goes through sudo itself)');
  checkStateDir(stateDir, stateLabel);
  if (args.list || args.rm !== undefined || args.rmHome !== undefined) {
    securePrivateState(stateDir, stateLabel);
    return manage(args, stateDir);
  }
  if (!host.nspawnPath) throw new InfraError('systemd-nspawn is not installed: apt-get install systemd-container (see nsmatrix doctor)');
  const plan = await planShell(args, process.cwd(), stateDir);
  requireRunnable([plan.arch], { boot: plan.boot });
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (plan.boot && args.command.length === 0 && !interactive) {
    throw new UsageError(`nsmatrix: --cell ${plan.cellId} boots systemd (boot: true): its shell needs a terminal; without one, run a command after --`);
  }
  if (args.keep !== undefined && plan.privateUsers) throw new UsageError(`nsmatrix: --keep ${args.keep}: a kept sandbox is an overlay over the image, which private-users: true cannot have`);
  if (args.keep !== undefined && !host.overlayfs) throw new UsageError(`nsmatrix: --keep ${args.keep}: a kept sandbox is an overlay over the image, and this kernel has no overlayfs`);
  const user = shellUser(process.env, { root: args.root ?? false });

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  let sandbox: KeptSandbox | undefined;
  try {
    // Private (0700) before any container can leave a setuid binary in the run scratch.
    securePrivateState(stateDir, stateLabel);
    if (args.keep !== undefined) {
      sandbox = await openSandbox(stateDir, args.keep);
      sandbox.check(plan.request.name, plan.sourceDir);
    }
    // Layers are built through the shared package download cache, like run's (unless the matrix says cache-packages: false).
    const pool = plan.noPackagePool ? {} : { packagePool: packagePool(stateDir) };
    const image = await provisionImage(plan.request, { stateDir, signal: controller.signal, onProgress: (line) => process.stderr.write(`${line}\n`), ...pool });
    const st = statSync(plan.sourceDir);
    const sourceOwner: Ownership = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
    const isNew = sandbox !== undefined && sandbox.meta === undefined;
    await sandbox?.enter(image, plan.sourceDir, sourceOwner);
    const home = await ensureHome(stateDir, plan.sourceDir, user);
    const scratch = await createRunScratch(stateDir);
    const cellOutputDir = join(scratch.dir, 'shell');
    let container: Container | undefined;
    try {
      // An overlay /src takes its owner from its upper directory: the project's owner's, so that the user can write it.
      const overlaySource = plan.sourceMode === 'overlay' && !plan.privateUsers;
      const sourceUpper = overlaySource ? (sandbox?.sourceUpper ?? (await makeSourceUpper(join(scratch.dir, 'shell-src'), sourceOwner))) : undefined;
      // Before the container: a booted one's console puts the terminal in raw mode.
      process.stderr.write(`${shellBanner(plan.title, plan.sourceDir, plan.sourceMode, { user, home: user.home, ...(sandbox ? { sandbox: { name: sandbox.name, isNew } } : {}) })}\n`);
      container = await openContainer({
        cellId: plan.cellId,
        root: image.root,
        cellOutputDir,
        scratchDir: scratch.dir,
        sourceDir: plan.sourceDir,
        sourceMode: plan.sourceMode,
        network: plan.network,
        privateUsers: plan.privateUsers,
        boot: plan.boot,
        binds: plan.binds,
        mounts: [{ type: 'bind', host: home, container: user.home }],
        arch: plan.arch,
        nspawnExtra: plan.nspawn,
        env: { ...plan.env, ...(interactive && process.env.TERM ? { TERM: process.env.TERM } : {}) },
        interactive,
        ...(sandbox ? { strategy: 'overlay' as const } : {}),
        uppers: { ...(sandbox ? { root: sandbox.rootUpper } : {}), ...(sourceUpper ? { source: sourceUpper } : {}) },
      });
      const result = await container.exec({
        index: 0,
        name: 'shell',
        script: userScript(user, args.command),
        env: {},
        timeoutMs: 0,
        logPath: join(cellOutputDir, '01-shell.log'),
        signal: controller.signal,
        // A booted container's commands run as units: on its console (the terminal, through nspawn) when there is
        // a terminal, else with their output relayed.
        ...(plan.boot && !interactive ? { onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void (stream === 'stdout' ? process.stdout : process.stderr).write(chunk) } : { inheritStdio: true }),
      });
      if (result.infrastructureError) throw new InfraError(`nsmatrix shell: ${result.infrastructureError}`, { tail: result.tail });
      if (result.aborted) return 130;
      return exitStatus(result);
    } finally {
      await container?.close();
      await scratch.remove();
    }
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof UsageError)) return 130;
    if (error instanceof UsageError || error instanceof InfraError) throw error;
    throw new InfraError(`nsmatrix shell: ${(error as Error).message}`, { cause: error });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    await sandbox?.release();
    for (const failure of await resources.releaseAll()) process.stderr.write(`nsmatrix: cleanup: ${failure.message}\n`);
  }
}

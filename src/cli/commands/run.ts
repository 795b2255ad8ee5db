/**
 * `nsmatrix run`: matrix file -> cells -> images -> containers -> events -> reporters and the terminal.
 * Owns the process-level concerns: signals (first SIGINT/SIGTERM stops the run and still writes reports, a second
 * one forces), the output directory, and releasing every registered resource however the run ends.
 */
import { availableParallelism } from 'node:os';
import { relative, resolve } from 'node:path';
import { rerunCommand, selfCommand, type RerunContext } from '../../run/rerun.js';
import { realOrResolved } from '../../lib/host-paths.js';
import { InfraError, UsageError } from '../../errors.js';
import { detectHost } from '../../lib/host.js';
import { resources } from '../../lib/resources.js';
import { findMatrixFile, loadMatrix, expandMatrix, parseShard, cellEnvironment, DEFAULT_MAX_CELLS } from '../../matrix/index.js';
import { selectOrExplain } from '../selection.js';
import { imageRequestFor, provisionImage, resolveStateDir, gcImages } from '../../images/index.js';
import { openContainer, gcRuntime, createRunScratch } from '../../runtime/index.js';
import { checkMatrixHostPaths } from '../../runtime/binds.js';
import { RunEvents } from '../../run/events.js';
import { cellDirProblem } from '../../run/cell-dir.js';
import { runMatrix } from '../../run/scheduler.js';
import { securePrivateState } from '../../lib/private-dir.js';
import { checkOutputDir, checkStateDir, prepareOutputDir, stateDirLabel } from '../../lib/run-paths.js';
import { exitCodeFor } from '../../run/merge.js';
import type { Container, EphemeralStrategy } from '../../runtime/types.js';
import type { Cell } from '../../matrix/types.js';
import { shellScript } from './shell.js';
import { appendStepSummary, createReporters, writeReports } from '../reporting.js';
import { attachTerminal } from '../terminal.js';
import { lockOutputDir } from '../output-lock.js';
import { toolVersion } from '../../lib/version.js';
import { checkImageReferences } from '../image-check.js';
import { checkArchAvailability } from '../../images/arch-availability.js';
import { packagePool } from '../../caches/packages.js';
import { hostArch, requireRunnable } from '../../lib/arch.js';

export interface RunArgs {
  file?: string;
  filter: string[];
  shard?: string;
  'max-cells': number;
  jobs?: number;
  output: string;
  reporter?: string[];
  'state-dir'?: string;
  plain: boolean;
  'fail-fast'?: boolean;
  'ephemeral-strategy': 'auto' | EphemeralStrategy;
  seccomp: boolean;
  'shell-on-failure': boolean;
  stream?: boolean;
}

export function requireContainerHost(): ReturnType<typeof detectHost> {
  const host = detectHost();
  if (!host.isRoot) throw new InfraError('nsmatrix: run as root: starting containers needs root (the nsmatrix that scripts/setup-host.sh installs goes through sudo itself)');
  if (!host.nspawnPath) throw new InfraError('systemd-nspawn is not installed: apt-get install systemd-container (see nsmatrix doctor)');
  return host;
}

/** Drops the user into the failed cell's own container (its files as the steps left them); exit resumes the run. */
async function openFailureShell(cell: Cell, container: Container): Promise<void> {
  process.stdout.write(`\nnsmatrix: ${cell.name} failed: opening a shell in its container (files as the steps left them; exit to continue)\n`);
  await container.exec({
    index: cell.steps.length,
    name: 'shell-on-failure',
    script: shellScript([]),
    env: process.env.TERM ? { TERM: process.env.TERM } : {},
    timeoutMs: 0,
    logPath: '/dev/null',
    inheritStdio: true,
    interactive: true,
  });
}

/**
 * What a rerun of one cell must repeat: where images and results live, which reports, and every option that
 * changes a cell's result. Paths absolute, so that the command works from any directory.
 */
export function rerunContext(args: RunArgs, file: string, outputDir: string, stateDir: string): RerunContext {
  const options = ['--state-dir', resolve(stateDir), '--output', outputDir];
  for (const reporter of args.reporter ?? []) {
    const eq = reporter.indexOf('=');
    options.push('--reporter', eq === -1 ? reporter : `${reporter.slice(0, eq)}=${resolve(reporter.slice(eq + 1))}`);
  }
  if (args['ephemeral-strategy'] !== 'auto') options.push('--ephemeral-strategy', args['ephemeral-strategy']);
  if (!args.seccomp) options.push('--no-seccomp');
  if (Number(args['max-cells']) !== DEFAULT_MAX_CELLS) options.push('--max-cells', String(args['max-cells']));
  return { command: selfCommand(process.argv[1] ?? 'nsmatrix'), file: resolve(file), options };
}

function markInterrupted(): void {
  process.exitCode = 130;
}

export default async function run(argv: Record<string, unknown>): Promise<number> {
  const args = argv as unknown as RunArgs;
  if (args.jobs !== undefined && (!Number.isInteger(args.jobs) || args.jobs < 1)) throw new UsageError(`nsmatrix: --jobs must be a whole number >= 1, got ${String(args.jobs)}`);
  const file = findMatrixFile(process.cwd(), args.file);
  const loaded = await loadMatrix(file);
  const all = expandMatrix(loaded, { maxCells: args['max-cells'] });
  checkImageReferences(loaded, all);
  await checkArchAvailability(loaded, all, resolveStateDir(args['state-dir']));
  const shard = args.shard === undefined ? undefined : parseShard(args.shard);
  const cells = selectOrExplain(all, args.filter, args.shard);
  const shellOnFailure = args['shell-on-failure'];
  if (shellOnFailure && !(process.stdin.isTTY && process.stdout.isTTY)) {
    throw new UsageError('nsmatrix: --shell-on-failure needs a terminal on stdin and stdout');
  }
  const reporters = await createReporters(args.reporter);
  const stateDir = resolveStateDir(args['state-dir']);
  checkStateDir(stateDir, stateDirLabel(args['state-dir'], stateDir));
  const requestedOutput = checkOutputDir(args.output, stateDir);
  // Every host path the containers will see, checked (and resolved through symlinks) before anything starts.
  const model = checkMatrixHostPaths(loaded, { stateDir, outputDir: requestedOutput });
  // A cell directory that is not nsmatrix's own is never replaced: refuse before anything starts.
  for (const cell of cells) {
    const problem = cellDirProblem(realOrResolved(requestedOutput), cell.id);
    if (problem) throw new UsageError(`nsmatrix: --output ${args.output}: ${problem}`);
  }
  // An architecture this host cannot run (or boot) is refused before anything starts, with the fix (exit 3).
  requireRunnable(cells.map((cell) => cell.arch ?? hostArch()), { boot: model.boot });
  if (cells.length === 0) {
    process.stderr.write(`nsmatrix: shard ${args.shard ?? ''} has no cell (the selection has fewer cells than shards): nothing to run\n`);
    return 0;
  }
  const host = requireContainerHost();

  const controller = new AbortController();
  let signals = 0;
  // Until the terminal view exists, notices go to stderr; then through the view, so that they do not break it.
  let notify = (text: string): void => void process.stderr.write(text);
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      notify(`nsmatrix: ${signal}: stopping containers and writing reports (again to force)\n`);
      controller.abort(`interrupted by ${signal}`);
      return;
    }
    process.stderr.write(`nsmatrix: ${signal} again: forcing cleanup\n`);
    void resources.releaseAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    // The state directory and its run/ are private (0700) before any container can leave a setuid binary there,
    // also when an older nsmatrix or a user made them world-readable.
    securePrivateState(stateDir, stateDirLabel(args['state-dir'], stateDir));
    const outputDir = prepareOutputDir(requestedOutput, args.output);
    // Whatever a crashed or killed earlier run left behind is repaired before this one starts, while the output
    // directory's lock is being taken (a flock(1) process: milliseconds of waiting otherwise).
    // Both settle before anything is thrown: what either made is registered for the cleanup below by then.
    const [locked, repaired] = await Promise.allSettled([
      lockOutputDir(outputDir),
      (async () => {
        await gcRuntime(stateDir);
        await gcImages(stateDir);
        return createRunScratch(stateDir);
      })(),
    ]);
    if (locked.status === 'rejected') throw locked.reason;
    if (repaired.status === 'rejected') throw repaired.reason;
    const scratch = repaired.value;

    const events = new RunEvents();
    // An interactive shell and a live view cannot share the terminal: the shell wins.
    const terminal = attachTerminal(events, { plain: args.plain || shellOnFailure || args.stream === true, streamOutput: args.stream === true });
    notify = (text) => terminal.note(text);
    for (const reporter of reporters) if (reporter.reporter.onEvent) events.on((e) => reporter.reporter.onEvent!(e));

    const positions = new Map(all.map((cell, index) => [cell.id, index]));
    let rerunCtx: RerunContext | undefined;
    // One switch for cells and image builds alike: `cache-packages: false` keeps both off the shared pool.
    const pool = model.cachePackages === false ? undefined : packagePool(stateDir);
    const strategy = args['ephemeral-strategy'] === 'auto' ? undefined : args['ephemeral-strategy'];
    const result = await runMatrix({
      model,
      cells,
      positions,
      outputDir,
      scratchDir: scratch.dir,
      stateDir,
      ...(pool ? { packagePool: pool } : {}),
      fileArg: args.file ?? (relative(process.cwd(), file) || file),
      // Worked out once: it looks nsmatrix up on PATH.
      rerun: (cell) => rerunCommand((rerunCtx ??= rerunContext(args, file, outputDir, stateDir)), cell),
      jobs: shellOnFailure ? 1 : (args.jobs ?? availableParallelism()),
      failFast: args['fail-fast'] ?? model.failFast,
      ...(strategy ? { strategy } : {}),
      noSeccomp: !args.seccomp,
      ...(shard ? { shard } : {}),
      host,
      toolVersion: toolVersion(),
      events,
      signal: controller.signal,
      stages: {
        provision: (image, onProgress, arch) => provisionImage(imageRequestFor(image, model, arch), { stateDir, onProgress, signal: controller.signal, ...(pool ? { packagePool: pool } : {}) }),
        openContainer,
        cellEnvironment: (cell) => cellEnvironment(cell, model),
      },
      ...(shellOnFailure ? { onCellFailed: openFailureShell } : {}),
    });
    // The reports are the run's record: a failing terminal view must not keep them from being written.
    const shown = await Promise.resolve()
      .then(() => terminal.finish(result))
      .then(
      () => true,
      (error: unknown) => {
        process.stderr.write(`nsmatrix: the terminal summary failed: ${(error as Error)?.message ?? String(error)}\n`);
        return false;
      },
    );
    notify = (text) => void process.stderr.write(text);
    const written = await writeReports(reporters, result, outputDir);
    for (const path of written) process.stdout.write(`report: ${relative(process.cwd(), path) || path}\n`);
    await appendStepSummary(result, outputDir);
    const code = exitCodeFor(result);
    return shown || code === 130 ? code : Math.max(code, 3);
  } finally {
    // The handlers stay until cleanup is over: a signal arriving now must not kill the process half-way through it.
    const failures = await resources.releaseAll();
    for (const failure of failures) process.stderr.write(`nsmatrix: cleanup: ${failure.message}\n`);
    // Between here and the process's exit a signal must not kill it by its default action (a death by signal
    // hides the run's outcome): everything is released and written, so it only marks the exit as interrupted.
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.off(name, onSignal);
      process.on(name, markInterrupted);
    }
  }
}

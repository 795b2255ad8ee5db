/**
 * The one way nsmatrix runs an external process, on execa. Every runner (containers, image builds, locks, cp,
 * btrfs, skopeo, journalctl) goes through `start` (or `run`/`runChecked`), which:
 * - places the process in cgroups before it execs, when asked (`cgroupProcs`: nothing it starts escapes them);
 * - can start it ahead of time (`gated`): started at once, its clock started only when `open()` gives it the gate
 *   word on stdin, which the command itself waits for (the step wrapper inside a container does);
 * - registers it in `resources` while it runs, so SIGINT/SIGTERM cleanup stops it;
 * - stops it by our own clock (`timeoutMs`) or an AbortSignal: `killSignal` (SIGTERM), then SIGKILL after
 *   `graceMs`. execa's own `timeout`, `cancelSignal` and `forceKillAfterDelay` are not used: one stop path
 *   serves timeouts, cancellation, cleanup and a booted container's shutdown (whose grace differs per call);
 * - buffers short output (bounded by `maxBuffer`) or streams it, chunk by chunk, to `onOutput` with
 *   backpressure (a returned promise pauses the pipe until it settles);
 * - reports one result, whose flags say what happened, never a thrown error (`runChecked` throws for callers
 *   that only want success).
 */
import { execa, execaSync, type Options } from 'execa';
import type { Readable } from 'node:stream';
import { resources } from './resources.js';

/** Milliseconds on a monotonic clock (not performance.now(): loading node:perf_hooks costs ~3 ms of every start). */
function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Between the first signal and SIGKILL when nothing else is said. */
export const KILL_GRACE_MS = 5_000;
/** The most output a buffered run keeps per stream, unless told otherwise. */
export const DEFAULT_MAX_BUFFER = 16 * 2 ** 20;

export type OutputStream = 'stdout' | 'stderr';

export interface ProcessOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Names the process in the resource registry (default: argv[0]). */
  label?: string;
  /** Joined (`echo $$ > file`, for each file) before the command is exec'd: its cgroup.procs files. */
  cgroupProcs?: readonly string[];
  /**
   * Start now, with a pipe on stdin on which `open()` writes GATE_WORD and which it then closes; a stop before
   * `open()` closes it without the word. For a command that waits for that word itself and runs nothing without
   * it: everything it does before (a fork of this process, moving into cgroups, a whole container's set-up) is
   * paid ahead of the moment it must run. The clock (`timeoutMs`, `durationMs`) starts at `open()`. Not with
   * `input` or a `stdin`.
   */
  gated?: boolean;
  /** Stopped when this fires; never started when it already has. */
  signal?: AbortSignal;
  /** Stopped after this long (0 or absent: no limit). */
  timeoutMs?: number;
  /** The first signal of a stop (default SIGTERM; SIGKILL for processes that ignore SIGTERM). */
  killSignal?: 'SIGTERM' | 'SIGKILL';
  /** Between killSignal and SIGKILL (default KILL_GRACE_MS). */
  graceMs?: number;
  /** Written to stdin, which is then closed. */
  input?: string;
  stdin?: 'ignore' | 'inherit' | 'pipe';
  /** A number is a file descriptor the process writes to directly. */
  stdout?: 'pipe' | 'ignore' | 'inherit' | number;
  stderr?: 'pipe' | 'ignore' | 'inherit';
  /**
   * Streaming: every piped chunk goes here as it arrives and nothing is buffered. A returned promise pauses that
   * pipe until it settles (backpressure: a fast writer waits for a slow consumer instead of filling memory).
   */
  onOutput?: (stream: OutputStream, chunk: Buffer) => void | Promise<void>;
  /** Buffered runs: the most characters kept per stream (default DEFAULT_MAX_BUFFER); the rest is not read. */
  maxBuffer?: number;
  /** Its own process group (a terminal's Ctrl-C reaches only nsmatrix, which stops processes in order). */
  detached?: boolean;
  /** Awaited once the process is over (or could not start), before its output is awaited (e.g. destroy a cgroup). */
  afterExit?: () => Promise<void> | void;
  /**
   * After exit (and afterExit), how long output pipes may stay open, held by processes it left behind, before we
   * stop reading them. Absent: wait for them.
   */
  drainMs?: number;
}

export interface ProcessResult {
  /** The argv as a shell would show it. */
  command: string;
  /** null when killed by a signal, or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Stopped by `timeoutMs`. */
  timedOut: boolean;
  /** Stopped by the AbortSignal (or never started because it had fired). */
  isCanceled: boolean;
  /** A stream gave more than `maxBuffer`: the rest was not read (the pipe is closed). */
  isMaxBuffer: boolean;
  /** Anything but exit code 0 with none of the flags above. */
  failed: boolean;
  /** Why the process could not be started at all (ENOENT, EACCES…). */
  error?: Error;
  /** From start to exit. */
  durationMs: number;
  /** Buffered runs only ('' when streamed, ignored or redirected). */
  stdout: string;
  stderr: string;
}

export interface RunningProcess {
  /** undefined when it could not be started. */
  readonly pid: number | undefined;
  /** A gated process: give it the gate word now (no-op otherwise, and after the first call, a stop or its exit). */
  open(): void;
  /** Resolves when the process has exited (its output may still be flowing). */
  readonly exited: Promise<void>;
  /** killSignal, then SIGKILL after `graceMs` (default: the option's); resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** Exit, afterExit and output, all done. */
  readonly result: Promise<ProcessResult>;
}

const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

export function formatArgv(argv: readonly string[]): string {
  return argv.map(quote).join(' ');
}

/** `sh -c` prologue that moves the shell into the cgroups, then execs the real command in place. */
const JOIN_CGROUP = 'for f in $NSMATRIX_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done';
/** What `open()` writes to a gated process's stdin: the whole line, newline included. */
export const GATE_WORD = 'open\n';

/** The argv that joins `cgroupProcs` before exec'ing `argv`; unchanged without any. Pure. */
export function cgroupWrapped(argv: readonly string[], cgroupProcs: readonly string[] | undefined): { argv: string[]; env: Record<string, string> } {
  if (cgroupProcs === undefined || cgroupProcs.length === 0) return { argv: [...argv], env: {} };
  return { argv: ['/bin/sh', '-c', `${JOIN_CGROUP}; exec "$@"`, 'nsmatrix-cgroup', ...argv], env: { NSMATRIX_CGROUP_PROCS: cgroupProcs.join(' ') } };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function finish(
  command: string,
  outcome: Partial<ProcessResult> & Pick<ProcessResult, 'exitCode' | 'signal' | 'timedOut' | 'isCanceled' | 'durationMs'>,
): ProcessResult {
  const result = { command, isMaxBuffer: false, stdout: '', stderr: '', ...outcome };
  const failed = result.exitCode !== 0 || result.signal !== null || result.timedOut || result.isCanceled || result.isMaxBuffer || result.error !== undefined;
  return { ...result, failed };
}

/** Starts `argv` under nsmatrix's control; see the module comment. */
export function start(argv: readonly string[], options: ProcessOptions = {}): RunningProcess {
  const command = formatArgv(argv);
  let started = now();
  if (options.signal?.aborted) {
    const result = (async () => {
      await options.afterExit?.();
      return finish(command, { exitCode: null, signal: null, timedOut: false, isCanceled: true, durationMs: 0 });
    })();
    return { pid: undefined, open: () => undefined, exited: Promise.resolve(), stop: () => Promise.resolve(), result };
  }
  const gated = options.gated ?? false;
  if (gated && (options.input !== undefined || (options.stdin ?? 'ignore') !== 'ignore')) throw new Error('a gated process has its stdin for the gate word');
  const killSignal = options.killSignal ?? 'SIGTERM';
  const defaultGrace = options.graceMs ?? KILL_GRACE_MS;
  const streaming = options.onOutput !== undefined;
  const wrapped = cgroupWrapped(argv, options.cgroupProcs);
  const execaOptions: Options = {
    env: { ...options.env, ...wrapped.env },
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.input !== undefined ? { input: options.input } : { stdin: gated ? 'pipe' : (options.stdin ?? 'ignore') }),
    // A file descriptor is passed to the child as is (execa's types list only 3 to 9; any open fd works).
    stdout: (options.stdout ?? 'pipe') as Options['stdout'],
    stderr: options.stderr ?? 'pipe',
    buffer: !streaming,
    maxBuffer: options.maxBuffer ?? DEFAULT_MAX_BUFFER,
    stripFinalNewline: false,
    detached: options.detached ?? false,
    killSignal,
    // Our own stop path below; execa's would add exit hooks (signal-exit) and a second clock.
    forceKillAfterDelay: false,
    cleanup: false,
    reject: false,
  };
  const subprocess = execa(wrapped.argv[0]!, wrapped.argv.slice(1), execaOptions);

  let exitCode: number | null = null;
  let signal: NodeJS.Signals | null = null;
  let hasExited = false;
  const exited = new Promise<void>((resolve) => {
    subprocess.once('exit', (code, sig) => {
      exitCode = code;
      signal = sig;
      hasExited = true;
      resolve();
    });
    // Never started: no 'exit' follows.
    subprocess.once('error', () => {
      if (subprocess.pid === undefined) resolve();
    });
  });

  if (options.onOutput) {
    const onOutput = options.onOutput;
    for (const name of ['stdout', 'stderr'] as const) {
      const source = subprocess[name] as Readable | null;
      source?.on('data', (chunk: Buffer) => {
        const wait = onOutput(name, chunk);
        if (wait) {
          source.pause();
          void wait.then(
            () => source.resume(),
            () => source.resume(),
          );
        }
      });
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = defaultGrace): Promise<void> => {
    if (hasExited || subprocess.pid === undefined) return exited;
    return (stopping ??= (async () => {
      if (!gateOpen) subprocess.stdin?.end();
      subprocess.kill(killSignal);
      const timer = killSignal === 'SIGKILL' ? undefined : setTimeout(() => subprocess.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })());
  };

  let timedOut = false;
  let isCanceled = false;
  let timer: NodeJS.Timeout | undefined;
  const startClock = () => {
    started = now();
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        void stop();
      }, options.timeoutMs);
    }
  };
  // The gate: the word opens it; a stop or our own end closes the pipe first, and the command then runs nothing.
  let gateOpen = !gated;
  subprocess.stdin?.on('error', () => undefined);
  const open = () => {
    if (gateOpen || stopping || hasExited) return;
    gateOpen = true;
    startClock();
    subprocess.stdin?.end(GATE_WORD);
  };
  if (!gated) startClock();
  const onAbort = () => {
    isCanceled = true;
    void stop();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const registration = subprocess.pid === undefined ? undefined : resources.add(`${options.label ?? argv[0]} (pid ${subprocess.pid})`, () => stop());

  const result = (async (): Promise<ProcessResult> => {
    await exited;
    const durationMs = Math.round(now() - started);
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // Gone: forgetting it stops nothing.
    await registration?.release();
    await options.afterExit?.();
    if (options.drainMs !== undefined) {
      const drained = await Promise.race([subprocess.then(() => true), sleep(options.drainMs).then(() => false)]);
      if (!drained) {
        subprocess.stdout?.destroy();
        subprocess.stderr?.destroy();
      }
    }
    const outcome = await subprocess;
    const text = (value: unknown) => (typeof value === 'string' ? value : '');
    return finish(command, {
      exitCode,
      signal,
      timedOut,
      isCanceled,
      durationMs,
      isMaxBuffer: outcome.isMaxBuffer,
      stdout: text(outcome.stdout),
      stderr: text(outcome.stderr),
      ...(hasExited ? {} : { error: outcome.cause instanceof Error ? outcome.cause : new Error(outcome.message ?? `cannot run ${argv[0]}`) }),
    });
  })();

  return { pid: subprocess.pid, open, exited, stop, result };
}

/** Runs `argv` to its end: the result, flags and (bounded) output. */
export function run(argv: readonly string[], options: ProcessOptions = {}): Promise<ProcessResult> {
  return start(argv, options).result;
}

/** A failed `runChecked`: the whole result, and execFile's kind of message (command, then its stderr). */
export class ProcessError extends Error {
  override name = 'ProcessError';
  constructor(readonly result: ProcessResult) {
    const how = result.error
      ? result.error.message
      : result.timedOut
        ? 'timed out'
        : result.isCanceled
          ? 'aborted'
          : result.signal
            ? `killed by ${result.signal}`
            : `exit ${result.exitCode}`;
    const stderr = result.stderr.trim();
    super(`Command failed (${how}): ${result.command}${stderr ? `\n${stderr}` : ''}`, result.error ? { cause: result.error } : undefined);
  }
}

/** `run`, but anything other than success throws a ProcessError. */
export async function runChecked(argv: readonly string[], options: ProcessOptions = {}): Promise<ProcessResult> {
  const result = await run(argv, options);
  if (result.failed) throw new ProcessError(result);
  return result;
}

/**
 * Synchronous, for the few facts read while the CLI starts a command (`systemd-nspawn --version`): no
 * registration, no cgroup, a timeout by SIGKILL.
 */
export function runSync(argv: readonly string[], options: { timeoutMs?: number; maxBuffer?: number; stderr?: 'pipe' | 'ignore' } = {}): ProcessResult {
  const started = now();
  const outcome = execaSync(argv[0]!, argv.slice(1), {
    stdin: 'ignore',
    stderr: options.stderr ?? 'pipe',
    maxBuffer: options.maxBuffer ?? DEFAULT_MAX_BUFFER,
    stripFinalNewline: false,
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    killSignal: 'SIGKILL',
    reject: false,
  });
  const neverRan = outcome.exitCode === undefined && outcome.signal === undefined;
  return finish(formatArgv(argv), {
    exitCode: outcome.exitCode ?? null,
    signal: outcome.signal ?? null,
    timedOut: outcome.timedOut,
    isCanceled: false,
    isMaxBuffer: outcome.isMaxBuffer,
    durationMs: Math.round(now() - started),
    stdout: typeof outcome.stdout === 'string' ? outcome.stdout : '',
    stderr: typeof outcome.stderr === 'string' ? outcome.stderr : '',
    ...(neverRan ? { error: outcome.cause instanceof Error ? outcome.cause : new Error(outcome.message) } : {}),
  });
}

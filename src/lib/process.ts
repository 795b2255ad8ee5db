/**
 * The one way nsmatrix runs an external process, on node:child_process. Every runner (containers, image builds, locks, cp,
 * btrfs, skopeo, journalctl) goes through `start` (or `run`/`runChecked`), which:
 * - places the process in cgroups before it execs, when asked (`cgroupProcs`: nothing it starts escapes them);
 * - registers it in `resources` while it runs, so SIGINT/SIGTERM cleanup stops it;
 * - stops it by our own clock (`timeoutMs`) or an AbortSignal: `killSignal` (SIGTERM), then SIGKILL after
 *   `graceMs`: one stop path serves timeouts, cancellation, cleanup and a booted container's shutdown (whose
 *   grace differs per call);
 * - buffers short output (bounded by `maxBuffer`) or streams it, chunk by chunk, to `onOutput` with
 *   backpressure (a returned promise pauses the pipe until it settles);
 * - reports one result, whose flags say what happened, never a thrown error (`runChecked` throws for callers
 *   that only want success).
 * (It was built on execa, whose hundred modules took longer to load than a container takes to run: `nsmatrix
 * shell` and every cell of `run` start one. Only what is above is needed, and node's child_process does it.)
 */
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { resources } from './resources.js';

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
const JOIN_CGROUP = 'for f in $NSMATRIX_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"';

/** The argv that joins `cgroupProcs` before exec'ing `argv` (unchanged without any). Pure. */
export function cgroupWrapped(argv: readonly string[], cgroupProcs: readonly string[] | undefined): { argv: string[]; env: Record<string, string> } {
  if (!cgroupProcs || cgroupProcs.length === 0) return { argv: [...argv], env: {} };
  return { argv: ['/bin/sh', '-c', JOIN_CGROUP, 'nsmatrix-cgroup', ...argv], env: { NSMATRIX_CGROUP_PROCS: cgroupProcs.join(' ') } };
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
  const started = performance.now();
  if (options.signal?.aborted) {
    const result = (async () => {
      await options.afterExit?.();
      return finish(command, { exitCode: null, signal: null, timedOut: false, isCanceled: true, durationMs: 0 });
    })();
    return { pid: undefined, exited: Promise.resolve(), stop: () => Promise.resolve(), result };
  }
  const killSignal = options.killSignal ?? 'SIGTERM';
  const defaultGrace = options.graceMs ?? KILL_GRACE_MS;
  const wrapped = cgroupWrapped(argv, options.cgroupProcs);
  const stdin = options.input !== undefined ? 'pipe' : (options.stdin ?? 'ignore');
  // A file descriptor is passed to the child as is.
  const stdio: StdioOptions = [stdin, options.stdout ?? 'pipe', options.stderr ?? 'pipe'];
  const maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const subprocess = spawn(wrapped.argv[0]!, wrapped.argv.slice(1), {
    env: { ...process.env, ...options.env, ...wrapped.env },
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdio,
    detached: options.detached ?? false,
  });

  let exitCode: number | null = null;
  let signal: NodeJS.Signals | null = null;
  let hasExited = false;
  let spawnError: Error | undefined;
  // Every pipe closed (or the process never started): its output is complete.
  let closed!: () => void;
  const allClosed = new Promise<void>((resolve) => (closed = resolve));
  subprocess.once('close', () => closed());
  const exited = new Promise<void>((resolve) => {
    subprocess.once('exit', (code, sig) => {
      exitCode = code;
      signal = sig;
      hasExited = true;
      resolve();
    });
    // Never started: no 'exit' follows. (Later errors, e.g. a failed kill, change nothing here.)
    subprocess.on('error', (error) => {
      if (subprocess.pid !== undefined || hasExited) return;
      spawnError ??= error;
      for (const pipe of [subprocess.stdin, subprocess.stdout, subprocess.stderr]) pipe?.destroy();
      resolve();
      closed();
    });
  });

  if (options.input !== undefined && subprocess.stdin) {
    // A process that exits without reading its input: EPIPE is not an error of ours.
    subprocess.stdin.on('error', () => undefined);
    subprocess.stdin.end(options.input);
  }

  const buffered: Record<OutputStream, string> = { stdout: '', stderr: '' };
  let isMaxBuffer = false;
  for (const name of ['stdout', 'stderr'] as const) {
    const source = subprocess[name] as Readable | null;
    if (!source) continue;
    source.on('error', () => undefined);
    if (options.onOutput) {
      const onOutput = options.onOutput;
      source.on('data', (chunk: Buffer) => {
        const wait = onOutput(name, chunk);
        if (wait) {
          source.pause();
          void wait.then(
            () => source.resume(),
            () => source.resume(),
          );
        }
      });
      continue;
    }
    // Buffered: at most maxBuffer characters; past that the pipe is closed and the rest never read.
    const decoder = new StringDecoder('utf8');
    const keep = (text: string) => {
      if (isMaxBuffer && buffered[name].length >= maxBuffer) return;
      buffered[name] += text;
      if (buffered[name].length > maxBuffer) {
        buffered[name] = buffered[name].slice(0, maxBuffer);
        isMaxBuffer = true;
        source.destroy();
      }
    };
    source.on('data', (chunk: Buffer) => keep(decoder.write(chunk)));
    source.on('end', () => keep(decoder.end()));
  }

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = defaultGrace): Promise<void> => {
    if (hasExited || subprocess.pid === undefined) return exited;
    return (stopping ??= (async () => {
      subprocess.kill(killSignal);
      const timer = killSignal === 'SIGKILL' ? undefined : setTimeout(() => subprocess.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    })());
  };

  let timedOut = false;
  let isCanceled = false;
  const timer =
    options.timeoutMs !== undefined && options.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          void stop();
        }, options.timeoutMs)
      : undefined;
  const onAbort = () => {
    isCanceled = true;
    void stop();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const registration = subprocess.pid === undefined ? undefined : resources.add(`${options.label ?? argv[0]} (pid ${subprocess.pid})`, () => stop());

  const result = (async (): Promise<ProcessResult> => {
    await exited;
    const durationMs = Math.round(performance.now() - started);
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // Gone: forgetting it stops nothing.
    await registration?.release();
    await options.afterExit?.();
    if (options.drainMs !== undefined) {
      const drained = await Promise.race([allClosed.then(() => true), sleep(options.drainMs).then(() => false)]);
      if (!drained) {
        subprocess.stdout?.destroy();
        subprocess.stderr?.destroy();
      }
    }
    await allClosed;
    return finish(command, {
      exitCode,
      signal,
      timedOut,
      isCanceled,
      durationMs,
      isMaxBuffer,
      stdout: buffered.stdout,
      stderr: buffered.stderr,
      ...(hasExited ? {} : { error: spawnError ?? new Error(`cannot run ${argv[0]}`) }),
    });
  })();

  return { pid: subprocess.pid, exited, stop, result };
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
  const started = performance.now();
  const maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const outcome = spawnSync(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', options.stderr ?? 'pipe'],
    encoding: 'utf8',
    maxBuffer,
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    killSignal: 'SIGKILL',
  });
  const code = (outcome.error as NodeJS.ErrnoException | undefined)?.code;
  // Past maxBuffer, node stops reading but returns what it had read: keep no more than a buffered run would.
  const text = (value: unknown) => (typeof value === 'string' ? (code === 'ENOBUFS' ? value.slice(0, maxBuffer) : value) : '');
  const neverRan = outcome.error !== undefined && outcome.status === null && outcome.signal === null;
  return finish(formatArgv(argv), {
    exitCode: outcome.status,
    signal: outcome.signal,
    timedOut: code === 'ETIMEDOUT',
    isCanceled: false,
    isMaxBuffer: code === 'ENOBUFS',
    durationMs: Math.round(performance.now() - started),
    stdout: text(outcome.stdout),
    stderr: text(outcome.stderr),
    ...(neverRan ? { error: outcome.error } : {}),
  });
}

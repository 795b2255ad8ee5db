/**
 * Boot mode: the container boots systemd (`--boot`) and each step runs as a transient unit inside it, started by
 * the agent nsmatrix places in the container (agent.ts): the host never executes anything from the container's
 * root. The wrapper writes the step's exact status into a pipe the host holds. The journal lives on the host
 * (bound onto /var/log/journal) and is read with the host's journalctl after shutdown, once disarmed.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { basename, dirname, join, relative } from 'node:path';
import { InfraError } from '../errors.js';
import { KILL_GRACE_MS, start } from '../lib/process.js';
import { AGENT_CONSOLE, AGENT_INIT_ARGS, AGENT_SCRIPT, AGENT_STOP, AGENT_UNIT, CONSOLE_INIT_ARGS, exportLines } from './agent.js';
import { isValidEnvName, nspawnEnvironment } from '../lib/nspawn.js';
import { buildNspawnArgs, type NspawnPlan } from './args.js';
import type { ContainerCgroup } from './cgroup.js';
import { makeStagedFifos, publishFile, publishStaged, unpublish, type ControlDir } from './control.js';
import { disarmTree } from './disarm.js';
import { publishStepCode, stepToken } from './exec.js';
import { StepLog } from './log.js';
import { recordNspawnPid } from './orphans.js';
import type { ExecRequest, ExecResult, JournalSummary } from './types.js';
import { parseStatus } from './wrapper.js';

export const BOOT_TIMEOUT_MS = 120_000;
export const SHUTDOWN_GRACE_MS = 30_000;
/** After a timed-out step's unit is killed, how long its end may take before the container is stopped instead. */
const STEP_STOP_MS = 30_000;
/** After the agent reports a step done, how long its output pipes may take to drain. */
const DRAIN_MS = 2_000;
/** journald's MESSAGE_ID for "Process ... dumped core" (systemd-coredump). */
const COREDUMP_MESSAGE_ID = 'fc2e22bc6ee647b6b90729ab34a250b1';
/** Errors caused by nsmatrix's own bind mounts at shutdown (they are held busy from the host), not by the image. */
/** Without CAP_SYS_ADMIN, systemd fails to unmount every mount at shutdown: all of them are nspawn's, none an error. */
const UNMOUNT_NOISE = /systemd\[1\]: Failed unmounting /;
export function isShutdownNoise(line: string, withoutSysAdmin: boolean): boolean {
  return OWN_MOUNT_NOISE.test(line) || (withoutSysAdmin && UNMOUNT_NOISE.test(line));
}
export const OWN_MOUNT_NOISE = /Failed unmounting (var-log-journal\.mount|\/var\/log\/journal|run-nsmatrix\.mount|\/run\/nsmatrix|src\.mount|\/src|artifacts\.mount|\/artifacts)\.?$/;
/** The most of a container-written pipe or journal query the host keeps in memory. */
const MAX_STATUS_BYTES = 4096;
const MAX_LINE_BYTES = 4096;
const MAX_QUERY_BYTES = 16 * 2 ** 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** The read end of a FIFO, plus a write end the host keeps so that it sees no EOF before the container writes. */
interface HostPipe {
  socket: Socket;
  /** Closes the host's write end: EOF follows once the container's writers are gone. */
  release(): void;
  ended: Promise<void>;
}

function openHostPipe(path: string): HostPipe {
  const read = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let keep: number | null = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const socket = new Socket({ fd: read, readable: true, writable: false });
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
  });
  const release = () => {
    if (keep !== null) closeSync(keep);
    keep = null;
  };
  void ended.then(release);
  return { socket, release, ended };
}

/** Splits the agent's messages into lines; a line longer than MAX_LINE_BYTES is dropped (the agent never writes one). */
function onLines(socket: Socket, handle: (line: string) => void): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      handle(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    if (pending.length > MAX_LINE_BYTES) pending = '';
  });
}

export interface BootedContainer {
  /** Set once the container has stopped (closed, timed out, or died on its own). */
  readonly stopped: boolean;
  exec(request: ExecRequest): Promise<ExecResult>;
  /** Clean shutdown (SIGTERM to nspawn), SIGKILL after a grace period (default 30 s). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface BootContext {
  plan: Omit<NspawnPlan, 'command'>;
  control: ControlDir;
  /** Host-only path for the agent's unit file (bound read-only into the container). */
  agentUnitPath: string;
  usePerl: boolean;
  noSeccomp: boolean;
  cgroup: ContainerCgroup | null;
  /** Console output of the booting container. */
  consoleLogPath: string;
  bootTimeoutMs?: number;
}

/** Made before the container exists, so nothing in them can be the container's doing. */
async function placeAgent(ctx: BootContext): Promise<{ input: FileHandle; output: HostPipe }> {
  await writeFile(ctx.agentUnitPath, AGENT_UNIT, { mode: 0o644 });
  await publishFile(ctx.control, 'agent.sh', AGENT_SCRIPT, 0o644);
  const [inPath, outPath] = await makeStagedFifos(ctx.control, ['agent.in', 'agent.out']);
  // Read-write: opening never waits for a reader, and a write never fails for want of one.
  const input = await open(inPath!, constants.O_RDWR | constants.O_NONBLOCK);
  const output = openHostPipe(outPath!);
  await publishStaged(ctx.control, 'agent.in');
  await publishStaged(ctx.control, 'agent.out');
  return { input, output };
}

export async function bootContainer(ctx: BootContext): Promise<BootedContainer> {
  const agent = await placeAgent(ctx);
  // Interactive (a shell): nspawn gives the container's console the user's terminal, where the shell's unit runs.
  const { interactive } = ctx.plan;
  const command = interactive ? [...AGENT_INIT_ARGS, ...CONSOLE_INIT_ARGS] : AGENT_INIT_ARGS;
  const argv = [ctx.plan.host.nspawnPath ?? 'systemd-nspawn', ...buildNspawnArgs({ ...ctx.plan, boot: true, agentUnit: ctx.agentUnitPath, command })];
  const consoleLog = await StepLog.open(ctx.consoleLogPath);
  const nspawn = start(argv, {
    env: nspawnEnvironment(ctx.plan.host, { mode: 'boot', noSeccomp: ctx.noSeccomp }),
    cgroupProcs: ctx.cgroup?.procsFiles,
    label: `booted container ${ctx.plan.machine}`,
    ...(interactive ? { stdin: 'inherit' as const, stdout: 'inherit' as const } : {}),
    onOutput: (stream, chunk) => void consoleLog.write(stream, chunk),
    // On a terminal nspawn stays in nsmatrix's process group (it reads the terminal); piped, a group of its own.
    detached: !interactive,
    // Cleanup on a signal shuts the container down cleanly, as stop() does.
    graceMs: SHUTDOWN_GRACE_MS,
  });
  recordNspawnPid(dirname(ctx.control.shared), nspawn.pid);
  // Output closed too: after nspawn, everything of the container is gone.
  const exited = nspawn.result.then((result) => result.exitCode);

  // Messages from the agent: `ready STATE` once, `done TOKEN` per step. Waiters are also woken when nspawn exits.
  let readyState: string | null = null;
  const waiters = new Map<string, () => void>();
  const wake = (key: string) => {
    waiters.get(key)?.();
    waiters.delete(key);
  };
  onLines(agent.output.socket, (line) => {
    const [kind, value] = line.split(' ');
    if (kind === 'ready' && readyState === null) {
      readyState = value ?? '';
      wake('ready');
    } else if (kind === 'done' && value) wake(`done ${value}`);
  });
  const until = (key: string) => new Promise<void>((resolve) => waiters.set(key, resolve));

  let stopped = false;
  void exited.then(async () => {
    stopped = true;
    for (const key of [...waiters.keys()]) wake(key);
    agent.output.release();
    agent.output.socket.destroy();
    await agent.input.close().catch(() => undefined);
    await consoleLog.close();
  });
  const stop = async (graceMs = SHUTDOWN_GRACE_MS) => {
    await nspawn.stop(graceMs);
    await exited;
  };

  const fail = async (why: string): Promise<never> => {
    await stop(KILL_GRACE_MS);
    throw new InfraError(`container ${ctx.plan.machine} did not boot: ${why}`, { logPath: ctx.consoleLogPath, tail: consoleLog.tail() });
  };

  const bootTimeoutMs = ctx.bootTimeoutMs ?? BOOT_TIMEOUT_MS;
  const booted = await Promise.race([until('ready').then(() => 'ready' as const), sleep(bootTimeoutMs).then(() => 'timeout' as const)]);
  if (stopped) return fail('systemd-nspawn exited during boot');
  if (booted === 'timeout') return fail(`the system did not finish booting within ${bootTimeoutMs} ms`);
  // "degraded" (a unit failed) still runs units; "stopping" and the like do not.
  if (readyState !== 'running' && readyState !== 'degraded') return fail(`system state "${readyState}"`);

  let counter = 0;
  const container: BootedContainer = {
    get stopped() {
      return stopped;
    },
    stop: (graceMs?: number) => stop(graceMs),
    exec: async (request) => {
      const unavailable = (why: string): ExecResult => ({ exitCode: null, signal: null, timedOut: false, durationMs: 0, tail: [], infrastructureError: why });
      if (stopped) return unavailable(`container ${ctx.plan.machine} is no longer running`);
      const env = { ...ctx.plan.env, ...request.env };
      const badName = Object.keys(env).find((name) => !isValidEnvName(name));
      if (badName !== undefined) return unavailable(`env: invalid environment variable name "${badName}"`);

      const started = Date.now();
      const token = stepToken(request.index);
      const unit = `nsmatrix-step-${String(request.index + 1).padStart(2, '0')}-${++counter}`;
      const names = ['out', 'err', 'status'].map((ext) => `${token}.${ext}`);
      await publishStepCode(ctx.control, token, exportLines(env) + request.script, ctx.usePerl);
      const pipes = (await makeStagedFifos(ctx.control, names)).map(openHostPipe);
      for (const name of names) await publishStaged(ctx.control, name);

      const log = await StepLog.open(request.logPath);
      const [out, err, statusPipe] = pipes as [HostPipe, HostPipe, HostPipe];
      for (const [pipe, stream] of [[out, 'stdout'], [err, 'stderr']] as const) {
        pipe.socket.on('data', (chunk: Buffer) => {
          log.write(stream, chunk);
          request.onOutput?.(stream, chunk);
          if (log.congested()) {
            pipe.socket.pause();
            void log.drained().then(() => pipe.socket.resume());
          }
        });
      }
      let statusText = '';
      statusPipe.socket.on('data', (chunk: Buffer) => {
        if (statusText.length < MAX_STATUS_BYTES) statusText += chunk.toString('utf8');
      });

      let timedOut = false;
      let aborted = false;
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const interrupted = new Promise<void>((resolve) => {
        if (request.timeoutMs > 0) timer = setTimeout(() => ((timedOut = true), resolve()), request.timeoutMs);
        onAbort = () => ((aborted = true), resolve());
        if (request.signal?.aborted) onAbort();
        else request.signal?.addEventListener('abort', onAbort, { once: true });
      });
      const done = until(`done ${token}`);
      try {
        const onConsole = interactive && request.inheritStdio ? ` ${AGENT_CONSOLE}` : '';
        await agent.input.write(`${token} ${unit} ${ctx.usePerl ? '/usr/bin/perl' : '/bin/sh'}${onConsole}\n`);
        await Promise.race([done, interrupted]);
      } catch {
        // the container stopped meanwhile (the pipe is closed): reported below as a missing status
      }
      clearTimeout(timer);
      if (onAbort) request.signal?.removeEventListener('abort', onAbort);
      if ((timedOut || aborted) && !stopped) {
        // The agent kills the step's unit (its whole cgroup): the container stays up for the step's result files
        // (a cancelled step's too, as in exec mode). A step that does not end within STEP_STOP_MS (its output held
        // open from outside its unit) stops the container.
        log.note(`${timedOut ? `timed out after ${request.timeoutMs} ms` : 'aborted'}: step stopped`);
        const ended = await agent.input
          .write(`${AGENT_STOP} ${unit}\n`)
          .then(() => Promise.race([done.then(() => true), sleep(STEP_STOP_MS).then(() => false)]))
          .catch(() => false);
        if (!ended && !stopped) {
          log.note(`the step did not end within ${STEP_STOP_MS} ms of its stop: container stopped`);
          await container.stop(KILL_GRACE_MS);
        }
      }
      waiters.delete(`done ${token}`);
      for (const pipe of pipes) pipe.release();
      // A process the container keeps holding a pipe open must not hold up the run.
      await Promise.race([Promise.all(pipes.map((p) => p.ended)), sleep(DRAIN_MS)]);
      for (const pipe of pipes) pipe.socket.destroy();
      for (const name of [...names, `${token}.sh`, `${token}.wrap`]) await unpublish(ctx.control, name);
      await log.close();

      const base = { timedOut, aborted, durationMs: Date.now() - started, tail: log.tail() };
      const status = parseStatus(statusText);
      if (timedOut || aborted) return { ...base, exitCode: null, signal: status?.signal ?? null };
      if (status) return { ...base, exitCode: status.exitCode, signal: status.signal };
      const why = stopped ? `container ${ctx.plan.machine} stopped before the step finished` : `the step's unit ${unit} ended without a status`;
      const detail = base.tail.slice(-5).join(' | ');
      return { ...base, exitCode: null, signal: null, infrastructureError: `${why}${detail ? `: ${detail}` : ''}` };
    },
  };
  return container;
}

/** Runs journalctl on a disarmed journal directory, keeping at most MAX_QUERY_BYTES of its output. */
async function journalctl(dir: string, extra: string[], toFile?: string): Promise<string> {
  const out = toFile ? openSync(toFile, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644) : 'pipe';
  const query = start(['journalctl', `--directory=${dir}`, '--no-pager', '-q', ...extra], {
    label: `journalctl ${dir}`,
    stdout: out,
    stderr: 'ignore',
    maxBuffer: MAX_QUERY_BYTES,
    timeoutMs: 60_000,
    killSignal: 'SIGKILL',
  });
  if (typeof out === 'number') closeSync(out);
  return (await query.result).stdout.slice(0, MAX_QUERY_BYTES);
}

/** Exports the journal to `journal.txt` and summarises errors and coredumps. */
export async function summariseJournal(journalDir: string, outputRoot: string, options: { withoutSysAdmin?: boolean } = {}): Promise<JournalSummary> {
  const textPath = join(dirname(journalDir), 'journal.txt');
  // Written by the container: only regular files and directories stay, without setuid bits, before the host reads it.
  await disarmTree(journalDir, { regularOnly: true });
  await journalctl(journalDir, ['-o', 'short-iso'], textPath);
  const errors = (await journalctl(journalDir, ['-o', 'short-iso', '-p', 'err'])).split('\n').filter((l) => l && !l.startsWith('-- ') && !isShutdownNoise(l, options.withoutSysAdmin ?? false));
  const coredumps = (await journalctl(journalDir, ['-o', 'cat', `MESSAGE_ID=${COREDUMP_MESSAGE_ID}`]))
    .split('\n')
    .filter((l) => l.trim() !== '');
  return {
    dir: relative(outputRoot, journalDir) || basename(journalDir),
    text: relative(outputRoot, textPath),
    errors,
    coredumps,
  };
}

/**
 * Runs one systemd-nspawn (or nsenter) process under nsmatrix's control: in its own cgroup when the host needs
 * it, output streamed to a step log, stopped by the runner's own clock (SIGTERM, then SIGKILL after a grace
 * period) or by an AbortSignal, and registered in `resources` while it runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { resources } from '../lib/resources.js';
import type { ContainerCgroup } from './cgroup.js';
import { recordNspawnPid } from './orphans.js';
import { withoutNspawnNoise, type StepLog } from './log.js';

export const KILL_GRACE_MS = 5_000;
const OUTPUT_DRAIN_MS = 2_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface SuperviseRequest {
  argv: string[];
  env: Record<string, string>;
  /** Joined before the command is exec'd, so nothing it starts escapes the cgroup. */
  cgroup?: ContainerCgroup | null;
  log?: StepLog;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Attach the terminal (interactive shell). */
  inheritStdio?: boolean;
  /** The container's scratch directory: the nspawn pid is recorded there for `gc` (orphans.ts). */
  recordIn?: string;
  label: string;
  graceMs?: number;
}

export interface SuperviseResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

/** `sh -c` prologue that moves the shell into the cgroups, then execs the real command in place. */
const JOIN_CGROUP = 'for f in $NSMATRIX_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"';

export function cgroupWrappedArgv(argv: string[], cgroup: ContainerCgroup | null | undefined): { file: string; args: string[]; env: Record<string, string> } {
  if (!cgroup) return { file: argv[0]!, args: argv.slice(1), env: {} };
  return { file: '/bin/sh', args: ['-c', JOIN_CGROUP, 'nsmatrix-cgroup', ...argv], env: { NSMATRIX_CGROUP_PROCS: cgroup.procsFiles.join(' ') } };
}

/** Sends SIGTERM, then SIGKILL after the grace period, until the child has exited. */
export function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  return exited.then(() => clearTimeout(timer));
}

export async function supervise(request: SuperviseRequest): Promise<SuperviseResult> {
  const started = performance.now();
  const graceMs = request.graceMs ?? KILL_GRACE_MS;
  const { file, args, env } = cgroupWrappedArgv(request.argv, request.cgroup);
  const child = spawn(file, args, {
    env: { ...process.env, ...request.env, ...env },
    // A shell keeps the terminal; only nspawn's stderr is filtered for its harmless noise line.
    stdio: request.inheritStdio ? ['inherit', 'inherit', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches nsmatrix, which stops containers in order.
    detached: !request.inheritStdio,
  });
  if (request.recordIn) recordNspawnPid(request.recordIn, child.pid);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  // Output pipes close when every holder is gone: after nspawn, its payload too.
  const outputClosed = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  if (request.inheritStdio) {
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(withoutNspawnNoise(chunk)));
  }
  for (const stream of request.inheritStdio ? [] : (['stdout', 'stderr'] as const)) {
    const source = child[stream];
    source?.on('data', (chunk: Buffer) => {
      const shown = request.log ? request.log.write(stream, chunk) : chunk;
      if (shown.length > 0) request.onOutput?.(stream, shown);
      // Backpressure: a step printing faster than the disk writes must wait for the log, not fill our memory.
      if (request.log?.congested()) {
        source.pause();
        void request.log.drained().then(() => source.resume());
      }
    });
  }

  let timedOut = false;
  let aborted = false;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stopChild(child, exited, graceMs));
  const registration = resources.add(`${request.label} (pid ${child.pid ?? '?'})`, stop);
  const timer =
    request.timeoutMs !== undefined && request.timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          void stop();
        }, request.timeoutMs)
      : undefined;
  const onAbort = () => {
    aborted = true;
    void stop();
  };
  if (request.signal?.aborted) onAbort();
  else request.signal?.addEventListener('abort', onAbort, { once: true });

  const { code, signal } = await exited;
  const durationMs = Math.round(performance.now() - started);
  if (timer) clearTimeout(timer);
  request.signal?.removeEventListener('abort', onAbort);
  await registration.release();
  // A killed nspawn leaves the container's processes behind, holding the output pipes open: the cgroup holds
  // all of them. Without a cgroup (systemd as PID 1 owns the scope) stop waiting for the pipes after a while.
  await request.cgroup?.destroy();
  const drained = await Promise.race([outputClosed.then(() => true), sleep(OUTPUT_DRAIN_MS).then(() => false)]);
  if (!drained) {
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
  return { exitCode: code, signal, timedOut, aborted, durationMs };
}

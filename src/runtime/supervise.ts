/**
 * Runs one systemd-nspawn (or nsenter) process under nsmatrix's control (lib/process.ts): in its own cgroup when
 * the host needs it, output streamed to a step log, stopped by the runner's own clock (SIGTERM, then SIGKILL
 * after a grace period) or by an AbortSignal, and registered in `resources` while it runs.
 */
import { KILL_GRACE_MS, start, type OutputStream, type ProcessResult, type RunningProcess } from '../lib/process.js';
import type { ContainerCgroup } from './cgroup.js';
import { recordNspawnPid } from './orphans.js';
import { withoutNspawnNoise, type StepLog } from './log.js';

export { KILL_GRACE_MS } from '../lib/process.js';
const OUTPUT_DRAIN_MS = 2_000;

export interface SuperviseRequest {
  argv: string[];
  env: Record<string, string>;
  /** Joined before the command is exec'd, so nothing it starts escapes the cgroup. */
  cgroup?: ContainerCgroup | null;
  log?: StepLog;
  onOutput?: (stream: OutputStream, chunk: Buffer) => void;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Attach the terminal (interactive shell). */
  inheritStdio?: boolean;
  /** The container's scratch directory: the nspawn pid is recorded there for `gc` (orphans.ts). */
  recordIn?: string;
  label: string;
  graceMs?: number;
  /**
   * Started ahead: systemd-nspawn starts now and sets the container up, and the step wrapper inside waits for
   * `open()`'s gate word on stdin (lib/process.ts, wrapper.ts).
   */
  gated?: boolean;
}

export type SuperviseResult = ProcessResult;

/** The running process: `result` when it is over, `open()` when it was started gated. */
export function supervise(request: SuperviseRequest): RunningProcess {
  const { log } = request;
  // A shell keeps the terminal; only nspawn's stderr is filtered for its harmless noise line.
  const onOutput = request.inheritStdio
    ? (_stream: OutputStream, chunk: Buffer) => void process.stderr.write(withoutNspawnNoise(chunk))
    : (stream: OutputStream, chunk: Buffer) => {
        const shown = log ? log.write(stream, chunk) : chunk;
        if (shown.length > 0) request.onOutput?.(stream, shown);
        // Backpressure: a step printing faster than the disk writes must wait for the log, not fill our memory.
        return log?.congested() ? log.drained() : undefined;
      };
  const child = start(request.argv, {
    env: request.env,
    cgroupProcs: request.cgroup?.procsFiles,
    label: request.label,
    stdin: request.inheritStdio ? 'inherit' : 'ignore',
    stdout: request.inheritStdio ? 'inherit' : 'pipe',
    onOutput,
    // Its own process group: a terminal's Ctrl-C reaches nsmatrix, which stops containers in order.
    detached: !request.inheritStdio,
    ...(request.timeoutMs !== undefined ? { timeoutMs: request.timeoutMs } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
    graceMs: request.graceMs ?? KILL_GRACE_MS,
    // A killed nspawn leaves the container's processes behind, holding the output pipes open: the cgroup holds
    // all of them. Without a cgroup (systemd as PID 1 owns the scope) stop waiting for the pipes after a while.
    afterExit: () => request.cgroup?.destroy(),
    drainMs: OUTPUT_DRAIN_MS,
    ...(request.gated ? { gated: true } : {}),
  });
  // The shell that joins the cgroup becomes nspawn and keeps its pid: recorded now, a gc finds it either way.
  if (request.recordIn) recordNspawnPid(request.recordIn, child.pid);
  return child;
}

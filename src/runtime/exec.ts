/**
 * Exec mode: every step is its own systemd-nspawn invocation over the cell's copy-on-write root. The step script
 * and a wrapper live in the control directory; the wrapper's status file is the step's exact fate.
 */
import { chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resources } from '../lib/resources.js';
import { buildNspawnArgs, CONTROL_MOUNT, nspawnEnvironment, type NspawnPlan } from './args.js';
import { createContainerCgroup } from './cgroup.js';
import { StepLog } from './log.js';
import { supervise, type SuperviseResult } from './supervise.js';
import type { ExecRequest, ExecResult } from './types.js';
import { parseStatus, STATUS_ROOM, type StepStatus } from './wrapper.js';

export interface StepFiles {
  /** Host paths. */
  script: string;
  status: string;
  /** The same files as the container sees them. */
  inContainer: { script: string; status: string };
}

export function stepFiles(controlDir: string, index: number): StepFiles {
  const base = `step-${String(index + 1).padStart(2, '0')}`;
  return {
    script: join(controlDir, `${base}.sh`),
    status: join(controlDir, `${base}.status`),
    inContainer: { script: `${CONTROL_MOUNT}/${base}.sh`, status: `${CONTROL_MOUNT}/${base}.status` },
  };
}

/** The argv that runs a step script through the wrapper inside the container. */
export function wrapperCommand(usePerl: boolean, files: StepFiles): string[] {
  return usePerl
    ? ['/usr/bin/perl', `${CONTROL_MOUNT}/wrap.pl`, files.inContainer.script, files.inContainer.status]
    : ['/bin/sh', `${CONTROL_MOUNT}/wrap.sh`, files.inContainer.script, files.inContainer.status];
}

export async function prepareStep(controlDir: string, request: ExecRequest): Promise<StepFiles> {
  const files = stepFiles(controlDir, request.index);
  await rm(files.status, { force: true });
  // The status file gets its room now: a step that fills the disk must still be able to record its fate (the
  // wrapper overwrites this padding in place; parseStatus ignores trailing blanks). Owned like the control dir,
  // so that a private-users container can write it.
  await writeFile(files.status, `${' '.repeat(STATUS_ROOM)}\n`, { mode: 0o644 });
  const owner = await stat(controlDir);
  await chown(files.status, owner.uid, owner.gid);
  await writeFile(files.script, request.script.endsWith('\n') ? request.script : `${request.script}\n`, { mode: 0o755 });
  return files;
}

export async function readStepStatus(path: string): Promise<StepStatus | null> {
  try {
    return parseStatus(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

/** Turns a process outcome and the status file into the step's result. */
export function stepResult(run: SuperviseResult, status: StepStatus | null, tail: string[], what: string): ExecResult {
  const base = { timedOut: run.timedOut, durationMs: run.durationMs, tail, aborted: run.aborted };
  if (run.timedOut || run.aborted) return { ...base, exitCode: null, signal: status?.signal ?? null };
  if (status) return { ...base, exitCode: status.exitCode, signal: status.signal };
  const how = run.signal ? `was killed by ${run.signal}` : `exited with status ${run.exitCode}`;
  const detail = tail.slice(-5).join(' | ');
  return { ...base, exitCode: null, signal: null, infrastructureError: `${what} ${how} before the step ran${detail ? `: ${detail}` : ''}` };
}

export interface ExecContext {
  /** Everything but the command; `command` is filled per step. */
  plan: Omit<NspawnPlan, 'command'>;
  controlDir: string;
  usePerl: boolean;
  noSeccomp: boolean;
}

export async function execStep(ctx: ExecContext, request: ExecRequest): Promise<ExecResult> {
  const files = await prepareStep(ctx.controlDir, request);
  const argv = [
    ctx.plan.host.nspawnPath ?? 'systemd-nspawn',
    ...buildNspawnArgs({
      ...ctx.plan,
      interactive: request.interactive ?? ctx.plan.interactive,
      env: { ...ctx.plan.env, ...request.env },
      command: wrapperCommand(ctx.usePerl, files),
    }),
  ];
  const cgroup = await createContainerCgroup(ctx.plan.host, ctx.plan.machine);
  const cgroupEntry = cgroup ? resources.add(`cgroup ${ctx.plan.machine}`, () => cgroup.destroy()) : undefined;
  const log = await StepLog.open(request.logPath);
  let logClosed = false;
  try {
    const run = await supervise({
      argv,
      env: nspawnEnvironment(ctx.plan.host, { mode: 'exec', noSeccomp: ctx.noSeccomp }),
      cgroup,
      ...(request.inheritStdio ? { inheritStdio: true } : { log, onOutput: request.onOutput }),
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      label: `systemd-nspawn ${ctx.plan.machine} step ${request.index + 1}`,
    });
    if (run.timedOut) log.note(`timed out after ${request.timeoutMs} ms: container stopped`);
    if (run.aborted) log.note('aborted: container stopped');
    const status = await readStepStatus(files.status);
    await log.close();
    logClosed = true;
    return stepResult(run, status, log.tail(), 'systemd-nspawn');
  } finally {
    if (!logClosed) await log.close();
    await cgroupEntry?.release();
  }
}

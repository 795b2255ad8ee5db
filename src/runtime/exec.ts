/**
 * Exec mode: every step is its own systemd-nspawn invocation over the cell's copy-on-write root. The step script
 * and a wrapper live in the control directory; the wrapper's status file is the step's exact fate.
 */
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { resources } from '../lib/resources.js';
import { nspawnEnvironment } from '../lib/nspawn.js';
import { buildNspawnArgs, CONTROL_MOUNT, type NspawnPlan } from './args.js';
import { createContainerCgroup } from './cgroup.js';
import { controlToken, publishFile, readContainerFile, type ControlDir } from './control.js';
import { StepLog } from './log.js';
import { supervise, type SuperviseResult } from './supervise.js';
import type { ExecRequest, ExecResult } from './types.js';
import { parseStatus, PERL_WRAPPER, SH_WRAPPER, STATUS_ROOM, type StepStatus } from './wrapper.js';

/** A step's files in the control directory, named `<token>.<ext>` with a token no earlier step could guess. */
export interface StepFiles {
  token: string;
  /** Host paths. */
  status: string;
  /** The same files as the container sees them. */
  inContainer: { script: string; wrapper: string; status: string };
}

export function stepToken(index: number): string {
  return controlToken(`step-${String(index + 1).padStart(2, '0')}`);
}

export function stepFiles(control: ControlDir, token: string): StepFiles {
  const inContainer = (ext: string) => `${CONTROL_MOUNT}/${token}.${ext}`;
  return {
    token,
    status: join(control.shared, `${token}.status`),
    inContainer: { script: inContainer('sh'), wrapper: inContainer('wrap'), status: inContainer('status') },
  };
}

/** The argv that runs a step script through the wrapper inside the container; `gated`: after the gate word. */
export function wrapperCommand(usePerl: boolean, files: StepFiles, gated = false): string[] {
  return [usePerl ? '/usr/bin/perl' : '/bin/sh', files.inContainer.wrapper, files.inContainer.script, files.inContainer.status, ...(gated ? ['gated'] : [])];
}

export function scriptText(script: string): string {
  return script.endsWith('\n') ? script : `${script}\n`;
}

/** Publishes the script and the wrapper (fresh for every step: an earlier step may have replaced the last one). */
export async function publishStepCode(control: ControlDir, token: string, script: string, usePerl: boolean): Promise<void> {
  await publishFile(control, `${token}.sh`, scriptText(script), 0o755);
  await publishFile(control, `${token}.wrap`, usePerl ? PERL_WRAPPER : SH_WRAPPER, 0o644);
}

export async function prepareStep(control: ControlDir, request: ExecRequest, usePerl: boolean): Promise<StepFiles> {
  const files = stepFiles(control, stepToken(request.index));
  // The status file gets its room now: a step that fills the disk must still be able to record its fate (the
  // wrapper overwrites this padding in place; parseStatus ignores trailing blanks).
  await publishFile(control, `${files.token}.status`, `${' '.repeat(STATUS_ROOM)}\n`, 0o644);
  await publishStepCode(control, files.token, request.script, usePerl);
  return files;
}

/** A status file is container-written: read without following links, and only its first bytes. */
export async function readStepStatus(path: string): Promise<StepStatus | null> {
  const text = await readContainerFile(path, 4096);
  return text === null ? null : parseStatus(text);
}

/** Turns a process outcome and the status file into the step's result. */
export function stepResult(run: SuperviseResult, status: StepStatus | null, tail: string[], what: string): ExecResult {
  const base = { timedOut: run.timedOut, durationMs: run.durationMs, tail, aborted: run.isCanceled };
  if (run.timedOut || run.isCanceled) return { ...base, exitCode: null, signal: status?.signal ?? null };
  if (status) return { ...base, exitCode: status.exitCode, signal: status.signal };
  const how = run.signal ? `was killed by ${run.signal}` : `exited with status ${run.exitCode}`;
  const detail = tail.slice(-5).join(' | ');
  return { ...base, exitCode: null, signal: null, infrastructureError: `${what} ${how} before the step ran${detail ? `: ${detail}` : ''}` };
}

export interface ExecContext {
  /** Everything but the command; `command` is filled per step. */
  plan: Omit<NspawnPlan, 'command'>;
  control: ControlDir;
  usePerl: boolean;
  noSeccomp: boolean;
}

/** A step made ready to run: its files, cgroup and log in place, its container set up and waiting. */
export interface ArmedStep {
  /** Lets the step start and waits for its end. Once. */
  run(): Promise<ExecResult>;
  /** A step that will not run: stops the waiting container, removes its log. Idempotent; a no-op once run. */
  discard(): Promise<void>;
}

/**
 * Everything of a step that comes before the step itself. `gated`: systemd-nspawn starts now and sets the
 * container up (some 60 ms of a trivial step's 70 on a 2-core host, and on cgroup v1 the RCU grace period of moving
 * into its cgroup), while the step wrapper inside waits for the gate word on its stdin; `run()` writes it. The
 * wrapper runs nothing if the pipe closes without it (a discard, a stop, nsmatrix gone): the step never starts.
 */
export async function armStep(ctx: ExecContext, request: ExecRequest, gated: boolean): Promise<ArmedStep> {
  const files = await prepareStep(ctx.control, request, ctx.usePerl);
  const argv = [
    ctx.plan.host.nspawnPath ?? 'systemd-nspawn',
    ...buildNspawnArgs({
      ...ctx.plan,
      interactive: request.interactive ?? ctx.plan.interactive,
      env: { ...ctx.plan.env, ...request.env },
      command: wrapperCommand(ctx.usePerl, files, gated),
    }),
  ];
  const cgroup = await createContainerCgroup(ctx.plan.host, ctx.plan.machine);
  const cgroupEntry = cgroup ? resources.add(`cgroup ${ctx.plan.machine}`, () => cgroup.destroy()) : undefined;
  let log: StepLog;
  try {
    log = await StepLog.open(request.logPath);
  } catch (error) {
    await cgroupEntry?.release();
    throw error;
  }
  const child = supervise({
    argv,
    env: nspawnEnvironment(ctx.plan.host, { mode: 'exec', noSeccomp: ctx.noSeccomp }),
    cgroup,
    ...(request.inheritStdio ? { inheritStdio: true } : { log, onOutput: request.onOutput }),
    timeoutMs: request.timeoutMs,
    signal: request.signal,
    label: `systemd-nspawn ${ctx.plan.machine} step ${request.index + 1}`,
    recordIn: dirname(ctx.control.shared),
    gated,
  });
  const finish = async (ran: boolean): Promise<ExecResult> => {
    let logClosed = false;
    try {
      const run = await child.result;
      if (run.timedOut) log.note(`timed out after ${request.timeoutMs} ms: container stopped`);
      if (run.isCanceled) log.note('aborted: container stopped');
      const status = ran ? await readStepStatus(files.status) : null;
      await log.close();
      logClosed = true;
      return stepResult(run, status, log.tail(), 'systemd-nspawn');
    } finally {
      if (!logClosed) await log.close();
      await cgroupEntry?.release();
    }
  };
  let state: 'armed' | 'ran' | 'discarded' = 'armed';
  let discarding: Promise<void> | undefined;
  return {
    run: () => {
      if (state !== 'armed') throw new Error(`step ${request.index + 1} of ${ctx.plan.machine} was ${state} already`);
      state = 'ran';
      child.open();
      return finish(true);
    },
    discard: () => {
      if (state === 'ran') return Promise.resolve();
      state = 'discarded';
      return (discarding ??= (async () => {
        await child.stop();
        await finish(false);
        await rm(request.logPath, { force: true });
      })());
    },
  };
}

export async function execStep(ctx: ExecContext, request: ExecRequest): Promise<ExecResult> {
  return (await armStep(ctx, request, false)).run();
}

/**
 * Boot mode: the container boots systemd (`--boot`) and each step runs as a transient unit inside it, started
 * with `nsenter` into the container's init and `systemd-run --wait --pipe` (which talks to the container's
 * systemd over its private socket, so no D-Bus daemon is needed). The same wrapper as exec mode writes the step's
 * exact status to the control directory. The journal lives on the host (bound onto /var/log/journal) and is read
 * with the host's journalctl after shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { InfraError } from '../errors.js';
import { resources, type Releasable } from '../lib/resources.js';
import type { JournalSummary } from '../run/result.js';
import { buildNspawnArgs, SOURCE_MOUNT, nspawnEnvironment, type NspawnPlan } from './args.js';
import type { ContainerCgroup } from './cgroup.js';
import { prepareStep, readStepStatus, stepResult, wrapperCommand } from './exec.js';
import { StepLog } from './log.js';
import { cgroupWrappedArgv, KILL_GRACE_MS, stopChild, supervise } from './supervise.js';
import type { ExecRequest, ExecResult } from './types.js';

export const BOOT_TIMEOUT_MS = 120_000;
export const SHUTDOWN_GRACE_MS = 30_000;
/** journald's MESSAGE_ID for "Process ... dumped core" (systemd-coredump). */
const COREDUMP_MESSAGE_ID = 'fc2e22bc6ee647b6b90729ab34a250b1';
/** Errors caused by nsmatrix's own bind mounts at shutdown (they are held busy from the host), not by the image. */
export const OWN_MOUNT_NOISE = /Failed unmounting (var-log-journal\.mount|\/var\/log\/journal|run-nsmatrix\.mount|\/run\/nsmatrix|src\.mount|\/src|artifacts\.mount|\/artifacts)\.?$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The container's init: a child of nspawn whose pid in its own namespace is 1. */
export async function findContainerLeader(nspawnPid: number): Promise<number | null> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const ppid = /^PPid:\s+(\d+)$/m.exec(status)?.[1];
      const nspid = /^NSpid:\s+([\d\s]+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (Number(ppid) === nspawnPid && nspid && nspid.length >= 2 && nspid[nspid.length - 1] === '1') return Number(entry);
    } catch {
      // exited while we looked
    }
  }
  return null;
}

function run(argv: string[], options: { input?: NodeJS.ReadableStream; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    if (options.input && child.stdin) options.input.pipe(child.stdin);
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    const registration = resources.add(`${argv.slice(0, 6).join(' ')} (pid ${child.pid ?? '?'})`, () => void child.kill('SIGKILL'));
    const done = (result: { code: number | null; stdout: string; stderr: string }) => {
      if (timer) clearTimeout(timer);
      void registration.release().then(() => resolve(result));
    };
    child.once('error', (error) => done({ code: null, stdout, stderr: stderr + error.message }));
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

export interface BootedContainer {
  readonly leader: number;
  /** Set once the container has stopped (closed, timed out, or died on its own). */
  readonly stopped: boolean;
  exec(request: ExecRequest): Promise<ExecResult>;
  /** Clean shutdown (SIGTERM to nspawn), SIGKILL after a grace period (default 30 s). Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface BootContext {
  plan: Omit<NspawnPlan, 'command'>;
  controlDir: string;
  usePerl: boolean;
  noSeccomp: boolean;
  cgroup: ContainerCgroup | null;
  /** Console output of the booting container. */
  consoleLogPath: string;
  bootTimeoutMs?: number;
}

export async function bootContainer(ctx: BootContext): Promise<BootedContainer> {
  const argv = [ctx.plan.host.nspawnPath ?? 'systemd-nspawn', ...buildNspawnArgs({ ...ctx.plan, boot: true, command: [] })];
  const { file, args, env } = cgroupWrappedArgv(argv, ctx.cgroup);
  const consoleLog = await StepLog.open(ctx.consoleLogPath);
  const child: ChildProcess = spawn(file, args, {
    env: { ...process.env, ...nspawnEnvironment(ctx.plan.host, { mode: 'boot', noSeccomp: ctx.noSeccomp }), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.on('data', (c: Buffer) => consoleLog.write('stdout', c));
  child.stderr!.on('data', (c: Buffer) => consoleLog.write('stderr', c));
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  let stopped = false;
  void exited.then(async () => {
    stopped = true;
    await consoleLog.close();
  });
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = SHUTDOWN_GRACE_MS) =>
    (stopping ??= (async () => {
      await stopChild(child, exited, graceMs);
      await exited;
    })());
  const registration: Releasable = resources.add(`booted container ${ctx.plan.machine}`, () => stop());

  const fail = async (why: string): Promise<never> => {
    await stop(KILL_GRACE_MS);
    await registration.release();
    throw new InfraError(`container ${ctx.plan.machine} did not boot: ${why}`, { logPath: ctx.consoleLogPath, tail: consoleLog.tail() });
  };

  const deadline = Date.now() + (ctx.bootTimeoutMs ?? BOOT_TIMEOUT_MS);
  let leader: number | null = null;
  while (leader === null) {
    if (stopped) return fail('systemd-nspawn exited');
    if (Date.now() > deadline) return fail('no init process appeared');
    leader = child.pid ? await findContainerLeader(child.pid) : null;
    if (leader === null) await sleep(20);
  }
  // Until init has exec'd systemd and it listens on its private socket, systemctl answers "offline" or fails.
  // "degraded" (exit 1) still runs units; "stopping" and the like do not.
  let state = '';
  while (state !== 'running' && state !== 'degraded') {
    if (stopped) return fail('systemd-nspawn exited during boot');
    if (Date.now() > deadline) return fail(`system state "${state}" after ${ctx.bootTimeoutMs ?? BOOT_TIMEOUT_MS} ms`);
    const ready = await run(['nsenter', '-t', String(leader), '-a', '--', 'systemctl', 'is-system-running', '--wait'], {
      timeoutMs: Math.max(1000, deadline - Date.now()),
    });
    state = ready.stdout.trim();
    if (state === 'offline' || state === '') await sleep(50);
    else if (state !== 'running' && state !== 'degraded') return fail(`system state "${state}"`);
  }

  let counter = 0;
  const container: BootedContainer = {
    leader,
    get stopped() {
      return stopped;
    },
    stop: async (graceMs?: number) => {
      await stop(graceMs);
      await registration.release();
    },
    exec: async (request) => {
      if (stopped) {
        return { exitCode: null, signal: null, timedOut: false, durationMs: 0, tail: [], infrastructureError: `container ${ctx.plan.machine} is no longer running` };
      }
      const files = await prepareStep(ctx.controlDir, request);
      const unit = `nsmatrix-step-${String(request.index + 1).padStart(2, '0')}-${++counter}`;
      const envArgs = Object.entries({ ...ctx.plan.env, ...request.env }).map(([k, v]) => `--setenv=${k}=${v}`);
      const log = await StepLog.open(request.logPath);
      const result = await supervise({
        argv: [
          'nsenter', '-t', String(leader), '-a', '--',
          'systemd-run', '--quiet', '--wait', '--pipe', '--collect', '--service-type=exec', `--unit=${unit}`,
          `--working-directory=${SOURCE_MOUNT}`, ...envArgs, '--', ...wrapperCommand(ctx.usePerl, files),
        ],
        env: {},
        log,
        onOutput: request.onOutput,
        timeoutMs: request.timeoutMs,
        signal: request.signal,
        label: `systemd-run ${unit} in ${ctx.plan.machine}`,
      });
      if (result.timedOut || result.aborted) {
        // The unit keeps running without its client: stopping the container is what stops the step.
        log.note(`${result.timedOut ? `timed out after ${request.timeoutMs} ms` : 'aborted'}: container stopped`);
        await container.stop(KILL_GRACE_MS);
      }
      const status = await readStepStatus(files.status);
      await log.close();
      await copyLogToJournal(leader, unit, request.logPath, stopped);
      return stepResult(result, status, log.tail(), 'systemd-run');
    },
  };
  return container;
}

/** The step's output also goes into the container's journal, tagged with the unit name, next to its lifecycle. */
async function copyLogToJournal(leader: number, unit: string, logPath: string, stopped: boolean): Promise<void> {
  if (stopped) return;
  const lines = createInterface({ input: createReadStream(logPath) });
  const input = new PassThrough();
  const pump = (async () => {
    for await (const line of lines) input.write(`${line.replace(/^\S+ (out|err)\| /, '')}\n`);
    input.end();
  })();
  await run(['nsenter', '-t', String(leader), '-a', '--', 'systemd-cat', `--identifier=${unit}`], { input, timeoutMs: 30_000 });
  await pump;
}

async function journalctl(dir: string, extra: string[]): Promise<string> {
  const out = await run(['journalctl', `--directory=${dir}`, '--no-pager', '-q', ...extra], { timeoutMs: 60_000 });
  return out.stdout;
}

/** Exports the journal to `journal.txt` and summarises errors and coredumps. */
export async function summariseJournal(journalDir: string, outputRoot: string): Promise<JournalSummary> {
  const textPath = join(dirname(journalDir), 'journal.txt');
  await writeFile(textPath, await journalctl(journalDir, ['-o', 'short-iso']));
  const errors = (await journalctl(journalDir, ['-o', 'short-iso', '-p', 'err'])).split('\n').filter((l) => l && !l.startsWith('-- ') && !OWN_MOUNT_NOISE.test(l));
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

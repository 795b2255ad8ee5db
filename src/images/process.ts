/**
 * Every external process of an image build goes through `runLogged`: argv logged, output streamed to the build
 * log, registered in `resources` while alive, killed on abort. Build processes are wrapped so that they die with
 * us even after SIGKILL (parent-death signal) and so that their mounts live in a private mount namespace and all
 * their descendants in a private PID namespace (both vanish when the wrapper dies).
 */
import { spawn } from 'node:child_process';
import { resources } from '../lib/resources.js';
import type { BuildLog } from './build-log.js';

export interface RunOutcome {
  exitCode: number | null;
  signal: string | null;
  aborted: boolean;
}

export function guardedArgv(argv: string[]): string[] {
  const unshare = ['unshare', '--pid', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc', '--'];
  return ['setpriv', '--pdeathsig', 'KILL', '--', ...unshare, ...argv];
}

const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

export function formatArgv(argv: string[]): string {
  return argv.map(quote).join(' ');
}

export function runLogged(
  argv: string[],
  log: BuildLog,
  options: { env?: Record<string, string>; signal?: AbortSignal; input?: string } = {},
): Promise<RunOutcome> {
  const full = guardedArgv(argv);
  log.info(`$ ${formatArgv(argv)}`);
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      resolve({ exitCode: null, signal: null, aborted: true });
      return;
    }
    const child = spawn(full[0]!, full.slice(1), {
      env: { ...process.env, ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let aborted = false;
    // unshare ignores SIGTERM while it waits for its child, and the private PID and mount namespaces make
    // SIGKILL clean: every descendant dies with the namespace and every mount vanishes with it.
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const holder = resources.add(`image build process ${argv[0]} (pid ${child.pid})`, kill);
    const onAbort = () => {
      aborted = true;
      kill();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (chunk: Buffer) => log.output(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => log.output(chunk.toString()));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      void holder.release();
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      // The process is gone: forget it without killing anything.
      void holder.release().catch(() => undefined);
      resolve({ exitCode, signal, aborted });
    });
  });
}

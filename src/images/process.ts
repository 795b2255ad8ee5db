/**
 * Every external process of an image build goes through `runLogged`: argv logged, output streamed to the build
 * log, registered in `resources` while alive, killed on abort (all by lib/process.ts). Build processes are
 * wrapped so that they die with us even after SIGKILL (parent-death signal) and so that their mounts live in a
 * private mount namespace and all their descendants in a private PID namespace (both vanish when the wrapper dies).
 */
import { formatArgv, run, type ProcessResult } from '../lib/process.js';
import type { BuildLog } from './build-log.js';

export { formatArgv } from '../lib/process.js';

export type RunOutcome = ProcessResult;

export function guardedArgv(argv: string[]): string[] {
  const unshare = ['unshare', '--pid', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc', '--'];
  return ['setpriv', '--pdeathsig', 'KILL', '--', ...unshare, ...argv];
}

/** Runs a build step to its end; rejects only when it cannot be started. */
export async function runLogged(
  argv: string[],
  log: BuildLog,
  options: { env?: Record<string, string>; signal?: AbortSignal; input?: string } = {},
): Promise<RunOutcome> {
  log.info(`$ ${formatArgv(argv)}`);
  const result = await run(guardedArgv(argv), {
    ...(options.env ? { env: options.env } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.input !== undefined ? { input: options.input } : {}),
    label: `image build process ${argv[0]}`,
    // unshare ignores SIGTERM while it waits for its child, and the private PID and mount namespaces make
    // SIGKILL clean: every descendant dies with the namespace and every mount vanishes with it.
    killSignal: 'SIGKILL',
    onOutput: (_stream, chunk) => log.output(chunk.toString()),
  });
  if (result.error) throw result.error;
  return result;
}

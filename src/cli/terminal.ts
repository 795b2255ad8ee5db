/**
 * Chooses the terminal view: the live view on a TTY, plain timestamped lines otherwise (CI, pipes, --plain).
 * Both are reporters (reporters/types.ts): they listen to every event and finish with the result; they write no
 * file, only the terminal.
 */
import type { Reporter } from '../../reporters/types.js';
import type { RunEvents } from '../run/events.js';
import type { RunResult } from '../run/result.js';
import { colorsEnabled, palette } from '../ui/colors.js';
import { createPlainView } from '../ui/plain.js';
import { createLiveView } from '../ui/live.js';

export interface Terminal extends Reporter {
  /** Shows a line (a signal notice) without breaking what the view draws. */
  note(text: string): void;
  finish(result: RunResult): Promise<void>;
}

export interface TerminalOptions {
  plain: boolean;
  stream?: NodeJS.WriteStream;
  /** Step output on the terminal as it comes, each line prefixed by its cell (plain view only). */
  streamOutput?: boolean;
  env?: NodeJS.ProcessEnv;
}

export function createTerminal(options: TerminalOptions): Terminal {
  const stream = options.stream ?? process.stdout;
  const env = options.env ?? process.env;
  const colors = palette(colorsEnabled(stream, env));
  const write = (text: string) => void stream.write(text);
  if (options.plain || !stream.isTTY || env.CI === 'true') {
    const onEvent = createPlainView({ write, colors, verbose: env.NSMATRIX_VERBOSE === '1', stream: options.streamOutput ?? false, ci: ciFlavour(env) });
    return { name: 'plain', onEvent, note: (text) => void process.stderr.write(text), finish: async () => undefined, onRunEnd: () => [] };
  }
  const live = createLiveView({ write, colors, size: () => ({ columns: stream.columns, rows: stream.rows }) });
  return {
    name: 'live',
    onEvent: live.listener,
    note: (text) => live.note(text),
    finish: (result) => live.finish(result),
    onRunEnd: () => [],
  };
}

/** Which CI system's native log markup the plain view speaks: GitHub's workflow commands, GitLab's sections. */
export function ciFlavour(env: NodeJS.ProcessEnv): 'github' | 'gitlab' | undefined {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (env.GITLAB_CI === 'true') return 'gitlab';
  return undefined;
}

export function attachTerminal(events: RunEvents, options: TerminalOptions): Terminal {
  const terminal = createTerminal(options);
  events.on((event) => terminal.onEvent!(event));
  return terminal;
}

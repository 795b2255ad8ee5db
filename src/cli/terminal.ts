/** Chooses the terminal view: the listr2 live view on a TTY, plain timestamped lines otherwise or with --plain. */
import type { RunEvents } from '../run/events.js';
import type { RunResult } from '../run/result.js';
import { colorsEnabled, palette } from '../ui/colors.js';
import { createPlainView } from '../ui/plain.js';
import { createLiveView } from '../ui/live.js';

export interface Terminal {
  finish(result: RunResult): Promise<void>;
}

export function attachTerminal(events: RunEvents, options: { plain: boolean; stream?: NodeJS.WriteStream }): Terminal {
  const stream = options.stream ?? process.stdout;
  const colors = palette(colorsEnabled(stream));
  const write = (text: string) => void stream.write(text);
  if (options.plain || !stream.isTTY || process.env.CI === 'true') {
    events.on(createPlainView({ write, colors, verbose: process.env.NSMATRIX_VERBOSE === '1' }));
    return { finish: async () => undefined };
  }
  const live = createLiveView({ write, colors });
  events.on(live.listener);
  return { finish: (result) => live.finish(result) };
}

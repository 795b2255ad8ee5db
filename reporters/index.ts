/** The file reporters by name, and the `--reporter NAME[=PATH]` flag. */
import { UsageError } from '../src/errors.js';
import { createHtmlReporter } from './html.js';
import { createJsonReporter } from './json.js';
import { createJunitReporter } from './junit.js';
import { createMarkdownReporter } from './markdown.js';
import type { Reporter, ReporterFactory } from './types.js';

const FACTORIES = {
  junit: () => createJunitReporter(),
  json: createJsonReporter,
  markdown: createMarkdownReporter,
  html: createHtmlReporter,
} satisfies Record<string, ReporterFactory>;

export type ReporterName = keyof typeof FACTORIES;
export const reporterNames = Object.keys(FACTORIES) as ReporterName[];

function isReporterName(name: string): name is ReporterName {
  return Object.hasOwn(FACTORIES, name);
}

export function createReporter(name: string): Reporter {
  if (!isReporterName(name)) {
    throw new UsageError(`--reporter: unknown reporter "${name}" (valid: ${reporterNames.join(', ')})`);
  }
  return FACTORIES[name]();
}

/** `junit` or `junit=path/x.xml`: the name (checked) and the path as written (the caller resolves it). */
export function parseReporterFlag(flag: string): { name: ReporterName; target?: string } {
  const eq = flag.indexOf('=');
  const name = (eq === -1 ? flag : flag.slice(0, eq)).trim();
  if (!isReporterName(name)) {
    throw new UsageError(`--reporter ${flag}: unknown reporter "${name}" (valid: ${reporterNames.join(', ')})`);
  }
  if (eq === -1) return { name };
  const target = flag.slice(eq + 1);
  if (target.trim() === '') throw new UsageError(`--reporter ${flag}: empty path after "=" (use ${name}=PATH or just ${name})`);
  return { name, target };
}

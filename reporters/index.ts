/** The file reporters by name, and the `--reporter NAME[=PATH]` flag. */
import { UsageError } from '../src/errors.js';
import { createHtmlReporter } from './html.js';
import { createJsonReporter } from './json.js';
import { createJunitReporter } from './junit.js';
import { createMarkdownReporter } from './markdown.js';
import { DEFAULT_REPORTERS, REPORTER_CATALOG, type Reporter, type ReporterFactory, type ReporterName } from './types.js';

/** One factory per catalogued name (reporters/types.ts): a name without a factory does not compile. */
const FACTORIES: Record<ReporterName, ReporterFactory> = {
  junit: () => createJunitReporter(),
  json: createJsonReporter,
  markdown: createMarkdownReporter,
  html: createHtmlReporter,
};

export type { ReporterName };
export { DEFAULT_REPORTERS, REPORTER_CATALOG };
export const reporterNames: ReporterName[] = REPORTER_CATALOG.map((r) => r.name);

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

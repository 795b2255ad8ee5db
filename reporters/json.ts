/**
 * The `json` reporter: the whole result model, as is (it carries its `version`), in `results.json`. This is what
 * `nsmatrix merge` reads back, through `readRunResult` (src/run/result.ts), which checks it against the model's schema.
 */
import { join } from 'node:path';
import { serializeRunResult, type RunResult } from '../src/run/result.js';
import type { Reporter, ReporterContext } from './types.js';
import { writeFileAtomic } from './write-atomic.js';

export const JSON_DEFAULT_FILE = 'results.json';

export function createJsonReporter(): Reporter {
  return {
    name: 'json',
    async onRunEnd(result: RunResult, context: ReporterContext): Promise<string[]> {
      const target = context.target ?? join(context.outputDir, JSON_DEFAULT_FILE);
      await writeFileAtomic(target, serializeRunResult(result));
      return [target];
    },
  };
}

/**
 * `npm run bench`: every benchmark in one run, so nsmatrix and the raw tools it is compared against are measured on
 * the same machine at the same time. Medians throughout. NSMATRIX_BENCH=startup,scheduler,run,runtime,images,results,arch,caches,shell
 * picks a subset; images are built into a fresh state directory (the cold path is part of what is measured), or
 * into NSMATRIX_BENCH_STATE_DIR when set (kept: repeated measurements of warm paths skip the base build).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { benchStartup } from './startup.js';
import { benchScheduler } from './scheduler.js';
import { benchCliRun } from './cli-run.js';
import { benchRuntime } from './runtime.js';
import { benchImages } from './images.js';
import { benchResults } from './results.js';
import { benchArch } from './arch.js';
import { benchCaches } from './caches.js';
import { benchShell } from './shell.js';

const all = ['startup', 'scheduler', 'run', 'runtime', 'images', 'results', 'caches', 'arch', 'shell'];
const chosen = (process.env.NSMATRIX_BENCH ?? all.join(',')).split(',').map((s) => s.trim());
const unknown = chosen.filter((c) => !all.includes(c));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown NSMATRIX_BENCH entries ${unknown.join(', ')} (valid: ${all.join(', ')})\n`);
  process.exit(2);
}
const keptStateDir = process.env.NSMATRIX_BENCH_STATE_DIR;
const stateDir = keptStateDir ?? mkdtempSync('/var/tmp/nsmatrix-bench-state-');
const results: Record<string, Record<string, number>> = {};
try {
  if (chosen.includes('startup')) results.startup = await benchStartup();
  if (chosen.includes('scheduler')) results.scheduler = await benchScheduler();
  if (chosen.includes('run')) results.run = await benchCliRun({ stateDir });
  if (chosen.includes('runtime')) results.runtime = await benchRuntime({ stateDir: join(stateDir) });
  if (chosen.includes('images')) results.images = await benchImages();
  if (chosen.includes('results')) results.results = await benchResults();
  if (chosen.includes('arch')) results.arch = await benchArch();
  if (chosen.includes('caches')) results.caches = await benchCaches({ stateDir });
  if (chosen.includes('shell')) results.shell = await benchShell({ stateDir });
} finally {
  if (!keptStateDir) rmSync(stateDir, { recursive: true, force: true });
}
process.stdout.write(`\n${JSON.stringify(results, null, 2)}\n`);

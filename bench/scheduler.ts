/**
 * 1,000 cells of a trivial step through the scheduler, the event stream, the plain terminal view and every reporter.
 * Cells run as host processes (bench/support/host-container.ts), NOT in containers: this isolates the cost of
 * scheduling and reporting, which is what this benchmark is about. Container cost is measured in bench/runtime.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunEvents } from '../src/run/events.js';
import { createPlainView } from '../src/ui/plain.js';
import { palette } from '../src/ui/colors.js';
import { createReporter, reporterNames } from '../reporters/index.js';
import { runOnHost } from './support/host-container.js';
import { makeCell, makeStep } from './support/model.js';
import { report } from './stats.js';

export async function benchScheduler(cellCount = 1000): Promise<Record<string, number>> {
  const outputDir = mkdtempSync(join(tmpdir(), 'nsm-bench-sched-'));
  try {
    const steps = [makeStep(0, 'build', 'echo building'), makeStep(1, 'test', 'echo testing')];
    const cells = Array.from({ length: cellCount }, (_, i) => makeCell(`c${i}`, steps));
    const events = new RunEvents();
    let lines = 0;
    events.on(createPlainView({ write: () => void lines++, colors: palette(false) }));
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const start = performance.now();
    const result = await runOnHost({ cells, steps: steps.map((s) => ({ name: s.name, run: s.run, env: {} })), outputDir, events: events });
    const scheduled = performance.now() - start;
    const reportStart = performance.now();
    for (const name of reporterNames) await createReporter(name).onRunEnd?.(result, { outputDir });
    const reporting = performance.now() - reportStart;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    report(`${cellCount} cells x ${steps.length} steps, host processes instead of containers (scheduling + events + all reporters)`, [
      ['run (schedule, execute, events, plain view)', scheduled, `${(scheduled / cellCount).toFixed(2)} ms/cell, ${lines} terminal lines`],
      [`reporters (${reporterNames.join(', ')})`, reporting],
      ['peak RSS of the whole process (MiB)', peakRss / 2 ** 20],
    ]);
    return { runMs: scheduled, reportMs: reporting, peakRssMiB: peakRss / 2 ** 20 };
  } finally {
    rmSync(outputDir, { recursive: true, force: true });
  }
}

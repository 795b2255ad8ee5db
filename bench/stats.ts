/** Small helpers for benchmarks: repeat a measurement, report the median (and spread) in milliseconds. */
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function timeIt(runs: number, fn: () => unknown | Promise<unknown>): Promise<{ median: number; min: number; max: number; runs: number }> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), runs };
}

export function timeCommand(runs: number, command: string, args: string[], options: ExecFileSyncOptions = {}) {
  return timeIt(runs, () => execFileSync(command, args, { stdio: 'ignore', ...options }));
}

/** Prints a section of figures; a row's unit is ms unless its name ends with a unit in parentheses, e.g. "(MiB)". */
export function report(title: string, rows: [string, number, string?][]): void {
  process.stdout.write(`\n## ${title}\n`);
  for (const [name, value, note] of rows) {
    const unit = /\(([^)]+)\)$/.exec(name)?.[1] ?? 'ms';
    const label = name.replace(/\s*\([^)]+\)$/, '');
    // Ratios need two decimals: the targets they are held to (1.15x) differ from the figures in the second.
    const digits = unit === 'x' ? 2 : 1;
    process.stdout.write(`  ${label.padEnd(58)} ${value.toFixed(digits).padStart(10)} ${unit}${note ? `  ${note}` : ''}\n`);
  }
}

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

export function report(title: string, rows: [string, number, string?][]): void {
  process.stdout.write(`\n## ${title}\n`);
  for (const [name, ms, note] of rows) process.stdout.write(`  ${name.padEnd(58)} ${ms.toFixed(1).padStart(10)} ms${note ? `  ${note}` : ''}\n`);
}

/**
 * Resource faults: a state directory on a small tmpfs that fills during an image build and during a step, a step
 * that forks a thousand processes, a step that prints hundreds of MB without a newline, a step that ignores SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { CLI, runCli } from '../helpers/cli.js';
import { damage, imageProblems, processesMentioning, project, reportProblems, settle } from './harness.js';

const stateDir = inject('stateDir');
let work: string;
let tmpfs: string;

function sh(command: string): void {
  const r = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command}: ${r.stderr}`);
}

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-hard-faults-');
  tmpfs = join(work, 'small');
  mkdirSync(tmpfs);
  // Small enough that a debian base build (about 230 MB) runs out of room part-way.
  sh(`mount -t tmpfs -o size=64m nsm-hard-tmpfs '${tmpfs}'`);
});
afterAll(() => {
  if (tmpfs && readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${tmpfs} `)) sh(`umount '${tmpfs}'`);
  rmSync(work, { recursive: true, force: true });
});

const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;

describe('a state directory that fills up', () => {
  it('during an image build: exit 3 with a clear error, nothing published; after freeing space the next run is fine; then a step that fills it fails cleanly', () => {
    const state = join(tmpfs, 'state');
    const file = project(join(work, 'full'), 'matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: hi\n    run: echo hello from a roomier disk\n');
    const out = join(work, 'full-out');
    const r = runCli(['run', file, '--state-dir', state, '-o', out], { timeoutMs: 300_000 });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    // The cell's error names the image, the cause and the build log, in the run's output and in its results.
    const said = r.stdout + r.stderr;
    // the log is named when it could be kept; on a full disk even that copy can fail, and the error says so
    expect(said).toMatch(/image debian:bookworm could not be provisioned: .*\((log: \S+|the build log could not be kept[^)]*)\).*No space left on device/);
    expect(said).not.toMatch(/\n\s+at /);
    expect(results(out).cells[0]!.infrastructureError).toMatch(/No space left on device/);
    expect(existsSync(join(state, 'images')) ? readdirSync(join(state, 'images')) : []).toEqual([]);
    expect(readdirSync(join(state, 'tmp'))).toEqual([]);
    expect(damage(state, out, 'nsm-hard-full')).toEqual([]);

    // Room enough for the image and a little more.
    sh(`mount -o remount,size=420m '${tmpfs}'`);
    const again = runCli(['run', file, '--state-dir', state, '-o', out], { timeoutMs: 300_000 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(imageProblems(state)).toEqual([]);
    const cell = results(out).cells[0]!;
    expect(readFileSync(join(out, cell.outputDir, '01-hi.log'), 'utf8')).toContain('hello from a roomier disk');

    // A step filling the disk (its writes land in the cell's scratch under the state dir) fails as a step.
    const filler = project(join(work, 'filler'), [
      'matrix:\n  image: [debian:bookworm]',
      'steps:',
      '  - name: fill',
      '    run: dd if=/dev/zero of=/var/tmp/fill bs=1M count=1000',
    ].join('\n'));
    const fillOut = join(work, 'fill-out');
    const filled = runCli(['run', filler, '--state-dir', state, '-o', fillOut], { timeoutMs: 300_000 });
    expect(filled.code, filled.stdout + filled.stderr).toBe(1);
    const fillCell = results(fillOut).cells[0]!;
    expect(fillCell.steps[0]!.outcome).toBe('failed');
    expect(readFileSync(join(fillOut, fillCell.outputDir, '01-fill.log'), 'utf8')).toMatch(/No space left on device/);
    expect(reportProblems(fillOut)).toEqual([]);
    expect(damage(state, fillOut, 'nsm-hard-full')).toEqual([]);
    // Its scratch is gone, so the space is back: the next run works.
    const after = runCli(['run', file, '--state-dir', state, '-o', out]);
    expect(after.code, after.stdout + after.stderr).toBe(0);
  }, 600_000);
});

describe('hostile steps', () => {
  it('a step that forks a thousand processes: they all end with the step, and with the timeout', () => {
    const file = project(join(work, 'fork'), [
      'matrix:\n  image: [debian:bookworm]',
      'fail-fast: false',
      'steps:',
      '  - name: fork and leave',
      // Counted through /proc (minbase has no ps): processes with an argument that is exactly 6061.
      // A forked child may not have exec'd sleep yet when the loop ends: count until all 1,000 show (bounded).
      `    run: for i in $(seq 1000); do sleep 6061 & done; for t in $(seq 100); do n=$(grep -lzx '606[1]' /proc/[0-9]*/cmdline | wc -l); [ "$n" -ge 1000 ] && break; sleep 0.1; done; echo forked $n`,
      '  - name: none survived the previous step',
      `    run: test "$(grep -lzx '606[1]' /proc/[0-9]*/cmdline | wc -l)" = 0`,
      '  - name: fork and wait',
      '    run: for i in $(seq 1000); do sleep 6061 & done; wait',
      '    timeout: 4s',
    ].join('\n'));
    const out = join(work, 'fork-out');
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const steps = results(out).cells[0]!.steps;
    expect(steps.map((s) => s.outcome)).toEqual(['passed', 'passed', 'timed-out']);
    expect(steps[2]!.attempts[0]!.timedOut).toBe(true);
    expect(readFileSync(join(out, results(out).cells[0]!.outputDir, '01-fork-and-leave.log'), 'utf8')).toContain('forked 1000');
    expect(processesMentioning(['sleep 6061'])).toEqual([]);
    expect(damage(stateDir, out, 'sleep 6061')).toEqual([]);
  });

  it('a step printing 1 GiB without a newline: memory stays flat and the log is complete', () => {
    /** Runs a step printing `mib` MiB of "x" and no newline; returns the CLI's peak RSS in KiB (GNU time). */
    const peakFor = (mib: number): number => {
      const file = project(join(work, `noline-${mib}`), `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: one endless line\n    run: head -c ${mib}M /dev/zero | tr '\\0' x\n`);
      const out = join(work, `noline-out-${mib}`);
      const r = spawnSync('/usr/bin/time', ['-f', 'peak-rss-kib %M', process.execPath, CLI, 'run', file, '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown'], {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const cell = results(out).cells[0]!;
      const log = join(out, cell.outputDir, '01-one-endless-line.log');
      const count = spawnSync('sh', ['-c', `tr -cd x < '${log}' | wc -c`], { encoding: 'utf8' }).stdout.trim();
      expect(Number(count)).toBe(mib * 2 ** 20); // every byte reached the log
      expect(statSync(join(out, 'junit.xml')).size).toBeLessThan(4 * 2 ** 20);
      expect(reportProblems(out)).toEqual([]);
      rmSync(out, { recursive: true, force: true });
      return Number(/peak-rss-kib (\d+)/.exec(r.stderr)?.[1]);
    };
    const small = peakFor(32);
    const large = peakFor(1024);
    console.log(`endless line: peak RSS ${Math.round(small / 1024)} MiB for 32 MiB of output, ${Math.round(large / 1024)} MiB for 1 GiB`);
    // 32 times the output may cost only a little more memory (garbage not yet collected), never a share of it:
    // without backpressure on the log this grew by about 140 MiB here, and holding the line whole would cost GiBs.
    expect(large - small).toBeLessThan(100 * 1024);
  });

  it('a step that ignores SIGTERM is still ended by its timeout', async () => {
    const file = project(join(work, 'noterm'), [
      'matrix:\n  image: [debian:bookworm]',
      'steps:',
      '  - name: stubborn',
      `    run: sh -c 'trap "" TERM INT HUP; echo trapped; while :; do sleep 0.2; done' nsm-hard-noterm`,
      '    timeout: 2s',
    ].join('\n'));
    const out = join(work, 'noterm-out');
    const started = Date.now();
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
    const took = Date.now() - started;
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(took).toBeLessThan(30_000);
    const attempt = results(out).cells[0]!.steps[0]!.attempts[0]!;
    expect(attempt.timedOut).toBe(true);
    expect(attempt.durationMs).toBeGreaterThanOrEqual(2_000);
    expect(await settle(() => damage(stateDir, out, 'nsm-hard-noterm'))).toEqual([]);
  });
});

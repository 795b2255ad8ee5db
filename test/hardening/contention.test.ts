/**
 * Contention: runs started together on matrices that share an image key nobody has built yet build it exactly once,
 * none fails because of another and each output directory holds only its own run; two runs on one --output refuse
 * to mix (the second fails at once with exit 2).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { runCli } from '../helpers/cli.js';
import { damage, project, reportProblems, settle, sleep, start } from './harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-hard-cont-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every step's shell carries this word in its command line ($0): a step process left behind shows up in `damage`. */
const PAYLOAD = 'nsm-hard-contention';

const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
const publishedKeys = () => new Set(existsSync(join(stateDir, 'images')) ? readdirSync(join(stateDir, 'images')) : []);

describe('several runs at once', () => {
  it('a shared, not yet built image key is built exactly once and no run disturbs another', async () => {
    const unique = `contention-${process.pid}-${Date.now()}`;
    const runsStarted = Date.now() - 1000; // ctime has coarse granularity on some filesystems
    const before = publishedKeys();
    const RUNS = 3;
    const runs = Array.from({ length: RUNS }, (_, r) => {
      const file = project(
        join(work, `shared-${r}`),
        [
          'matrix:',
          '  image: [debian:bookworm]',
          `  run${r}: [a${r}, b${r}]`,
          'packages: [hello]',
          `setup: echo ${unique}`,
          'steps:',
          '  - name: whoami',
          // Long enough (sleep) for the probe below to see the step's process while it runs.
          `    run: ${JSON.stringify(`sh -c 'echo "run $1 cell $NSMATRIX_CELL"; hello; sleep 2' ${PAYLOAD} ${r}`)}`,
        ].join('\n'),
      );
      const out = join(work, `shared-out-${r}`);
      return { r, out, run: start(['run', file, '--state-dir', stateDir, '-o', out, '--jobs', '2']) };
    });
    // The leftover check below must be able to see a step process: while the steps run, `damage` lists them by PAYLOAD.
    let finished = false;
    const all = Promise.all(runs.map((x) => x.run.done)).finally(() => (finished = true));
    let seenRunning: string[] = [];
    while (!finished && seenRunning.length === 0) {
      seenRunning = damage(stateDir, runs[0]!.out, PAYLOAD).filter((d) => d.startsWith('process: ') && d.includes(PAYLOAD));
      await sleep(100);
    }
    const done = await all;
    expect(seenRunning, 'a running step, as damage() sees it').not.toEqual([]);
    for (const [i, d] of done.entries()) expect(d.code, `run ${i}:\n${d.stdout}\n${d.stderr}`).toBe(0);

    // One builder; the others waited for it or found it published.
    const builtLines = done.flatMap((d) => d.stdout.split('\n').filter((l) => /image debian:bookworm.*: built in/.test(l)));
    expect(builtLines, done.map((d) => d.stdout).join('\n----\n')).toHaveLength(1);
    const added = [...publishedKeys()].filter((k) => !before.has(k));
    expect(added).toHaveLength(1);
    const manifest = JSON.parse(readFileSync(join(stateDir, 'images', added[0]!, 'manifest.json'), 'utf8')) as { key: string; layer: string };
    expect(manifest).toMatchObject({ key: added[0], layer: 'top' });
    expect(new Set(runs.map((x) => results(x.out).cells[0]!.imageKey))).toEqual(new Set([added[0]]));

    // Each output directory holds exactly its own run: its cells, its logs, valid reports.
    for (const { r, out } of runs) {
      const result = results(out);
      expect(result.cells.map((c) => c.values[`run${r}`])).toEqual([`a${r}`, `b${r}`]);
      const cellDirs = readdirSync(out, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
      expect(cellDirs).toEqual(result.cells.map((c) => c.outputDir).sort());
      for (const cell of result.cells) {
        const log = readFileSync(join(out, cell.outputDir, '01-whoami.log'), 'utf8');
        expect(log).toContain(`run ${r} cell ${cell.id}`);
        expect(log).toContain('Hello, world!');
      }
      expect(reportProblems(out)).toEqual([]);
      const machines = result.cells.flatMap((c) => (c.machine ? [c.machine] : []));
      expect(await settle(() => damage(stateDir, out, PAYLOAD, runsStarted, machines))).toEqual([]);
    }
  });

  it('a second run on the same --output fails at once with exit 2 instead of mixing', async () => {
    const file = project(join(work, 'same-out'), 'matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: slow\n    run: sleep 6; echo first-run-done\n');
    const other = project(join(work, 'same-out-2'), 'matrix:\n  image: [debian:bookworm]\n  x: [intruder]\nsteps:\n  - name: other\n    run: echo intruder\n');
    const out = join(work, 'same-out-results');
    const first = start(['run', file, '--state-dir', stateDir, '-o', out]);
    expect(await first.seen(/step "slow"/)).toBe(true);
    const started = Date.now();
    const second = runCli(['run', other, '--state-dir', stateDir, '-o', out]);
    expect(second.code, second.stderr).toBe(2);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(second.stderr.trim()).toMatch(/^nsmatrix: --output .*same-out-results is in use by another nsmatrix run/);
    expect(second.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const firstResult = await first.done;
    expect(firstResult.code, firstResult.stderr).toBe(0);
    const result = results(out);
    expect(result.cells.map((c) => c.name)).toEqual(['debian:bookworm']);
    expect(readdirSync(out).some((f) => f.includes('intruder'))).toBe(false);
    expect(readFileSync(join(out, result.cells[0]!.outputDir, '01-slow.log'), 'utf8')).toContain('first-run-done');
    expect(reportProblems(out)).toEqual([]);
  });
});

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunEvents, type RunEvent } from '../../src/run/events.js';
import { cellOutcome } from '../../src/run/result.js';
import { runMatrix, type RunOptions } from '../../src/run/scheduler.js';
import type { RunResult } from '../../src/run/result.js';
import { writeReports } from '../../src/cli/reporting.js';
import type { Reporter } from '../../reporters/types.js';
import { detectHost } from '../../src/lib/host.js';
import { openHostContainer } from '../../bench/support/host-container.js';
import { makeCell, makeModel, makeStep } from '../../bench/support/model.js';
import type { Cell } from '../../src/matrix/types.js';
import type { ExecRequest } from '../../src/runtime/types.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function options(cells: Cell[], overrides: Partial<RunOptions> = {}): { options: RunOptions; events: RunEvent[] } {
  const outputDir = mkdtempSync(join(tmpdir(), 'nsm-sched-'));
  dirs.push(outputDir);
  const events = new RunEvents();
  const seen: RunEvent[] = [];
  events.on((e) => seen.push(e));
  return {
    events: seen,
    options: {
      model: makeModel({ steps: cells[0]?.steps.map((s) => ({ name: s.name, run: s.run, env: {} })) ?? [] }),
      cells,
      positions: new Map(cells.map((c, i) => [c.id, i])),
      outputDir,
      scratchDir: outputDir,
      fileArg: 'nsmatrix.yaml',
      jobs: 2,
      failFast: false,
      host: detectHost(),
      toolVersion: '0.0.0-test',
      events,
      signal: new AbortController().signal,
      stages: {
        provision: async (image) => ({ name: image, key: 'k'.repeat(16), baseKey: 'b', root: '/', cached: true, madeFrom: 'test' }),
        openContainer: openHostContainer,
        cellEnvironment: (cell) => ({ NSMATRIX_CELL: cell.id }),
      },
      ...overrides,
    },
  };
}

describe('scheduler with a host-process executor', () => {
  it('records exit statuses, skips (77), and stops a cell at its first failing step', async () => {
    const cells = [
      makeCell('a', [makeStep(0, 'ok', 'echo hi'), makeStep(1, 'skip', 'exit 77'), makeStep(2, 'fail', 'echo boom; exit 7'), makeStep(3, 'after', 'true')]),
    ];
    const { options: o } = options(cells);
    const result = await runMatrix(o);
    const steps = result.cells[0]!.steps;
    expect(steps.map((s) => s.outcome)).toEqual(['passed', 'skipped', 'failed', 'not-run']);
    expect(steps[2]!.attempts[0]!.exitCode).toBe(7);
    expect(steps[2]!.attempts[0]!.tail).toContain('boom');
    expect(steps[3]!.reason).toMatch(/step "fail" failed/);
    expect(result.cells[0]!.outcome).toBe('failed');
    expect(result.outcome).toBe('failed');
    expect(readFileSync(join(o.outputDir, steps[0]!.attempts[0]!.logPath), 'utf8')).toBe('hi\n');
    expect(result.cells[0]!.rerun).toBe('nsmatrix run nsmatrix.yaml --filter image=debian:bookworm --filter n=a');
  });

  it('retries a failing step and marks it flaky when a later attempt passes, keeping every attempt', async () => {
    const counter = join(mkdtempSync(join(tmpdir(), 'nsm-count-')), 'n');
    dirs.push(join(counter, '..'));
    const script = `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; echo attempt $n; [ $n -ge 3 ]`;
    const { options: o, events } = options([makeCell('a', [makeStep(0, 'flaky', script, { retries: 3 })])]);
    const result = await runMatrix(o);
    const step = result.cells[0]!.steps[0]!;
    expect(step.outcome).toBe('passed');
    expect(step.flaky).toBe(true);
    expect(step.attempts.map((a) => a.exitCode)).toEqual([1, 1, 0]);
    expect(new Set(step.attempts.map((a) => a.logPath)).size).toBe(3);
    expect(events.filter((e) => e.type === 'step-attempt-end' && e.willRetry)).toHaveLength(2);
    expect(result.outcome).toBe('passed');
  });

  it('fail-fast cancels running and queued cells and reports them as cancelled', async () => {
    const cells = [
      makeCell('fails', [makeStep(0, 's', 'sleep 0.3; exit 1')]),
      makeCell('slow', [makeStep(0, 's', 'sleep 30')]),
      makeCell('queued', [makeStep(0, 's', 'true')]),
    ];
    const { options: o } = options(cells, { failFast: true, jobs: 2 });
    const started = Date.now();
    const result = await runMatrix(o);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(result.cells.map((c) => c.outcome)).toEqual(['failed', 'cancelled', 'cancelled']);
    expect(result.cells[1]!.cancelReason).toMatch(/fail-fast/);
    expect(result.cells[2]!.steps[0]!.outcome).toBe('not-run');
  });

  it('continue-on-error spares the run but keeps the failure visible', async () => {
    const cells = [makeCell('x', [makeStep(0, 'allowed', 'exit 3', { continueOnError: true }), makeStep(1, 'next', 'true')])];
    const { options: o } = options(cells);
    const result = await runMatrix(o);
    expect(result.cells[0]!.steps.map((s) => s.outcome)).toEqual(['failed', 'passed']);
    expect(result.cells[0]!.outcome).toBe('failed');
    expect(result.outcome).toBe('passed');
  });

  it('times out a step by its own clock', async () => {
    const { options: o } = options([makeCell('t', [makeStep(0, 'hang', 'sleep 30', { timeoutMs: 300 })])]);
    const result = await runMatrix(o);
    const step = result.cells[0]!.steps[0]!;
    expect(step.outcome).toBe('timed-out');
    expect(step.attempts[0]!.timedOut).toBe(true);
  });

  it('an interrupt marks unfinished cells and the run as interrupted', async () => {
    const controller = new AbortController();
    const cells = [makeCell('a', [makeStep(0, 's', 'sleep 30')]), makeCell('b', [makeStep(0, 's', 'sleep 30')]), makeCell('c', [makeStep(0, 's', 'true')])];
    const { options: o } = options(cells, { signal: controller.signal, jobs: 2 });
    setTimeout(() => controller.abort('interrupted by SIGINT'), 300);
    const result = await runMatrix(o);
    expect(result.interrupted).toBe(true);
    expect(result.outcome).toBe('interrupted');
    expect(result.cells.map((c) => c.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(result.cells[0]!.steps[0]!.reason).toMatch(/SIGINT/);
  });

  it('a failed image provisioning is an infrastructure error of its cells only', async () => {
    const cells = [makeCell('a', [makeStep(0, 's', 'true')], { image: 'debian:nope' }), makeCell('b', [makeStep(0, 's', 'true')])];
    const { options: o, events } = options(cells);
    o.stages.provision = async (image) => {
      if (image === 'debian:nope') throw new Error('unknown suite nope');
      return { name: image, key: 'k', baseKey: 'b', root: '/', cached: true, madeFrom: 'test' };
    };
    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['error', 'passed']);
    expect(result.cells[0]!.infrastructureError).toMatch(/unknown suite nope/);
    expect(result.outcome).toBe('error');
    expect(events.find((e) => e.type === 'image-end' && e.error)).toBeTruthy();
  });
});

describe('cellOutcome', () => {
  it('prefers infrastructure errors, then failures, then cancellation', () => {
    const failed = { index: 0, name: 'a', outcome: 'failed' as const, continueOnError: false, flaky: false, attempts: [] };
    const skipped = { ...failed, outcome: 'skipped' as const };
    expect(cellOutcome([failed], { infrastructureError: 'x' })).toBe('error');
    expect(cellOutcome([failed], { cancelled: 'x' })).toBe('failed');
    expect(cellOutcome([skipped], {})).toBe('skipped');
    expect(cellOutcome([skipped], { cancelled: 'y' })).toBe('cancelled');
  });
});

/** What marks a cell directory as nsmatrix's own (src/run/scheduler.ts CELL_MARKER; spelt out so that the test
 * means the same against any version of the scheduler). */
const CELL_MARKER = '.nsmatrix-cell';

/** A reporter that records what it is given, like the file reporters do. */
function recordingReporter(): Reporter & { events: RunEvent[]; results: RunResult[] } {
  const events: RunEvent[] = [];
  const results: RunResult[] = [];
  return {
    name: 'recording',
    events,
    results,
    onEvent: (e) => events.push(e),
    onRunEnd: (result, context) => {
      results.push(result);
      const path = join(context.outputDir, 'recorded.json');
      writeFileSync(path, JSON.stringify(result));
      return [path];
    },
  };
}

describe('an exception inside one cell', () => {
  const cells = () => [makeCell('a', [makeStep(0, 's', 'true')]), makeCell('boom', [makeStep(0, 's', 'true')]), makeCell('c', [makeStep(0, 's', 'true')])];

  it.each(['openContainer', 'exec', 'close', 'cellEnvironment'] as const)('%s throwing is that cell\'s error; other cells run and the reporters get everything', async (where) => {
    const { options: o, events } = options(cells(), { jobs: 1 });
    const reporter = recordingReporter();
    o.events.on((e) => reporter.onEvent!(e));
    const real = o.stages;
    o.stages = {
      ...real,
      openContainer: async (opts) => {
        if (opts.cellId === 'boom' && where === 'openContainer') throw new TypeError('openContainer exploded');
        const container = await real.openContainer(opts);
        if (opts.cellId !== 'boom') return container;
        return {
          ...container,
          exec: where === 'exec' ? () => Promise.reject(new Error('exec exploded')) : container.exec,
          close: where === 'close' ? () => Promise.reject(new Error('close exploded')) : container.close,
        };
      },
      cellEnvironment: (cell) => {
        if (cell.id === 'boom' && where === 'cellEnvironment') throw new Error('cellEnvironment exploded');
        return real.cellEnvironment(cell);
      },
    };
    const result = await runMatrix(o);
    expect(result.cells.map((c) => [c.id, c.outcome])).toEqual([
      ['a', 'passed'],
      ['boom', 'error'],
      ['c', 'passed'],
    ]);
    expect(result.cells[1]!.infrastructureError).toMatch(new RegExp(`${where} exploded`));
    expect(result.outcome).toBe('error');
    expect(events.filter((e) => e.type === 'cell-end')).toHaveLength(3);
    expect(events.at(-1)?.type).toBe('run-end');

    const written = await writeReports([{ reporter }], result, o.outputDir);
    expect(written).toEqual([join(o.outputDir, 'recorded.json')]);
    expect(reporter.results).toHaveLength(1);
    expect(reporter.events.some((e) => e.type === 'run-end')).toBe(true);
    const recorded = JSON.parse(readFileSync(written[0]!, 'utf8')) as RunResult;
    expect(recorded.cells.map((c) => c.outcome)).toEqual(['passed', 'error', 'passed']);
  });
});

describe('cells overlap around their steps', () => {
  /** The host container, with `arm` and a record of what happened to each cell's container, in order. */
  function instrumented(o: RunOptions, armFails = false) {
    const log: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const real = o.stages.openContainer;
    o.stages = {
      ...o.stages,
      openContainer: async (opts) => {
        log.push(`open ${opts.cellId}`);
        const container = await real(opts);
        const exec = async (request: ExecRequest) => {
          maxRunning = Math.max(maxRunning, ++running);
          log.push(`run ${opts.cellId}`);
          try {
            return await container.exec(request);
          } finally {
            running--;
            log.push(`ran ${opts.cellId}`);
          }
        };
        return {
          ...container,
          exec,
          arm: async (request: ExecRequest) => {
            if (armFails) throw new Error('cannot arm');
            log.push(`arm ${opts.cellId}`);
            return { run: () => exec(request) };
          },
          close: async () => {
            log.push(`close ${opts.cellId}`);
            return container.close();
          },
        };
      },
    };
    return { log, maxRunning: () => maxRunning, at: (entry: string) => log.indexOf(entry) };
  }

  it('with --jobs 1: one cell runs steps at a time; the next is prepared, its first step armed, while it runs', async () => {
    const cells = ['a', 'b', 'c'].map((id) => makeCell(id, [makeStep(0, 's', 'sleep 0.2; echo done')]));
    const { options: o, events } = options(cells, { jobs: 1 });
    const seen = instrumented(o);
    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['passed', 'passed', 'passed']);
    expect(seen.maxRunning()).toBe(1);
    for (const [before, next] of [['a', 'b'], ['b', 'c']]) {
      expect(seen.at(`arm ${next}`)).toBeGreaterThan(-1);
      expect(seen.at(`arm ${next}`)).toBeLessThan(seen.at(`ran ${before}`));
      expect(seen.at(`run ${next}`)).toBeGreaterThan(seen.at(`ran ${before}`));
    }
    expect(seen.log.filter((e) => e.startsWith('close'))).toHaveLength(3);
    // A cell starts when its steps do, not when it is prepared.
    const order = events.filter((e) => e.type === 'cell-start' || e.type === 'step-start').map((e) => `${e.type} ${e.cell.id}`);
    expect(order).toEqual(['cell-start a', 'step-start a', 'cell-start b', 'step-start b', 'cell-start c', 'step-start c']);
    for (const cell of result.cells) expect(readFileSync(join(o.outputDir, cell.steps[0]!.attempts[0]!.logPath), 'utf8')).toBe('done\n');
  });

  it('fail-fast with --jobs 1 cancels the cell prepared behind a failed one: its armed step never runs, its container is closed', async () => {
    const cells = [makeCell('fails', [makeStep(0, 's', 'sleep 0.2; exit 1')]), makeCell('next', [makeStep(0, 's', 'true')]), makeCell('last', [makeStep(0, 's', 'true')])];
    const { options: o, events } = options(cells, { jobs: 1, failFast: true });
    const seen = instrumented(o);
    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['failed', 'cancelled', 'cancelled']);
    expect(result.cells[1]!.cancelReason).toMatch(/fail-fast/);
    expect(seen.at('arm next')).toBeGreaterThan(-1);
    expect(seen.at('run next')).toBe(-1);
    expect(seen.at('close next')).toBeGreaterThan(-1);
    expect(seen.at('open last')).toBe(-1);
    expect(events.filter((e) => e.type === 'cell-start').map((e) => e.cell.id)).toEqual(['fails']);
  });

  it('a step that cannot be armed starts the usual way', async () => {
    const cells = [makeCell('a', [makeStep(0, 's', 'true')]), makeCell('b', [makeStep(0, 's', 'echo b')])];
    const { options: o } = options(cells, { jobs: 1 });
    const seen = instrumented(o, true);
    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['passed', 'passed']);
    expect(seen.log.filter((e) => e.startsWith('run'))).toEqual(['run a', 'run b']);
  });

  it('cells that hand `cache:` directories on run whole, one after another', async () => {
    const cells = [makeCell('a', [makeStep(0, 's', 'sleep 0.1')]), makeCell('b', [makeStep(0, 's', 'true')])];
    const { options: o } = options(cells, { jobs: 1 });
    o.model = { ...o.model, cache: [{ path: '/root/.cache/thing' }] };
    const seen = instrumented(o);
    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['passed', 'passed']);
    expect(seen.log.filter((e) => e.startsWith('arm'))).toEqual([]);
    expect(seen.at('open b')).toBeGreaterThan(seen.at('close a'));
  });
});

describe('cell directories', () => {
  it("never removes a directory of a cell's name that nsmatrix did not make; replaces one it made", async () => {
    const cells = [makeCell('mine', [makeStep(0, 's', 'echo new')]), makeCell('ours', [makeStep(0, 's', 'echo new')])];
    const { options: o } = options(cells);
    // The user's own directory that happens to carry a cell's id.
    mkdirSync(join(o.outputDir, 'mine'));
    writeFileSync(join(o.outputDir, 'mine', 'thesis.tex'), 'years of work');
    // An earlier run's cell directory (marked), with an old log.
    mkdirSync(join(o.outputDir, 'ours'));
    writeFileSync(join(o.outputDir, 'ours', CELL_MARKER), '');
    writeFileSync(join(o.outputDir, 'ours', 'old.log'), 'old');

    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['error', 'passed']);
    expect(result.cells[0]!.infrastructureError).toMatch(/was not made by nsmatrix/);
    expect(readdirSync(join(o.outputDir, 'mine'))).toEqual(['thesis.tex']);
    expect(readFileSync(join(o.outputDir, 'mine', 'thesis.tex'), 'utf8')).toBe('years of work');
    expect(existsSync(join(o.outputDir, 'ours', 'old.log'))).toBe(false);
    expect(existsSync(join(o.outputDir, 'ours', CELL_MARKER))).toBe(true);
  });

  it('refuses a symlink in place of a cell directory and never follows symlinks a step left in a marked one', async () => {
    const precious = mkdtempSync(join(tmpdir(), 'nsm-precious-'));
    dirs.push(precious);
    writeFileSync(join(precious, 'keep'), 'x');
    const cells = [makeCell('linked', [makeStep(0, 's', 'true')]), makeCell('marked', [makeStep(0, 's', 'true')])];
    const { options: o } = options(cells);
    symlinkSync(precious, join(o.outputDir, 'linked'));
    mkdirSync(join(o.outputDir, 'marked', 'artifacts'), { recursive: true });
    writeFileSync(join(o.outputDir, 'marked', CELL_MARKER), '');
    symlinkSync(precious, join(o.outputDir, 'marked', 'artifacts', 'escape'));

    const result = await runMatrix(o);
    expect(result.cells.map((c) => c.outcome)).toEqual(['error', 'passed']);
    expect(readdirSync(precious)).toEqual(['keep']);
    expect(existsSync(join(o.outputDir, 'marked', 'artifacts', 'escape'))).toBe(false);
  });
});

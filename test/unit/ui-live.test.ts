/** The live view's state, frame by frame: what each row says is what happened, and it stays said. */
import { describe, expect, it } from 'vitest';
import { palette } from '../../src/ui/colors.js';
import { createLiveView } from '../../src/ui/live.js';
import { totals } from '../../src/ui/summary.js';
import type { CellResult, RunResult } from '../../src/run/result.js';
import { makeCell, makeStep } from '../../bench/support/model.js';

const cells = [1, 2, 3].map((n) => makeCell(`c${n}`, [makeStep(0, 'build', 'true')], { name: `cell ${n}`, image: 'debian:sid' }));

function result(id: string, outcome: CellResult['outcome'], durationMs = 3000): CellResult {
  return {
    id, position: 0, name: `cell ${id.slice(1)}`, image: 'debian:sid', values: {}, outcome, continueOnError: false,
    startedAt: '2026-11-22T00:00:00.000Z', durationMs, outputDir: id, artifactsDir: `${id}/artifacts`, rerun: 'nsmatrix run', steps: [],
  };
}

function run(cellResults: CellResult[]): RunResult {
  return {
    version: 1, tool: { name: 'nsmatrix', version: '0' }, matrix: { name: 'm', file: '/m.yaml', axes: [], stepNames: ['build'] },
    host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 5000,
    outcome: 'failed', interrupted: false, cells: cellResults,
  };
}

/** The view driven by hand; `frame()` is the last frame it drew (after its pending redraw). */
function view() {
  const drawn: string[] = [];
  const v = createLiveView({ write: (t) => drawn.push(t), colors: palette(false), size: () => ({ columns: 120, rows: 40 }), intervalMs: 5 });
  const frame = async () => {
    await new Promise((r) => setTimeout(r, 20));
    const last = drawn.filter((t) => t.includes('cells done')).at(-1) ?? '';
    return last.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  };
  return { v, drawn, frame };
}

describe('live view state', () => {
  it('a cached image row stops at once; queued cells look queued; finished cells keep their text; N of M done', async () => {
    const { v, frame } = view();
    v.listener({ type: 'run-start', matrixName: 'm', file: '/m.yaml', cells, outputDir: '/out', startedAt: '' });
    expect(await frame()).toMatch(/◦ cell 3 — queued/);
    v.listener({ type: 'image-start', image: 'debian:sid' });
    v.listener({ type: 'image-end', image: 'debian:sid', cached: true, durationMs: 2 });
    v.listener({ type: 'cell-start', cell: cells[0]! });
    v.listener({ type: 'step-start', cell: cells[0]!, step: 0, name: 'build', attempt: 1 });
    let f = await frame();
    expect(f).toMatch(/✔ image debian:sid — cached/);
    expect(f).toMatch(/cell 1 — build/);
    expect(f).toMatch(/◦ cell 2 — queued/);
    expect(f).toMatch(/0 of 3 cells done/);
    v.listener({ type: 'cell-end', cell: cells[0]!, result: result('c1', 'failed') });
    f = await frame();
    const row = f.split('\n').find((l) => l.includes('cell 1'));
    expect(row).toBe('✖ cell 1 — failed 3.0s');
    expect(f).toMatch(/1 of 3 cells done, 1 failed/);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await frame()).split('\n').find((l) => l.includes('cell 1'))).toBe(row);
    await v.finish(run([result('c1', 'failed'), result('c2', 'cancelled', 0), result('c3', 'cancelled', 0)]));
  });

  it('announces each failure once, after the view', async () => {
    const { v, drawn } = view();
    v.listener({ type: 'run-start', matrixName: 'm', file: '/m.yaml', cells, outputDir: '/out', startedAt: '' });
    v.listener({ type: 'cell-start', cell: cells[1]! });
    v.listener({ type: 'cell-end', cell: cells[1]!, result: result('c2', 'failed') });
    await v.finish(run([result('c1', 'passed'), result('c2', 'failed'), result('c3', 'passed')]));
    expect(drawn.join('').match(/✖ cell 2: failed/g)).toHaveLength(1);
  });

  it('says "1 cell" and "1 error"', () => {
    expect(totals(run([result('c1', 'error')]))).toMatch(/^1 cell: 0 passed, 0 failed, 1 error in/);
    expect(totals(run([result('c1', 'error'), result('c2', 'error')]))).toMatch(/^2 cells: .*2 errors in/);
  });
});

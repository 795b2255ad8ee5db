/**
 * Names reach the terminal: matrix, image, cell and step names, paths, the rerun command. None of them may drive
 * it (retitle the window, clear the screen, fake a line), in any view: plain lines, the summary table, failure
 * details, and the live view's image and cell lines. Each is fed the same hostile string.
 */
import { describe, expect, it } from 'vitest';
import { palette, printable, terminalSafe } from '../../src/ui/colors.js';
import { createLiveView } from '../../src/ui/live.js';
import { createPlainView } from '../../src/ui/plain.js';
import { failureDetails, summaryTable } from '../../src/ui/summary.js';
import type { RunEvent } from '../../src/run/events.js';
import type { CellResult, RunResult } from '../../src/run/result.js';
import { makeCell, makeStep } from '../../bench/support/model.js';

/** OSC window title, clear screen, a C1 CSI, carriage return, a newline faking a line, a bidi override. */
const H = '\u001b]0;pwned\u0007\u001b[2J\u009b31m\r\nEVIL\u202e';
/** How H must look once shown. */
const SHOWN = '\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\r\\nEVIL\\u202e';
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const IMAGE = `debian:sid${H}`;
const cell = makeCell('c1', [makeStep(0, `build${H}`, 'true')], { name: `cell${H}`, image: IMAGE });

function cellResult(outcome: CellResult['outcome']): CellResult {
  return {
    id: 'c1', position: 0, name: cell.name, image: IMAGE, values: {}, outcome, continueOnError: false,
    startedAt: '2026-11-22T00:00:00.000Z', durationMs: 3000, outputDir: 'c1', artifactsDir: 'c1/artifacts',
    rerun: `nsmatrix run m.yaml --filter n=${H}`, cancelReason: outcome === 'cancelled' ? `because${H}` : undefined,
    steps: [
      {
        index: 0, name: `build${H}`, outcome: outcome === 'failed' ? 'failed' : 'passed', continueOnError: false, flaky: false,
        reason: `why${H}`,
        attempts: [{ attempt: 1, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 1500, exitCode: 2, signal: null, timedOut: false, logPath: `c1/01-build${H}.log`, tail: [`boom${H}`] }],
      },
    ],
  };
}

function runResult(cells: CellResult[]): RunResult {
  return {
    version: 1, tool: { name: 'nsmatrix', version: '0' }, matrix: { name: `m${H}`, file: '/m.yaml', axes: [], stepNames: [`build${H}`] },
    host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt: '2026-11-22T00:00:00.000Z', durationMs: 65_000,
    outcome: 'failed', interrupted: false, cells,
  };
}

/** Nothing in `text` can drive a terminal, and the hostile newline started no line of its own. */
function expectInert(text: string): void {
  expect(text).not.toMatch(RAW);
  expect(text).not.toMatch(/^EVIL/m);
}

describe('the sanitiser', () => {
  it('shows every control character, newlines included, as a visible escape', () => {
    expect(printable(`a${H}`)).toBe(`a${SHOWN}`);
    expect(printable('tab\there\u0000\u007f\u2028\u2066')).toBe('tab\\there\\x00\\x7f\\u2028\\u2066');
    expect(printable('debian:trixie [cc=gcc, ünïcode=✓]')).toBe('debian:trixie [cc=gcc, ünïcode=✓]');
  });

  it('step output keeps its tabs, drops escape sequences, shows the rest (a line stays one line)', () => {
    expect(terminalSafe('a\tb\u001b[31mred\u001b[0m\u202ex\ny')).toBe('a\tbred\\u202ex\\ny');
  });
});

describe('plain view', () => {
  it('escapes every name and path in every line', () => {
    const out: string[] = [];
    const view = createPlainView({ write: (t) => out.push(t), colors: palette(false), verbose: true, now: () => new Date('2026-11-22T10:11:12Z') });
    const events: RunEvent[] = [
      { type: 'run-start', matrixName: `m${H}`, file: '/m.yaml', cells: [cell], outputDir: `/out${H}`, startedAt: '' },
      { type: 'image-start', image: IMAGE },
      { type: 'image-progress', image: IMAGE, line: `progress${H}` },
      { type: 'image-end', image: IMAGE, key: 'k', cached: true, durationMs: 1 },
      { type: 'image-end', image: IMAGE, cached: false, durationMs: 1, error: `failed${H}`, logPath: `/logs${H}` },
      { type: 'cell-start', cell },
      { type: 'step-start', cell, step: 0, name: `build${H}`, attempt: 2 },
      { type: 'step-attempt-end', cell, step: 0, attempt: cellResult('failed').steps[0]!.attempts[0]!, willRetry: true },
      { type: 'step-end', cell, result: cellResult('failed').steps[0]! },
      { type: 'cell-end', cell, result: cellResult('cancelled') },
      { type: 'cell-end', cell, result: cellResult('failed') },
      { type: 'run-end', result: runResult([cellResult('failed')]) },
    ];
    for (const event of events) view(event);
    const text = out.join('');
    expectInert(text);
    for (const shown of [`m${SHOWN}:`, `(output: /out${SHOWN})`, `image debian:sid${SHOWN}: provisioning`, `cell${SHOWN}: started`,
      `step "build${SHOWN}" (attempt 2)`, `(why${SHOWN})`, `(because${SHOWN})`, `--filter n=${SHOWN}`, `/out${SHOWN}/c1/01-build${SHOWN}.log`]) {
      expect(text).toContain(shown);
    }
    // One line per `say`: the timestamp starts every line of them.
    const said = out.filter((t) => /^\d\d:\d\d:\d\d /.test(t));
    expect(said.length).toBeGreaterThan(8);
    for (const line of said) expect(line.indexOf('\n')).toBe(line.length - 1);
  });
});

describe('summary table and failure details', () => {
  it('keep one row per cell and show names escaped', () => {
    const table = summaryTable(runResult([cellResult('failed'), cellResult('passed')]), palette(false));
    expectInert(table);
    const rows = table.split('\n');
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(new RegExp(`^cell\\s+build${SHOWN.replace(/[\\[\]]/g, '\\$&')}\\s+result\\s+time$`));
    expect(rows[1]!.startsWith(`cell${SHOWN}  `)).toBe(true);
  });

  it('failure details escape the cell, the step, the log path and the rerun command', () => {
    const text = failureDetails(cellResult('failed'), `/out${H}`, palette(false));
    expectInert(text);
    expect(text.split('\n')).toEqual([
      `✖ cell${SHOWN}: failed`,
      `  step "build${SHOWN}": exit status 2; log: /out${SHOWN}/c1/01-build${SHOWN}.log`,
      `  | boom\\x9b31m\\r\\nEVIL\\u202e`,
      `  rerun: nsmatrix run m.yaml --filter n=${SHOWN}`,
    ]);
  });
});

describe('live view', () => {
  it('image lines, cell lines, step names, build output and errors reach the terminal escaped', async () => {
    const drawn: string[] = [];
    const view = createLiveView({ write: (t) => drawn.push(t), colors: palette(false), size: () => ({ columns: 400, rows: 50 }), intervalMs: 10 });
    const settle = () => new Promise((r) => setTimeout(r, 30));
    view.listener({ type: 'run-start', matrixName: `m${H}`, file: '/m.yaml', cells: [cell], outputDir: `/out${H}`, startedAt: '' });
    view.listener({ type: 'image-start', image: IMAGE });
    view.listener({ type: 'image-progress', image: IMAGE, line: `unpacking${H}` });
    await settle();
    view.listener({ type: 'image-end', image: IMAGE, cached: false, durationMs: 1, error: `no such suite${H}` });
    view.listener({ type: 'cell-start', cell });
    view.listener({ type: 'step-start', cell, step: 0, name: `build${H}`, attempt: 1 });
    await settle();
    view.listener({ type: 'cell-end', cell, result: cellResult('failed') });
    await view.finish(runResult([cellResult('failed')]));

    const screen = drawn.join('');
    // The view moves its own cursor (ESC [ ... A/G/J, ?25l/h); nothing of the hostile string gets through raw.
    for (const raw of ['\u001b]', '\u001b[2J', '\u0007', '\u009b', '\r', '\u202e']) expect(screen).not.toContain(raw);
    expect(screen).not.toMatch(/^EVIL/m);
    for (const shown of [`image debian:sid${SHOWN}`, `cell${SHOWN}`, `build${SHOWN}`, `unpacking\\x9b31m\\r\\nEVIL\\u202e`, `no such suite\\x9b31m`]) {
      expect(screen).toContain(shown);
    }
    expect(screen).toContain(`✖ cell${SHOWN}: failed`);
  });
});

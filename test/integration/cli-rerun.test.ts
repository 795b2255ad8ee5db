/**
 * The rerun command a failed cell prints (terminal, results.json, JUnit, HTML, Markdown) reruns exactly that cell,
 * with the same state directory (no image rebuilt), output directory and reporters, from any directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
const work = mkdtempSync('/var/tmp/nsm-rerun-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('rerun command', () => {
  it('reruns exactly the failed include-added cell with --state-dir, --output and --reporter carried', () => {
    const dir = join(work, 'project');
    mkdirSync(dir);
    // The include entry adds a cell whose values are the other cell's plus one: a filter on values alone
    // cannot tell them apart for a key both have; the rerun must select this cell only.
    writeFileSync(
      join(dir, 'nsmatrix.yaml'),
      'matrix:\n  image: [debian:bookworm]\n  cc: [gcc]\n  include:\n    - { image: debian:bookworm, cc: "cl\\nang", extra: "1" }\nfail-fast: false\nsteps:\n  - name: check\n    run: test "$MATRIX_CC" = gcc\n',
    );
    const out = join(work, 'out');
    const first = runCli(['run', '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown', '--plain'], { cwd: dir });
    expect(first.code, first.stdout + first.stderr).toBe(1);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: { id: string; outcome: string; rerun: string }[] };
    const failed = result.cells.find((c) => c.outcome === 'failed')!;
    const rerun = failed.rerun;
    expect(rerun).toMatch(/^(nsmatrix|\S*node \S*\/dist\/src\/cli\/main\.js) run /);
    expect(rerun).toContain(`--filter nsmatrix-cell=${failed.id}`);
    for (const option of [`--state-dir ${stateDir}`, `--output ${out}`, '--reporter html', '--reporter markdown']) expect(rerun).toContain(option);
    // Everywhere the failure is shown, the same command.
    expect(first.stdout).toContain(`rerun: ${rerun}`);
    for (const report of ['junit.xml', 'report.html', 'summary.md']) {
      const text = readFileSync(join(out, report), 'utf8').replace(/&#39;|&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
      expect(text, report).toContain(`--filter nsmatrix-cell=${failed.id}`);
    }

    // From another directory, as a user would paste it: one cell, the cached image, the same output.
    const again = spawnSync('sh', ['-c', `${rerun} --plain`], { cwd: work, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(again.status, again.stdout + again.stderr).toBe(1);
    expect(again.stdout).toMatch(/: 1 cell \(output: /);
    expect(again.stdout).toMatch(/image debian:bookworm: cached/);
    const rerunResult = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cells: { id: string }[] };
    expect(rerunResult.cells.map((c) => c.id)).toEqual([failed.id]);
    readFileSync(join(out, 'report.html'));
  }, 300_000);
});

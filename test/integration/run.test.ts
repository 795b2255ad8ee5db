/**
 * `nsmatrix run` end to end, through the built binary, with real containers on a debian:bookworm image that the
 * tool builds itself into this test run's state directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { spawnSync } from 'node:child_process';
import { CLI, leftovers, runCli, schemaErrors, startCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-run-test-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function project(name: string, matrix: string, files: Record<string, string> = {}): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries({ 'nsmatrix.yaml': matrix, ...files })) writeFileSync(join(dir, file), text);
  return dir;
}

function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(d, entry.name);
      const st = statSync(path);
      hash.update(`${path}\0${st.mode}\0${st.size}\0${st.mtimeMs}\0`);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) hash.update(readFileSync(path));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;

// Bytes that break XML consumers: ANSI and OSC sequences, NUL and other C0 controls, invalid UTF-8, a CESU-encoded
// lone surrogate and several CDATA terminators.
const HOSTILE = String.raw`printf '\033[31mred\033[0m \033]0;title\007 nul:\000: bel:\007: bad:\377\376: cut:\342\202: lone:\355\240\200: ]]> ]]]]>> ]]>\r\n'`;

describe('nsmatrix run with real containers', () => {
  it('runs cells in parallel: exit statuses, per-cell state, artifacts, untouched source, valid reports', () => {
    const dir = project(
      'main',
      `name: e2e
matrix:
  image: [debian:bookworm]
  n: [1, 2]
fail-fast: false
steps:
  - name: fresh root
    run: test ! -e /tmp/state && echo "cell $MATRIX_N" > /tmp/state && echo written > /src/from-container
  - name: state persists between steps
    run: test "$(cat /tmp/state)" = "cell $MATRIX_N" && test "$(cat /src/from-container)" = written
  - name: artifacts
    run: echo "artifact \${{ matrix.n }}" > /artifacts/out.txt
  - name: hostile output
    run: |
      ${HOSTILE}
      test "$MATRIX_N" = 1 || exit 3
  - name: skipped by itself
    run: exit 77
`,
      { 'data.txt': 'source data\n' },
    );
    const before = treeHash(dir);
    const out = join(work, 'out-main');
    const r = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'markdown', '-r', 'html']);
    expect(r.code, r.stdout + r.stderr).toBe(1);

    // plain view: stdout is not a TTY here, so timestamped lines and no escape sequences
    expect(r.stdout).toMatch(/^\d\d:\d\d:\d\d /m);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).toMatch(/rerun: (nsmatrix|\/\S+ \/\S+\/main\.js) run /);

    const result = results(out);
    expect(result.cells.map((c) => c.outcome)).toEqual(['passed', 'failed']);
    const [one, two] = result.cells as [RunResult['cells'][0], RunResult['cells'][0]];
    expect(one.steps.map((s) => s.outcome)).toEqual(['passed', 'passed', 'passed', 'passed', 'skipped']);
    expect(two.steps.map((s) => s.outcome)).toEqual(['passed', 'passed', 'passed', 'failed', 'not-run']);
    expect(two.steps[3]!.attempts[0]!.exitCode).toBe(3);
    expect(one.strategy).toBeTruthy();
    expect(one.imageKey).toMatch(/^[0-9a-f]+$/);
    // The rerun selects the cell by id and keeps where images, results and reports go (see test/integration/cli-rerun.test.ts).
    expect(two.rerun).toMatch(/^(nsmatrix|\/\S+ \/\S+\/main\.js) run /);
    expect(two.rerun.replace(/^.*? run /, 'run ')).toBe(
      `run ${join(dir, 'nsmatrix.yaml')} --filter nsmatrix-cell=${two.id} --state-dir ${stateDir} --output ${out} --reporter junit --reporter json --reporter markdown --reporter html`,
    );

    // artifacts reach the host; the source overlay leaves the host tree byte-for-byte untouched
    expect(readFileSync(join(out, one.artifactsDir, 'out.txt'), 'utf8')).toBe('artifact 1\n');
    expect(readFileSync(join(out, two.artifactsDir, 'out.txt'), 'utf8')).toBe('artifact 2\n');
    expect(existsSync(join(dir, 'from-container'))).toBe(false);
    expect(treeHash(dir)).toBe(before);

    // every report exists; JUnit passes the project's profile despite the hostile bytes
    for (const file of ['junit.xml', 'results.json', 'summary.md', 'report.html']) expect(existsSync(join(out, file)), file).toBe(true);
    expect(schemaErrors(join(out, 'junit.xml'))).toBe('');
    const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(junit).toContain('exit status 3');
    expect(junit).not.toContain('\u001b');
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('e2e');
  });

  it('a second run reuses the cached image and replaces, never mixes, the previous results', () => {
    const dir = project('again', `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: hello\n    run: echo hello\n`);
    const out = join(work, 'out-again');
    const first = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    writeFileSync(join(dir, 'nsmatrix.yaml'), `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: bye\n    run: echo bye\n`);
    const second = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/image debian:bookworm: cached/);
    const cellDir = join(out, results(out).cells[0]!.outputDir);
    expect(readdirSync(cellDir).filter((f) => f.endsWith('.log'))).toEqual(['01-bye.log']);
  });

  it('fail-fast cancels the other cells of a real run', () => {
    const dir = project('failfast', `matrix:\n  image: [debian:bookworm]\n  n: [1, 2]\nsteps:\n  - name: s\n    run: if [ "$MATRIX_N" = 1 ]; then exit 1; else sleep 120; fi\n`);
    const out = join(work, 'out-failfast');
    const started = Date.now();
    const r = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out, '--jobs', '2']);
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(results(out).cells.map((c) => c.outcome)).toEqual(['failed', 'cancelled']);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} in the middle of a run stops it, writes results marking unfinished cells, and leaves nothing behind`, async () => {
      const dir = project(`interrupt-${signal}`, `matrix:\n  image: [debian:bookworm]\n  n: [1, 2, 3]\nsteps:\n  - name: sleep\n    run: sleep 300 & sleep 300\n  - name: after\n    run: "true"\n`);
      const out = join(work, `out-${signal}`);
      const run = startCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out, '--jobs', '2'], /step "sleep"/);
      await run.ready;
      await new Promise((r) => setTimeout(r, 1000));
      run.child.kill(signal);
      const r = await run.done;
      expect(r.code, r.stdout + r.stderr).toBe(130);
      const result = results(out);
      expect(result.interrupted).toBe(true);
      expect(result.cells.map((c) => c.outcome)).toEqual(['cancelled', 'cancelled', 'cancelled']);
      expect(result.cells[0]!.steps[1]!.outcome).toBe('not-run');
      expect(leftovers([stateDir, out])).toEqual({ mounts: [], processes: [], cgroups: [] });
      const scratch = join(stateDir, 'run');
      expect(existsSync(scratch) ? readdirSync(scratch) : []).toEqual([]);
      expect(schemaErrors(join(out, 'junit.xml'))).toBe('');
    });
  }

  // `script` gives the CLI a real terminal, as a developer's shell would.
  function underTerminal(command: string[], input: string, env: NodeJS.ProcessEnv): string {
    const line = command.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = spawnSync('sh', ['-c', `(sleep 3; printf '${input}'; sleep 2) | script -qec "${line.replace(/"/g, '\\"')}" /dev/null`], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    return r.stdout.replace(/\r/g, '');
  }

  it('on a terminal: the live view shows cells and the summary', () => {
    const dir = project('live', `matrix:\n  image: [debian:bookworm]\n  n: [1, 2]\nsteps:\n  - name: work\n    run: sleep 1\n`);
    const { CI: _ci, NO_COLOR: _nc, ...env } = process.env;
    const out = underTerminal([process.execPath, CLI, 'run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', join(work, 'out-live')], '', { ...env, TERM: 'xterm' });
    expect(out).toContain('debian:bookworm [n=1]');
    expect(out).toMatch(/\u001b\[/); // a live, coloured view: cursor and colour sequences
    expect(out).not.toMatch(/^\d\d:\d\d:\d\d /m); // not the plain timestamped lines
    expect(out).toMatch(/2 cells: 2 passed/);
  });

  it('--shell-on-failure opens a shell in the failed cell\'s own container', () => {
    const dir = project('sof', `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: breaks\n    run: echo left-by-step > /tmp/marker; exit 1\n`);
    const out = underTerminal([process.execPath, CLI, 'run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', join(work, 'out-sof'), '--shell-on-failure'], 'cat /tmp/marker; exit\\n', { ...process.env, TERM: 'xterm' });
    expect(out).toContain('opening a shell in its container');
    expect(out).toContain('left-by-step'); // only the shell's cat can print it: the step wrote it to a file
    expect(out).toMatch(/1 cell: 0 passed, 1 failed/);
  });

  it('a sharded run merged equals the unsharded run', () => {
    const dir = project('shards', `matrix:\n  image: [debian:bookworm]\n  n: [1, 2, 3]\nfail-fast: false\nsteps:\n  - name: s\n    run: test "$MATRIX_N" != 2\n  - name: t\n    run: exit 0\n`);
    const file = join(dir, 'nsmatrix.yaml');
    const all = join(work, 'shard-all');
    expect(runCli(['run', file, '--state-dir', stateDir, '-o', all]).code).toBe(1);
    const shardDirs = [1, 2].map((i) => join(work, `shard-${i}`));
    shardDirs.forEach((out, i) => runCli(['run', file, '--state-dir', stateDir, '-o', out, '--shard', `${i + 1}/2`]));
    const merged = join(work, 'shard-merged');
    const m = runCli(['merge', ...shardDirs, '-o', merged]);
    expect(m.code, m.stderr).toBe(1);
    const shape = (r: RunResult) => r.cells.map((c) => ({ id: c.id, outcome: c.outcome, steps: c.steps.map((s) => [s.outcome, s.attempts.map((a) => a.exitCode)]) }));
    expect(shape(results(merged))).toEqual(shape(results(all)));
    for (const cell of results(merged).cells) expect(existsSync(join(merged, cell.outputDir, '01-s.log'))).toBe(true);
    expect(schemaErrors(join(merged, 'junit.xml'))).toBe('');
  });
});

/**
 * Red team, input: a NUL byte anywhere in a matrix file. No environment variable, argv element, path or script can
 * hold one, so it used to end a run with "internal error" when the first step was spawned. Through the built CLI:
 * `validate` and `run` refuse it with one positioned line per NUL byte, exit 2, before anything starts.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  work = mkdtempSync('/var/tmp/nsm-redteam-input-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NUL = 'contains a NUL byte, which no environment variable, argument, path or script can hold';

function write(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

describe('NUL bytes in a matrix file', () => {
  it('an axis value reaching env through ${{ matrix.x }}: validate and run refuse it, exit 2, nothing run', () => {
    const file = write(
      'axis.yaml',
      'matrix:\n  image: [debian:bookworm]\n  x: ["a\\0b"]\nenv: { FOO: "${{ matrix.x }}" }\nsteps:\n  - name: s\n    run: echo "$FOO"\n',
    );
    const line = `axis.yaml:3:7: matrix.x[0]: ${NUL}`;
    const validate = runCli(['validate', 'axis.yaml'], { cwd: work });
    expect(validate.stderr.trim()).toBe(line);
    expect(validate.code).toBe(2);
    expect(validate.stdout).toBe('');

    const output = join(work, 'out');
    const run = runCli(['run', 'axis.yaml', '--plain', '--state-dir', stateDir, '--output', output], { cwd: work, timeoutMs: 120_000 });
    expect(run.stderr.trim()).toBe(line);
    expect(run.code).toBe(2);
    expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(existsSync(output)).toBe(false);
    expect(existsSync(file)).toBe(true);
  });

  it('every place a string can reach the environment, an argv, a path or a script, escaped or raw', () => {
    write(
      'everywhere.yaml',
      [
        'name: "n\\0m"',
        'matrix:',
        '  image: [debian:bookworm, "debian:s\\0id"]',
        '  x: [a]',
        '  include:',
        '    - { x: a, y: "q\\0" }',
        'images:',
        '  "deb\\0x": { path: /x }',
        '  debian:sid: { mirror: "http://a\\0b", setup: "a\\0" }',
        'setup: "ec\\0ho"',
        'env: { FOO: "a\\0b" }',
        'nspawn: ["--x\\0"]',
        'bind: ["/a\\0:/b"]',
        'steps:',
        '  - name: "s\\0"',
        '    run: "echo\\0"',
        '    env: { BAR: "\\0" }',
        '  - name: raw',
        '    run: echo a\0b',
        '',
      ].join('\n'),
    );
    const r = runCli(['validate', 'everywhere.yaml'], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `everywhere.yaml:1:7: name: ${NUL}`,
      `everywhere.yaml:3:28: matrix.image[1]: ${NUL}`,
      `everywhere.yaml:6:18: matrix.include[0].y: ${NUL}`,
      `everywhere.yaml:8:3: images: key "deb\\u0000x" ${NUL}`,
      `everywhere.yaml:9:25: images["debian:sid"].mirror: ${NUL}`,
      `everywhere.yaml:9:47: images["debian:sid"].setup: ${NUL}`,
      `everywhere.yaml:10:8: setup: ${NUL}`,
      `everywhere.yaml:11:13: env.FOO: ${NUL}`,
      `everywhere.yaml:12:10: nspawn[0]: ${NUL}`,
      `everywhere.yaml:13:8: bind[0]: ${NUL}`,
      `everywhere.yaml:15:11: steps[0].name: ${NUL}`,
      `everywhere.yaml:16:10: steps[0].run: ${NUL}`,
      `everywhere.yaml:17:17: steps[0].env.BAR: ${NUL}`,
      `everywhere.yaml:19:10: steps[1].run: ${NUL}`,
    ]);
  });

  it('said once per value, and the other problems of the file are still reported with it', () => {
    write(
      'mixed.yaml',
      'matrix:\n  image: [debian:bookworm, "debian:s\\0id"]\nbind: ["/a\\0:/b"]\nbogus: 1\nsteps:\n  - name: s\n    run: "true"\n    timeout: 5q\n',
    );
    const r = runCli(['validate', 'mixed.yaml'], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `mixed.yaml:2:28: matrix.image[1]: ${NUL}`,
      `mixed.yaml:3:8: bind[0]: ${NUL}`,
      'mixed.yaml:4:1: unknown key "bogus"',
      'mixed.yaml:8:14: steps[0].timeout: invalid duration "5q" (use e.g. 90s, 30m, 1h30m)',
    ]);
  });

  it('a NUL byte in a step env value or an include value alone is enough', () => {
    write('step-env.yaml', 'matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: s\n    run: "true"\n    env: { A: "x\\0" }\n');
    write('include.yaml', 'matrix:\n  include:\n    - { image: debian:bookworm, v: "\\0" }\nsteps:\n  - name: s\n    run: "true"\n');
    const stepEnv = runCli(['validate', 'step-env.yaml'], { cwd: work });
    expect([stepEnv.code, stepEnv.stderr.trim()]).toEqual([2, `step-env.yaml:6:15: steps[0].env.A: ${NUL}`]);
    const include = runCli(['validate', 'include.yaml'], { cwd: work });
    expect([include.code, include.stderr.trim()]).toEqual([2, `include.yaml:3:36: matrix.include[0].v: ${NUL}`]);
  });
});

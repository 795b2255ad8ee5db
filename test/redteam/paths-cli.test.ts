/**
 * Red team, paths: every host path that reaches a container or that nsmatrix writes as root, given through the
 * built CLI. Refusals are one line (`nsmatrix: ...` naming the flag, or `FILE:LINE:COL: ...`), exit 2, before
 * anything starts; the mistakes of issue 11 (`-o FILE`, `-o a -o b`, `-o /proc/nope`, ...) too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI, runCli, type CliResult } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { project } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;
const mounts: string[] = [];

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-paths-');
});
afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  rmSync(work, { recursive: true, force: true });
});

const MATRIX = 'matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: s\n    run: "true"\n';

/** Runs the CLI and kills it (SIGKILL) if it has not exited after `seconds`: the old code spun forever here. */
function runBounded(args: string[], seconds = 30): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: seconds * 1000, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2 with exactly one stderr line matching `line`, nothing else. */
function expectRefused(r: CliResult, line: RegExp, what: string): void {
  expect(r.signal, `${what}: killed (hung)\n${r.stderr}`).toBeNull();
  expect(r.code, `${what}: ${r.stdout}${r.stderr}`).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, what).toHaveLength(1);
  expect(lines[0], what).toMatch(line);
  expect(r.stderr, what).not.toMatch(/internal error|\n\s+at /);
}

describe('--output and --state-dir', () => {
  it('refuses /, the state directory and its ancestors (also through a symlink), and what lies inside it', () => {
    const state = join(work, 'st', 'state');
    mkdirSync(state, { recursive: true });
    symlinkSync(join(work, 'st'), join(work, 'link-to-st'));
    const file = project(join(work, 'p-out'), MATRIX);
    for (const output of ['/', state, join(work, 'st'), join(work, 'link-to-st'), work, join(state, 'images')]) {
      const r = runBounded(['run', file, '--state-dir', state, '-o', output]);
      expectRefused(r, new RegExp(`^nsmatrix: --output ${output.replace(/[/.]/g, '\\$&')}: refusing to write (in.* the state directory|into the host's root directory)`), output);
    }
    expect(readdirSync(state)).toEqual([]); // nothing ran, nothing was written
  });

  it('turns -o FILE, -o FILE/x, -o a -o b, -o /proc/nope and a proc mount elsewhere into one-line usage errors', () => {
    const file = project(join(work, 'p-mistakes'), MATRIX);
    const regular = join(work, 'a-file');
    writeFileSync(regular, 'precious\n');
    // A proc file system mounted outside /proc: mkdir(2) answers ENOENT below an existing directory there, which
    // sent Node's recursive mkdir into an endless loop (100% CPU, the first SIGTERM ignored).
    const procMount = join(work, 'proc-mount');
    mkdirSync(procMount);
    execFileSync('mount', ['-t', 'proc', 'proc', procMount]);
    mounts.push(procMount);
    const cases: [string[], RegExp][] = [
      [['-o', regular], /^nsmatrix: --output .*a-file: .*exists and is not a directory$/],
      [['-o', join(regular, 'x')], /^nsmatrix: --output .*a-file\/x: .*not a directory$/],
      [['-o', join(work, 'a'), '-o', join(work, 'b')], /^nsmatrix: --output given 2 times/],
      [['-o', '/proc/nope'], /^nsmatrix: --output \/proc\/nope: .*\/proc/],
      [['-o', join(procMount, 'nope')], /^nsmatrix: --output .*proc-mount\/nope: cannot create .*no such file or directory$/],
      [['-o', ''], /^nsmatrix: --output needs a directory/],
    ];
    for (const [args, line] of cases) {
      const r = runBounded(['run', file, '--state-dir', join(work, 'state-mistakes'), ...args]);
      expectRefused(r, line, args.join(' '));
    }
    expect(readFileSync(regular, 'utf8')).toBe('precious\n');
    expect(existsSync(join(work, 'a')) || existsSync(join(work, 'b'))).toBe(false);
  });

  it('turns the same mistakes with --state-dir into one-line usage errors', () => {
    const file = project(join(work, 'p-state'), MATRIX);
    const regular = join(work, 'state-file');
    writeFileSync(regular, 'x');
    const other = join(work, 'not-a-state');
    mkdirSync(join(other, 'home'), { recursive: true });
    const cases: [string[], RegExp][] = [
      [['--state-dir', regular], /^nsmatrix: --state-dir .*state-file: .*exists and is not a directory$/],
      [['--state-dir', join(regular, 'x')], /^nsmatrix: --state-dir .*state-file\/x: .*is not a directory$/],
      [['--state-dir', join(work, 's1'), '--state-dir', join(work, 's2')], /^nsmatrix: --state-dir given 2 times/],
      [['--state-dir', '/proc/nope'], /^nsmatrix: --state-dir \/proc\/nope: .*\/proc/],
      [['--state-dir', '/'], /^nsmatrix: --state-dir \/: refusing to use the host's root directory/],
      [['--state-dir', other], /^nsmatrix: --state-dir .*not-a-state: .*other things than nsmatrix state/],
    ];
    for (const [args, line] of cases) {
      const r = runBounded(['run', file, '-o', join(work, 'out-state-mistakes'), ...args]);
      expectRefused(r, line, args.join(' '));
    }
    expect(statSync(other).mode & 0o777).not.toBe(0o700);
  });
});

describe('host paths reaching a container', () => {
  const refusedRun = (name: string, text: string, line: RegExp, options: { output?: string; state?: string } = {}) => {
    const file = project(join(work, name), text);
    const out = options.output ?? join(work, `${name}-out`);
    const r = runBounded(['run', file, '--state-dir', options.state ?? stateDir, '-o', out]);
    expectRefused(r, line, name);
    expect(existsSync(join(out, 'results.json')), name).toBe(false);
    return { file, out };
  };

  it('refuses binds of /proc, /sys, /dev and anything under them, also through a symlink, at FILE:LINE:COL', () => {
    symlinkSync('/proc/self', join(work, 'proc-link'));
    for (const [i, host] of ['/proc', '/proc/sys/kernel', '/sys/fs/cgroup', '/dev', '/dev/shm', join(work, 'proc-link')].entries()) {
      const text = `matrix:\n  image: [debian:bookworm]\nbind:\n  - ${JSON.stringify(`${host}:/mnt/x`)}\nsteps:\n  - name: s\n    run: "true"\n`;
      refusedRun(`bind-pseudo-${i}`, text, /^.*nsmatrix\.yaml:4:\d+: bind ".*": refusing to expose .* it is in \/(proc|sys|dev)/);
    }
  });

  it('refuses a source: rw tree containing the output directory or the state directory, and any source containing the state directory', () => {
    // The output directory inside the matrix directory: a step would rewrite the results being written.
    const rw = 'matrix:\n  image: [debian:bookworm]\nsource: rw\nsteps:\n  - name: s\n    run: "true"\n';
    const dir = join(work, 'src-rw-out');
    const { out } = refusedRun('src-rw-out', rw, /nsmatrix\.yaml:3:\d+: source: rw: the source directory .*: refusing to expose the output directory/, { output: join(dir, 'results') });
    expect(existsSync(out)).toBe(false);
    // The state directory inside the matrix directory: refused in every mode.
    for (const mode of ['rw', 'ro', 'overlay']) {
      const name = `src-${mode}-state`;
      const text = `matrix:\n  image: [debian:bookworm]\nsource: ${mode}\nsteps:\n  - name: s\n    run: "true"\n`;
      const state = join(work, name, 'state');
      refusedRun(name, text, /nsmatrix\.yaml:3:\d+: source: \w+: the source directory .*: refusing to expose nsmatrix's state directory/, { state: `${state}` });
      expect(existsSync(state), name).toBe(false);
    }
  });

  it('refuses images: X: path: / (also through a symlink) and paths in /proc, at FILE:LINE:COL', () => {
    symlinkSync('/', join(work, 'root-link'));
    for (const [i, path] of ['/', join(work, 'root-link'), '/proc/1/root'].entries()) {
      const text = `matrix:\n  image: [mine]\nimages:\n  mine:\n    path: ${JSON.stringify(path)}\nsteps:\n  - name: s\n    run: "true"\n`;
      refusedRun(`image-path-${i}`, text, /nsmatrix\.yaml:5:\d+: images: mine: path: .*refusing to expose (the host's root directory|.*\/proc)/);
    }
  });
});

describe('nsmatrix shell', () => {
  it('refuses --bind of /proc, /sys or /dev and a current directory of / (the source at /src)', () => {
    for (const bind of ['/proc:/p', '/sys/kernel:/k', '/dev:/d']) {
      const r = runBounded(['shell', 'debian:bookworm', '--state-dir', stateDir, '--bind', bind, '--', 'true']);
      expectRefused(r, new RegExp(`^nsmatrix: --bind ${bind}: bind ".*": refusing to expose .*it is in /(proc|sys|dev)`), bind);
    }
    const r = spawnSync(process.execPath, [CLI, 'shell', 'debian:bookworm', '--state-dir', stateDir, '--', 'true'], { cwd: '/', encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    expectRefused({ code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, /^nsmatrix: the current directory is mounted at \/src: source: overlay: .*root directory/, 'cwd /');
  });
});

describe('cell directories', () => {
  it("refuses, before anything runs, to replace a directory of a cell's name that nsmatrix did not make", () => {
    const file = project(join(work, 'cell-dir'), MATRIX);
    const out = join(work, 'cell-dir-out');
    const [cell] = JSON.parse(runCli(['list', file, '--format', 'json']).stdout) as { id: string }[];
    mkdirSync(join(out, cell!.id), { recursive: true });
    writeFileSync(join(out, cell!.id, 'my-notes.txt'), 'mine\n');
    const r = runBounded(['run', file, '--state-dir', stateDir, '-o', out], 300);
    expect(readdirSync(join(out, cell!.id)), 'the user\'s directory').toEqual(['my-notes.txt']);
    expectRefused(r, /^nsmatrix: --output .*: .* was not made by nsmatrix .*refusing to replace it/, 'unmarked cell dir');
    expect(existsSync(join(out, 'results.json'))).toBe(false);
  });
});

describe('nsmatrix doctor', () => {
  it('reports a state directory other users can reach, with the chmod that fixes it', () => {
    const state = join(work, 'doctor-state');
    mkdirSync(join(state, 'run'), { recursive: true });
    mkdirSync(join(state, 'images'));
    chmodSync(state, 0o755);
    chmodSync(join(state, 'run'), 0o755);
    const r = runCli(['doctor', '--state-dir', state]);
    expect(r.stdout).toMatch(new RegExp(`FAIL\\s+state dir modes\\s+other users can reach ${state} \\(0755\\), ${state}/run \\(0755\\)`));
    expect(r.stdout).toMatch(new RegExp(`fix: chmod 700 ${state} ${state}/run`));
  });
});

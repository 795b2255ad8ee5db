/**
 * Ordinary mistakes get one line `nsmatrix: ...` and exit 2, never an internal error, a hang or a silent success
 * (issue 11). Everything here runs the built CLI without containers.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = resolve('dist/src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'nsm-everyday-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MATRIX = join(tmp, 'm.yaml');
writeFileSync(MATRIX, 'matrix:\n  image: [debian:bookworm, debian:trixie]\n  cc: [gcc]\nsteps:\n  - name: s\n    run: "true"\n');

function nsmatrix(args: string[], env: NodeJS.ProcessEnv = {}) {
  // A hang (Node's recursive mkdir on procfs) must fail the test, not stall it.
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp, timeout: 20_000, env: { ...process.env, NO_COLOR: '1', ...env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2 with a single `nsmatrix: ` line matching `message`. */
function expectUsage(r: ReturnType<typeof nsmatrix>, message: RegExp) {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^nsmatrix: /);
  expect(r.stderr).not.toMatch(/internal error|error: error|NaN/);
  expect(r.stderr).toMatch(message);
}

/** A shard's output directory as `run --shard I/N` leaves it: results.json and one cell directory. */
function shardDir(name: string, index: number, total: number, cellId: string, position: number): string {
  const dir = join(tmp, name);
  mkdirSync(join(dir, cellId, 'artifacts'), { recursive: true });
  writeFileSync(join(dir, cellId, '.nsmatrix-cell'), '');
  writeFileSync(join(dir, cellId, '01-s.log'), 'ok\n');
  const result = {
    version: 1, tool: { name: 'nsmatrix', version: '0.1.0' },
    matrix: { name: 'm', file: MATRIX, axes: [{ key: 'image', values: ['debian:bookworm', 'debian:trixie'] }], stepNames: ['s'] },
    host: { hostname: 'h', nspawnVersion: null, systemdIsPid1: false }, startedAt: '2026-12-01T00:00:00.000Z', durationMs: 10,
    outcome: 'passed', interrupted: false, shard: { index, total },
    cells: [{
      id: cellId, position, name: cellId, image: 'debian:bookworm', values: { image: 'debian:bookworm' }, continueOnError: false,
      startedAt: '2026-12-01T00:00:00.000Z', outputDir: cellId, artifactsDir: `${cellId}/artifacts`, rerun: 'nsmatrix run', outcome: 'passed',
      durationMs: 5, steps: [],
    }],
  };
  writeFileSync(join(dir, 'results.json'), JSON.stringify(result));
  return dir;
}

describe('ordinary mistakes: one line, exit 2', () => {
  it.each([
    [['list', MATRIX, '--format', 'json', '--format', 'table'], /--format given 2 times \(json, table\): give it once/],
    [['run', MATRIX, '--jobs', 'abc'], /--jobs must be a whole number >= 1, got "abc"/],
    [['run', MATRIX, '-j', '2', '-j', '3'], /--jobs given 2 times/],
    [['list', MATRIX, '--max-cells', 'abc'], /--max-cells must be a whole number >= 1, got "abc"/],
    [['list', MATRIX, '--max-cells', '-1'], /--max-cells must be a whole number >= 1, got "-1"/],
    [['validate', MATRIX, '--max-cells', '10000000'], /--max-cells 10000000: at most 100000/],
    [['merge', join(tmp, 'nope'), '-o', '/proc/nope'], /--output \/proc\/nope: .*\/proc/],
    [['merge', join(tmp, 'nope'), '-o', MATRIX], /exists and is not a directory/],
  ])('%j', (args, message) => expectUsage(nsmatrix(args), message));

  it('gc, images list and images prune refuse a foreign state directory and touch nothing in it', () => {
    const foreign = join(tmp, 'foreign');
    mkdirSync(join(foreign, 'run', 'precious'), { recursive: true });
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    for (const args of [['gc'], ['images', 'list'], ['images', 'prune']]) {
      expectUsage(nsmatrix([...args, '--state-dir', foreign]), /holds other things than nsmatrix state/);
    }
    expect(existsSync(join(foreign, 'run', 'precious'))).toBe(true);
    expectUsage(nsmatrix(['gc', '--state-dir', '/proc/nsm']), /\/proc/);
  });

  it('images rm of an unknown name exits 2 with the names there are', () => {
    const state = join(tmp, 'state');
    expectUsage(nsmatrix(['images', 'rm', 'nope', '--state-dir', state]), /images rm nope: no image named or keyed nope .*\(the cache is empty\)/);
  });

  it('commands that take several names take them all (not "given 2 times")', () => {
    const state = join(tmp, 'state');
    expectUsage(nsmatrix(['cache', 'rm', 'aaaa', 'bbbb', '--state-dir', state]), /^nsmatrix: cache rm: aaaa matches 0 caches/);
    expectUsage(nsmatrix(['images', 'rm', 'nope', 'nope2', '--state-dir', state]), /images rm nope: no image named or keyed nope/);
  });

  it('run --filter that matches no cell exits 2, listing the values there are', () => {
    expectUsage(nsmatrix(['run', MATRIX, '--filter', 'image=debian:nope']), /matches no cell \(values: image: "debian:bookworm", "debian:trixie"\)/);
    expectUsage(nsmatrix(['list', MATRIX, '--filter', 'image=debian:bookwrom']), /did you mean "debian:bookworm"/);
    // An empty shard is not a mistake: a matrix may have fewer cells than shards.
    expect(nsmatrix(['list', MATRIX, '--shard', '3/3']).code).toBe(0);
  });
});

describe('merge', () => {
  it('warns about a missing shard and exits 2; merging every shard is quiet', () => {
    const one = shardDir('s1', 1, 2, 'debian-bookworm', 0);
    const r = nsmatrix(['merge', one, '-o', join(tmp, 'merged-1')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^nsmatrix: warning: shard 2 of 2 missing/);
    expect(existsSync(join(tmp, 'merged-1', 'results.json'))).toBe(true);
    const two = shardDir('s2', 2, 2, 'debian-trixie', 1);
    const all = nsmatrix(['merge', one, two, '-o', join(tmp, 'merged-all')]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toBe('');
    expect(all.stdout).toMatch(/merged 2 result sets: 2 cells, passed/);
  });

  it('never overwrites a directory of the user that has a cell\'s name', () => {
    const one = shardDir('s3', 1, 1, 'debian-bookworm', 0);
    const out = join(tmp, 'mine');
    mkdirSync(join(out, 'debian-bookworm'), { recursive: true });
    writeFileSync(join(out, 'debian-bookworm', '01-s.log'), 'my own file');
    expectUsage(nsmatrix(['merge', one, '-o', out]), /was not made by nsmatrix/);
    expect(readFileSync(join(out, 'debian-bookworm', '01-s.log'), 'utf8')).toBe('my own file');
  });

  it('help shows no "[required] [default: []]" and says which reports it writes', () => {
    const help = nsmatrix(['merge', '--help']).stdout;
    expect(help).not.toContain('[default: []]');
    expect(help).toMatch(/default: junit, json/);
  });
});

describe('help and error style', () => {
  it('completion zsh prints a zsh script, completion bash a bash one, completion --help prints help', () => {
    const zsh = nsmatrix(['completion', 'zsh']);
    expect(zsh.code, zsh.stderr).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef nsmatrix/);
    const bash = nsmatrix(['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toMatch(/complete -o bashdefault -o default -F/);
    const help = nsmatrix(['completion', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^nsmatrix completion \[shell\]/);
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).not.toContain('###-begin');
  });

  it('completes reporter names from the registry after --reporter', () => {
    const r = nsmatrix(['--get-yargs-completions', 'run', '--reporter', '']);
    expect(r.stdout.trim().split('\n')).toEqual(['junit', 'json', 'markdown', 'html']);
  });

  it.each([['images'], ['images', 'list'], ['images', 'rm'], ['doctor'], ['gc']])('%j --help has examples', (...args) => {
    const r = nsmatrix([...args, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
  });

  it('shell IMAGE sh -c x says to put the command after --', () => {
    const r = nsmatrix(['shell', 'debian:sid', 'sh', '-c', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('put the command after --, e.g. nsmatrix shell debian:sid -- sh -c x');
  });

  it('every error line starts with "nsmatrix: ", with a did-you-mean for a mistyped command', () => {
    const r = nsmatrix(['lsit']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^nsmatrix: unknown command "lsit" \(did you mean "list"\?\)/);
    for (const args of [['run', MATRIX, '--reporter', 'xml'], ['list', MATRIX, '--filter', 'nope'], ['images', 'prune', '--older-than', 'soon', '--state-dir', join(tmp, 'st2')]]) {
      const e = nsmatrix(args);
      expect(e.code, e.stderr).toBe(2);
      for (const line of e.stderr.trimEnd().split('\n')) expect(line).toMatch(/^nsmatrix: (?!nsmatrix|error:)/);
    }
  });

  it('run and merge help name the reporters and their defaults from the registry', () => {
    for (const command of ['run', 'merge']) {
      const help = nsmatrix([command, '--help']).stdout.replace(/\s+/g, ' ');
      expect(help).toContain('junit (junit.xml), json (results.json), markdown (summary.md), html (report.html)');
      expect(help).toContain('[default: junit, json]');
    }
  });
});

describe('image references at validate time', () => {
  it('validate (and run) report an unknown suite at its position with a did-you-mean, exit 2', () => {
    const file = join(tmp, 'bad-image.yaml');
    writeFileSync(file, 'matrix:\n  image: [debian:bookworm, debian:bookwrom]\n  include:\n    - { image: "ubuntu:nobel", x: 1 }\nsteps:\n  - name: a\n    run: "true"\n');
    for (const command of ['validate', 'run', 'list']) {
      const r = nsmatrix([command, file]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${file}:2:28: image "debian:bookwrom": unknown debian suite "bookwrom" (did you mean "bookworm"?)`);
      expect(r.stderr).toContain(`${file}:4:9: image "ubuntu:nobel": unknown ubuntu suite "nobel" (did you mean "noble"?)`);
    }
  });

  it("validate reports an unknown suite in shell: image at its position, though no cell uses it", () => {
    const file = join(tmp, 'bad-shell-image.yaml');
    writeFileSync(file, 'matrix:\n  image: [debian:bookworm]\nshell:\n  image: debian:trixi\nsteps:\n  - name: a\n    run: "true"\n');
    const r = nsmatrix(['validate', file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^.*:4:3: image "debian:trixi": unknown debian suite "trixi" \(did you mean "trixie"\?\) \(known: [a-z, ]+\)\n$/);
    expect(r.stderr.startsWith(`${file}:4:3: `)).toBe(true);
  });
});

/** Whether `nobody` can run the built CLI (not where the checkout sits below a directory only root may enter). */
const nobodyCanRun = spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', CLI]).status === 0;

describe('as another user than root', () => {
  // runtime-doctor.test.ts checks doctor's verdicts for a non-root host wherever the checkout is.
  it.skipIf(!nobodyCanRun)('run says "run as root" in one nsmatrix: line; doctor says so too instead of blaming cgroups', () => {
    chmodSync(tmp, 0o755);
    const as = (args: string[]) => spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, CLI, ...args], { encoding: 'utf8', cwd: '/tmp', env: { ...process.env, NO_COLOR: '1' } });
    // State and output outside the matrix's directory (which is mounted at /src).
    const run = as(['run', MATRIX, '--state-dir', `/tmp/nsm-nobody-state-${process.pid}`, '-o', `/tmp/nsm-nobody-out-${process.pid}`]);
    expect(run.stderr).toMatch(/^nsmatrix: run as root: starting containers needs root/);
    const doctor = as(['doctor', '--state-dir', join(tmp, 'nobody-state')]);
    expect(doctor.stdout).toMatch(/nsmatrix: run as root/);
    expect(doctor.stdout).not.toMatch(/FAIL\s+cgroups/);
  });
});

describe('--max-cells help', () => {
  it('states the matrix stage\'s own default and limit', async () => {
    const { DEFAULT_MAX_CELLS, HARD_COMBINATION_LIMIT } = await import('../../src/matrix/expand.js');
    const help = nsmatrix(['list', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toContain(`(at most ${HARD_COMBINATION_LIMIT})`);
    expect(help).toContain(`[default: ${DEFAULT_MAX_CELLS}]`);
  });
});

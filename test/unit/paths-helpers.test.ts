/**
 * The path helpers of src/lib: directories made without Node's `mkdir -p` (which spins forever under /proc), the
 * state directory kept private at every start, the places no container and no --output may reach.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { exposureProblem, realOrResolved } from '../../src/lib/host-paths.js';
import { createExclusive, ensureDirectory, securePrivateState, stateModeProblems, stateOwnerProblems } from '../../src/lib/private-dir.js';
import { checkOutputDir, checkStateDir } from '../../src/lib/run-paths.js';

const base = mkdtempSync(join(tmpdir(), 'nsm-paths-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const mode = (path: string) => statSync(path).mode & 0o7777;

function usageLine(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).lines).toHaveLength(1);
    return (error as UsageError).lines[0]!;
  }
  throw new Error('expected a UsageError');
}

describe('ensureDirectory', () => {
  it('creates every missing level with the given mode and returns the real path', () => {
    const dir = join(base, 'a', 'b', 'c');
    expect(ensureDirectory(dir, { mode: 0o700, label: '--output x' })).toBe(dir);
    for (const d of [join(base, 'a'), join(base, 'a', 'b'), dir]) expect(mode(d)).toBe(0o700);
    expect(ensureDirectory(dir, { mode: 0o700, label: '--output x' })).toBe(dir); // existing: fine
  });

  it('refuses a file, a path below a file, and /proc (directly or through a symlink) with one line naming the label', () => {
    const file = join(base, 'file');
    writeFileSync(file, 'x');
    symlinkSync('/proc/self', join(base, 'to-proc'));
    expect(usageLine(() => ensureDirectory(file, { mode: 0o755, label: '--output F' }))).toMatch(/^nsmatrix: --output F: .*exists and is not a directory/);
    expect(usageLine(() => ensureDirectory(join(file, 'x'), { mode: 0o755, label: '--output F/x' }))).toMatch(/^nsmatrix: --output F\/x: .*file is not a directory/);
    // Node's own recursive mkdir never returns for these (ENOENT under an existing parent): ours answers at once.
    expect(usageLine(() => ensureDirectory('/proc/nope/x', { mode: 0o755, label: '--output /proc/nope/x' }))).toMatch(/in \/proc/);
    expect(usageLine(() => ensureDirectory(join(base, 'to-proc', 'nope'), { mode: 0o755, label: '--output L' }))).toMatch(/in \/proc/);
  });
});

describe('securePrivateState', () => {
  it('tightens an existing 0755 state directory, its run/ and its lock and log files, and creates the rest 0700', () => {
    const state = join(base, 'state');
    mkdirSync(join(state, 'run'), { recursive: true, mode: 0o755 });
    mkdirSync(join(state, 'locks'), { mode: 0o777 });
    writeFileSync(join(state, 'locks', 'k.lock'), '', { mode: 0o644 });
    chmodSync(state, 0o755);
    chmodSync(join(state, 'run'), 0o755);
    expect(stateModeProblems(state).map((p) => p.path).sort()).toEqual([state, join(state, 'locks'), join(state, 'locks', 'k.lock'), join(state, 'run')].sort());
    securePrivateState(state, '--state-dir s');
    for (const sub of ['', 'run', 'images', 'tmp', 'locks', 'logs']) expect(mode(join(state, sub)), sub).toBe(0o700);
    expect(mode(join(state, 'locks', 'k.lock'))).toBe(0o600);
    expect(stateModeProblems(state)).toEqual([]);
  });

  it('secures again what changed since this process last did: a loosened directory, a state directory made anew', () => {
    const state = join(base, 'again');
    securePrivateState(state, '--state-dir a');
    chmodSync(join(state, 'images'), 0o755);
    securePrivateState(state, '--state-dir a', { foreign: 'keep-mode' });
    expect(mode(join(state, 'images'))).toBe(0o700);
    // Removed and made again (with nothing in it) between two calls: the second must not take it as done.
    rmSync(state, { recursive: true });
    mkdirSync(state, { mode: 0o755 });
    securePrivateState(state, '--state-dir a');
    for (const sub of ['', 'run', 'images', 'tmp', 'locks', 'logs']) expect(mode(join(state, sub)), sub).toBe(0o700);
  });

  it('never makes / or a directory holding other things private', () => {
    expect(usageLine(() => securePrivateState('/', '--state-dir /'))).toMatch(/root directory/);
    const other = join(base, 'var-like');
    mkdirSync(join(other, 'tmp'), { recursive: true });
    mkdirSync(join(other, 'lib'));
    chmodSync(other, 0o755);
    expect(usageLine(() => securePrivateState(other, '--state-dir v'))).toMatch(/^nsmatrix: --state-dir v: .*other things/);
    expect(mode(other)).toBe(0o755);
    expect(usageLine(() => checkStateDir('/sys/kernel/x', '--state-dir k'))).toMatch(/in \/sys/);
    // A file system of its own (lost+found at its root) is fine.
    const disk = join(base, 'own-fs');
    mkdirSync(join(disk, 'lost+found'), { recursive: true });
    expect(securePrivateState(disk, '--state-dir d')).toBe(disk);
    expect(mode(disk)).toBe(0o700);
  });
});

describe('a state directory another user owns', () => {
  it('is refused by the commands (that user could open it up again), reported by stateOwnerProblems', () => {
    const state = join(base, 'owned');
    mkdirSync(state, { mode: 0o700 });
    chownSync(state, 65534, 65534);
    expect(stateOwnerProblems(state)).toEqual([{ path: state, uid: 65534 }]);
    expect(usageLine(() => securePrivateState(state, '--state-dir o'))).toMatch(/^nsmatrix: --state-dir o: .*owned by uid 65534/);
    expect(securePrivateState(state, 'store', { foreign: 'keep-mode' })).toBe(state);
  });
});

describe('checkOutputDir', () => {
  const state = join(base, 'out-state', 'nsm');
  mkdirSync(state, { recursive: true });
  symlinkSync(join(base, 'out-state'), join(base, 'link-to-state-parent'));

  it.each([
    ['/', /root directory/],
    [state, /state directory/],
    [join(base, 'out-state'), /state directory/],
    [join(base, 'link-to-state-parent'), /state directory/],
    [join(state, 'images', 'x'), /inside the state directory/],
    ['/proc/nope', /in \/proc/],
    ['/dev/shm/x', /in \/dev/],
  ])('refuses %s', (output, reason) => {
    expect(usageLine(() => checkOutputDir(output, state))).toMatch(new RegExp(`^nsmatrix: --output ${output.replace(/[/.]/g, '\\$&')}: .*${reason.source}`));
  });

  it('accepts an ordinary directory, existing or not', () => {
    expect(checkOutputDir(join(base, 'results'), state)).toBe(join(base, 'results'));
  });
});

describe('exposureProblem', () => {
  const dirs = { stateDir: '/var/lib/nsmatrix', outputDir: '/home/u/p/results' };
  it.each([
    ['/', "root directory"],
    ['/proc', '/proc'],
    ['/sys/fs/cgroup', '/sys'],
    ['/dev', '/dev'],
    ['/var', 'state directory'],
    ['/var/lib/nsmatrix/images', 'state directory'],
    ['/home/u/p', 'output directory'],
    ['/run', '/run/nsmatrix'],
    ['/run/nsmatrix/code-cache', '/run/nsmatrix'],
  ])('refuses %s', (path, reason) => {
    expect(exposureProblem(path, dirs)).toContain(reason);
  });

  it('lets a read-only view contain the output directory, never the state directory', () => {
    expect(exposureProblem('/home/u/p', dirs, { readOnly: true })).toBeUndefined();
    expect(exposureProblem('/var', dirs, { readOnly: true })).toContain('state directory');
    expect(exposureProblem('/srv/data', dirs)).toBeUndefined();
    expect(exposureProblem('/run/nsmatrix', dirs, { readOnly: true })).toContain('/run/nsmatrix');
    expect(exposureProblem('/run/dbus', dirs)).toBeUndefined();
  });

  it('realOrResolved resolves the existing part of a path through symlinks', () => {
    symlinkSync(base, join(base, 'self-link'));
    expect(realOrResolved(join(base, 'self-link', 'missing', 'x'))).toBe(join(realOrResolved(base), 'missing', 'x'));
  });
});

describe('removal never follows symlinks', () => {
  it('fs.rm recursive unlinks a symlink to a directory instead of emptying its target', async () => {
    const outside = join(base, 'precious');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    const cell = join(base, 'cell');
    mkdirSync(join(cell, 'artifacts'), { recursive: true });
    symlinkSync(outside, join(cell, 'artifacts', 'link'));
    symlinkSync(join(outside, 'keep'), join(cell, 'file-link'));
    await rm(cell, { recursive: true, force: true });
    expect(existsSync(cell)).toBe(false);
    expect(readdirSync(outside)).toEqual(['keep']);
  });

  it('createExclusive never overwrites nor writes through a symlink', () => {
    const target = join(base, 'target');
    writeFileSync(target, 'mine');
    symlinkSync(target, join(base, 'marker-link'));
    expect(createExclusive(join(base, 'marker-link'))).toBe(false);
    expect(createExclusive(join(base, 'fresh-marker'))).toBe(true);
    expect(createExclusive(join(base, 'fresh-marker'))).toBe(false);
  });
});

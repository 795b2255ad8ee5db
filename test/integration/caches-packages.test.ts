/**
 * The shared package download cache, for real (issue 15): a second run of a step that apt-installs a package
 * downloads nothing ("Need to get 0 B"), four cells of each of two concurrent runs install from one pool at once
 * and all pass, and `cache-packages: false` neither reads nor fills the pool.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { packagePoolsDir } from '../../src/caches/packages.js';
import { CLI, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;
// Small packages in every Debian release, not in the base image.
const PACKAGES = ['hello', 'sl'];

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-caches-packages-');
});
afterAll(() => {
  if (!process.env.NSMATRIX_KEEP_WORK) rmSync(work, { recursive: true, force: true });
});

function matrix(name: string, options: { cells: number; cachePackages?: boolean }): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'matrix:',
      '  image: [debian:bookworm]',
      `  n: [${Array.from({ length: options.cells }, (_, i) => i + 1).join(', ')}]`,
      'max-parallel: 4',
      ...(options.cachePackages === undefined ? [] : [`cache-packages: ${options.cachePackages}`]),
      'timeout: 5m',
      'steps:',
      '  - name: install',
      '    run: |',
      '      apt-get update -qq',
      `      apt-get install -y --no-install-recommends ${PACKAGES.join(' ')}`,
      '      hello',
    ].join('\n') + '\n',
  );
  return file;
}

/** Every pool file of the packages used here, removed: the next run starts from a cold cache for them. */
function poolNames(): string[] {
  try {
    return readdirSync(packagePoolsDir(stateDir));
  } catch {
    return [];
  }
}

function dropFromPools(): void {
  for (const pool of poolNames()) {
    for (const name of readdirSync(join(packagePoolsDir(stateDir), pool))) {
      if (PACKAGES.some((p) => name.startsWith(`${p}_`))) rmSync(join(packagePoolsDir(stateDir), pool, name));
    }
  }
}

function poolFiles(): string[] {
  return poolNames().flatMap((pool) => readdirSync(join(packagePoolsDir(stateDir), pool)).filter((n) => PACKAGES.some((p) => n.startsWith(`${p}_`))));
}

/** "Need to get" of each cell's install log, e.g. "0 B/69.2 kB" or "69.2 kB". */
function needToGet(out: string): string[] {
  const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
  return result.cells.map((cell) => {
    const log = readFileSync(join(out, cell.steps[0]!.attempts[0]!.logPath), 'utf8');
    return /Need to get (.+?) of archives\./.exec(log)?.[1] ?? `no "Need to get" in ${cell.id}`;
  });
}

function runAsync(file: string, out: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--plain', '--jobs', '4'], { stdio: 'ignore', env: { ...process.env, NO_COLOR: '1' } });
    child.on('close', (code) => resolve(code));
  });
}

describe('shared package downloads', () => {
  it('the second run of an apt-installing step downloads nothing', () => {
    dropFromPools();
    const file = matrix('twice', { cells: 1 });
    const first = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'first'), '--plain'], { timeoutMs: 900_000 });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(needToGet(join(work, 'first'))[0]).not.toMatch(/^0 B/);
    expect(poolFiles().length).toBe(PACKAGES.length);

    const second = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'second'), '--plain'], { timeoutMs: 900_000 });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(needToGet(join(work, 'second'))).toEqual([expect.stringMatching(/^0 B\//)]);
  }, 900_000);

  it('four cells of two concurrent runs install from one cold pool at once, all pass, and leave it usable', async () => {
    dropFromPools();
    const file = matrix('concurrent', { cells: 4 });
    const codes = await Promise.all([runAsync(file, join(work, 'conc-a')), runAsync(file, join(work, 'conc-b'))]);
    expect(codes).toEqual([0, 0]);
    expect(poolFiles().sort()).toHaveLength(PACKAGES.length);
    const after = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'conc-after'), '--plain'], { timeoutMs: 900_000 });
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(needToGet(join(work, 'conc-after'))).toEqual(Array(4).fill(expect.stringMatching(/^0 B\//)));
  }, 900_000);

  it('an image build installs from the pool, adds what it downloaded, and keeps no package in the image', () => {
    // The pool holds the packages (earlier tests); a setup line of this run's own makes a new top layer.
    expect(poolFiles()).toHaveLength(PACKAGES.length);
    const file = join(work, 'build.yaml');
    writeFileSync(file, `matrix: { image: [debian:bookworm] }\npackages: [${PACKAGES.join(', ')}]\nsetup: echo ${process.pid}-${Date.now()}\nsteps:\n  - { name: s, run: hello }\n`);
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'build'), '--plain'], { timeoutMs: 900_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const key = (JSON.parse(readFileSync(join(work, 'build', 'results.json'), 'utf8')) as RunResult).cells[0]!.imageKey!;
    const buildLog = readFileSync(join(stateDir, 'images', key, 'build.log'), 'utf8');
    expect(buildLog).toMatch(/Need to get 0 B\//);
    expect(buildLog).toMatch(/package cache apt-debian-bookworm-amd64: /);
    expect(readdirSync(join(stateDir, 'images', key, 'rootfs', 'var/cache/apt/archives')).filter((n) => n.endsWith('.deb'))).toEqual([]);
    expect(readdirSync(join(stateDir, 'images', key))).not.toContain('pkgcache');
  }, 900_000);

  it('cache-packages: false neither reads nor fills the pool', () => {
    // The pool holds the packages (earlier tests): a cell that used it would need 0 B.
    expect(poolFiles()).toHaveLength(PACKAGES.length);
    const file = matrix('off', { cells: 1, cachePackages: false });
    const off = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'off'), '--plain'], { timeoutMs: 900_000 });
    expect(off.code, off.stdout + off.stderr).toBe(0);
    expect(needToGet(join(work, 'off'))[0]).not.toMatch(/^0 B/);

    dropFromPools();
    const again = runCli(['run', file, '--state-dir', stateDir, '-o', join(work, 'off2'), '--plain'], { timeoutMs: 900_000 });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(poolFiles()).toEqual([]);
  }, 900_000);
});

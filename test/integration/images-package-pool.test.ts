/**
 * Image builds and the shared package pool, for real: the pool reaches a top-layer build only through what the
 * CLI passes in, so `cache-packages: false` keeps image builds off it as it keeps cells off it; with the default
 * the same build adds what it downloaded.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { packagePoolsDir } from '../../src/caches/packages.js';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
// Small, in every Debian release, not in the base image, and used by no other test of the pool.
const PACKAGE = 'tree';
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-images-pool-');
});
afterAll(() => {
  if (!process.env.NSMATRIX_KEEP_WORK) rmSync(work, { recursive: true, force: true });
});

/** The pool files of PACKAGE, in every pool of the state directory. */
function poolFiles(): string[] {
  let pools: string[];
  try {
    pools = readdirSync(packagePoolsDir(stateDir));
  } catch {
    return [];
  }
  return pools.flatMap((pool) => readdirSync(join(packagePoolsDir(stateDir), pool)).filter((n) => n.startsWith(`${PACKAGE}_`)).map((n) => join(packagePoolsDir(stateDir), pool, n)));
}

/** Runs a matrix whose image layers PACKAGE under a setup line of its own (a new top layer); its build log. */
function buildThroughRun(name: string, cachePackages: boolean | undefined): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    [
      'matrix: { image: [debian:bookworm] }',
      `packages: [${PACKAGE}]`,
      `setup: echo ${name}-${process.pid}-${Date.now()}`,
      ...(cachePackages === undefined ? [] : [`cache-packages: ${cachePackages}`]),
      'steps:',
      `  - { name: s, run: ${PACKAGE} --version }`,
    ].join('\n') + '\n',
  );
  const out = join(work, name);
  const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '--plain'], { timeoutMs: 900_000 });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const key = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult).cells[0]!.imageKey!;
  return readFileSync(join(stateDir, 'images', key, 'build.log'), 'utf8');
}

describe('image builds and the package pool', () => {
  it('cache-packages: false: an image build that installs a package adds nothing to the pool', () => {
    for (const file of poolFiles()) rmSync(file);
    const log = buildThroughRun('off', false);
    expect(log).toMatch(new RegExp(`installing ${PACKAGE}`));
    expect(log).not.toMatch(/package cache /);
    expect(poolFiles()).toEqual([]);
  }, 900_000);

  it('by default the same build adds the package it downloaded to the pool', () => {
    for (const file of poolFiles()) rmSync(file);
    const log = buildThroughRun('on', undefined);
    expect(log).toMatch(/package cache apt-debian-bookworm-amd64: [1-9]\d* package\(s\) added/);
    expect(poolFiles()).toHaveLength(1);
  }, 900_000);
});

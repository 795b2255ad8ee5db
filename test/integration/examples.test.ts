/**
 * The example matrices in matrices/ really run: each is run through the built CLI on images the tool builds into
 * this test run's state directory, and its reports are checked.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { leftovers, runCli, schemaErrors } from '../helpers/cli.js';

const stateDir = inject('stateDir');
let work: string;
beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-examples-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runExample(name: string, extra: string[] = []): RunResult {
  const out = join(work, name);
  const r = runCli(['run', `matrices/${name}.yaml`, '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', ...extra], { timeoutMs: 1_500_000 });
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(schemaErrors(join(out, 'junit.xml'))).toBe('');
  expect(existsSync(join(out, 'report.html'))).toBe(true);
  expect(leftovers([stateDir, out])).toEqual({ mounts: [], processes: [], cgroups: [] });
  return JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
}

describe('example matrices', () => {
  it('smoke: four Debian releases, each reporting its own release', { timeout: 900_000 }, () => {
    const result = runExample('smoke');
    expect(result.cells.map((c) => [c.image, c.outcome])).toEqual([
      ['debian:bullseye', 'passed'],
      ['debian:bookworm', 'passed'],
      ['debian:trixie', 'passed'],
      ['debian:sid', 'passed'],
    ]);
    const release = (id: string) => readFileSync(join(work, 'smoke', id, '01-os-release.log'), 'utf8');
    expect(release(result.cells[0]!.id)).toMatch(/Debian GNU\/Linux 11 \(bullseye\)/);
    expect(release(result.cells[1]!.id)).toMatch(/Debian GNU\/Linux 12 \(bookworm\)/);
    expect(release(result.cells[2]!.id)).toMatch(/Debian GNU\/Linux 13 \(trixie\)/);
    expect(release(result.cells[3]!.id)).toMatch(/forky|sid/);
    for (const cell of result.cells) expect(readFileSync(join(work, 'smoke', cell.artifactsDir, 'packages.txt'), 'utf8')).toMatch(/^dpkg\t/m);
  });

  it('boot-service: systemd boots on every release, services run, journals are collected', { timeout: 1_200_000 }, () => {
    const result = runExample('boot-service');
    for (const cell of result.cells) {
      expect(cell.outcome, cell.name).toBe('passed');
      expect(cell.journal, cell.name).toBeTruthy();
      expect(readFileSync(join(work, 'boot-service', cell.journal!.text), 'utf8')).toMatch(/greeter: hello/);
    }
  });

  it('packaging: a Debian source package fetched, built and tested on every release', { timeout: 1_500_000 }, () => {
    const result = runExample('packaging');
    for (const cell of result.cells) {
      expect(cell.steps.map((s) => s.outcome), cell.name).toEqual(['passed', 'passed', 'passed', 'passed']);
      expect(readFileSync(join(work, 'packaging', cell.id, '03-test-suite.log'), 'utf8')).toMatch(/# FAIL: +0/);
    }
  });

  it('multi-arch: bzip2 built from source, tested and installed on amd64, i386 and arm64 (emulated)', { timeout: 2_400_000 }, () => {
    const result = runExample('multi-arch');
    const arches = ['amd64', 'i386', 'arm64'];
    expect(result.cells.map((c) => [c.id, c.outcome])).toEqual(arches.map((arch) => [`debian-bookworm_arch-${arch}_package-bzip2`, 'passed']));
    result.cells.forEach((cell, index) => {
      const arch = arches[index]!;
      const log = (name: string) => readFileSync(join(work, 'multi-arch', cell.id, name), 'utf8');
      expect(log('01-architecture.log')).toMatch(new RegExp(`matrix: ${arch} dpkg: ${arch} uname: ${{ amd64: 'x86_64', i386: 'i686', arm64: 'aarch64' }[arch]}`));
      // bzip2's own test target compresses and compares its reference samples (a mismatch fails the step).
      expect(log('04-test-suite.log')).toMatch(/cmp sample3\.bz2 sample3\.rb2/);
      const debs = readdirSync(join(work, 'multi-arch', cell.artifactsDir));
      expect(debs.filter((f) => f.startsWith('bzip2_') && f.endsWith(`_${arch}.deb`)), cell.name).toHaveLength(1);
    });
  });
});

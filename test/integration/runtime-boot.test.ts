/** Boot mode with real containers: systemd boots, steps run as units, statuses are exact, the journal is kept. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRunScratch, openContainer } from '../../src/runtime/index.js';
import type { Container, ContainerOptions, ExecRequest } from '../../src/runtime/types.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

requireContainerHost();
const stateDir = inject('stateDir');
const work = mkdtempSync(join('/var/tmp', 'nsm-boot-test-'));
const outputDir = join(work, 'out');
let imageRoot: string;
let scratch: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  imageRoot = (await testImage([], { boot: true })).root;
  scratch = await createRunScratch(stateDir);
  mkdirSync(join(work, 'src'), { recursive: true });
});

afterAll(async () => {
  await scratch?.remove();
  rmSync(work, { recursive: true, force: true });
});

function options(cellId: string): ContainerOptions {
  return {
    cellId,
    root: imageRoot,
    cellOutputDir: join(outputDir, cellId),
    scratchDir: scratch.dir,
    sourceDir: join(work, 'src'),
    sourceMode: 'overlay',
    network: 'host',
    privateUsers: false,
    boot: true,
    binds: [],
    nspawnExtra: [],
    env: { MATRIX_MODE: 'boot' },
  };
}

const step = (c: Container, cellId: string, index: number, script: string, over: Partial<ExecRequest> = {}) =>
  c.exec({ index, name: `s${index}`, script, env: {}, timeoutMs: 60_000, logPath: join(outputDir, cellId, `0${index + 1}-s.log`), ...over });

const psLines = (marker: string) =>
  execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(marker) && !l.includes('ps -eo'));

describe('boot mode', () => {
  it('runs steps as units of a booted systemd with exact statuses and keeps the journal', async () => {
    const c = await openContainer(options('boot-cell'));
    let closed: Awaited<ReturnType<Container['close']>> | undefined;
    try {
      const first = await step(c, 'boot-cell', 0, 'echo boot-step-output-$MATRIX_MODE-$CI; test "$(cat /proc/1/comm)" = systemd; pwd; touch /kept');
      expect(first).toMatchObject({ exitCode: 0, signal: null, tail: ['boot-step-output-boot-true', '/src'] });
      expect(await step(c, 'boot-cell', 1, 'test -f /kept; echo failing >&2; exit 3')).toMatchObject({ exitCode: 3, signal: null, tail: ['failing'] });
      expect(await step(c, 'boot-cell', 2, 'kill -9 $$')).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
      expect(await step(c, 'boot-cell', 3, 'exit 77')).toMatchObject({ exitCode: 77 });
      expect(await step(c, 'boot-cell', 4, 'logger -p user.err nsm-boot-error-line; systemctl is-system-running')).toMatchObject({ exitCode: 0 });
      expect(readFileSync(join(outputDir, 'boot-cell', '01-s.log'), 'utf8')).toMatch(/Z out\| boot-step-output-boot-true$/m);
    } finally {
      closed = await c.close();
    }
    const journalText = readFileSync(join(outputDir, 'boot-cell', 'journal.txt'), 'utf8');
    expect(journalText).toContain('boot-step-output-boot-true');
    expect(journalText).toMatch(/nsmatrix-step-02-2\.service: Main process exited, code=exited, status=3/);
    expect(closed?.journal).toMatchObject({ dir: 'boot-cell/journal', text: 'boot-cell/journal.txt', coredumps: [] });
    expect(closed?.journal?.errors.some((l) => l.includes('nsm-boot-error-line'))).toBe(true);
    // The host's journalctl reads the kept journal.
    const direct = execFileSync('journalctl', [`--directory=${join(outputDir, 'boot-cell', 'journal')}`, '--no-pager', '-o', 'cat', '-t', 'nsmatrix-step-01-1'], { encoding: 'utf8' });
    expect(direct).toContain('boot-step-output-boot-true');
    expect(psLines(c.machine)).toEqual([]);
    expect(existsSync(join(scratch.dir, c.machine))).toBe(false);
    expect(existsSync(`/sys/fs/cgroup/unified/nsmatrix/${c.machine}`)).toBe(false);
  });

  it("kills a timed-out step's unit, keeps the container for the next exec, and boots two containers at once", async () => {
    const [a, b] = await Promise.all([openContainer(options('boot-a')), openContainer(options('boot-b'))]);
    try {
      const [ra, rb] = await Promise.all([
        step(a, 'boot-a', 0, "trap '' TERM; touch /tmp/left-by-step; sleep 6101 & sleep 6101", { timeoutMs: 2000 }),
        step(b, 'boot-b', 0, 'echo b-ran'),
      ]);
      expect(ra).toMatchObject({ timedOut: true, exitCode: null });
      expect(ra.infrastructureError).toBeUndefined();
      expect(rb).toMatchObject({ exitCode: 0, tail: ['b-ran'] });
      // The step's whole unit is gone (its background child too); the container and what the step left remain.
      expect(psLines('sleep 6101')).toEqual([]);
      expect(await step(a, 'boot-a', 1, 'test -f /tmp/left-by-step && echo still-booted')).toMatchObject({ exitCode: 0, tail: ['still-booted'] });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    expect(psLines('sleep 6101')).toEqual([]);
    expect(psLines(a.machine)).toEqual([]);
  });
});

/**
 * An interrupt while a top layer's copy of its base is being made stops the copy: it used to run to its end
 * (seconds, tens of seconds on a loaded host) before the interrupt took effect. An interrupt while the build's
 * container runs leaves nothing of it, not even the propagation directory its SIGKILLed nspawn cannot remove.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { damage, project, settle, start } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-images-interrupt-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('SIGINT while a top layer is built', () => {
  it('stops the copy of the base instead of waiting for it', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const marker = `nsm-copy-interrupt-${process.pid}-${Date.now()}`;
      // A setup line nobody built before: a new top layer, copied from the base (no network needed).
      const file = project(join(work, `p${attempt}`), `matrix:\n  image: [debian:bookworm]\nsetup: echo ${marker}\nsteps:\n  - name: a\n    run: echo hi\n`);
      const out = join(work, `out${attempt}`);
      const started = Date.now();
      const run = start(['run', file, '--state-dir', stateDir, '-o', out, '--plain'], { env: { NSMATRIX_VERBOSE: '1' } });
      expect(await run.seen(/building top layer/)).toBe(true);
      const beforeSignal = run.output();
      run.child.kill('SIGINT');
      const result = await run.done;
      // The copy was over before the signal (a very fast disk): this attempt shows nothing, try again.
      if (/cloned base/.test(beforeSignal)) continue;
      expect(result.code, result.stderr).toBe(130);
      expect(result.stdout + result.stderr, 'the copy ran to its end after the signal').not.toMatch(/cloned base/);
      expect(await settle(() => damage(stateDir, out, marker, started))).toEqual([]);
      return;
    }
    throw new Error('in 3 attempts the copy of the base was always over before the signal');
  });

  const PROPAGATE = '/run/systemd/nspawn/propagate';

  /** A run building a new layer whose setup script is running (in its build container) when this resolves. */
  async function runInSetup(name: string) {
    const marker = `nsm-build-${name}-${process.pid}-${Date.now()}`;
    const file = project(join(work, name), `matrix:\n  image: [debian:bookworm]\nsetup: echo ${marker}; sleep 120\nsteps:\n  - name: a\n    run: echo hi\n`);
    const out = join(work, `out-${name}`);
    const started = Date.now() - 1000;
    const run = start(['run', file, '--state-dir', stateDir, '-o', out, '--plain'], { env: { NSMATRIX_VERBOSE: '1' } });
    expect(await run.seen(/running the setup script/)).toBe(true);
    // The propagation directories of build containers started since (nspawn makes one before the setup runs).
    const builds = () => readdirSync(PROPAGATE).filter((n) => n.startsWith('nsmatrix-build-') && statSync(join(PROPAGATE, n)).mtimeMs >= started);
    await settle(() => (builds().length > 0 ? [] : ['no build container yet']));
    expect(builds().length, 'the build container is running').toBeGreaterThan(0);
    return { run, builds, damage: () => settle(() => damage(stateDir, out, marker, started)) };
  }

  it("leaves no propagation directory of the build's container it stopped", async () => {
    const { run, builds, damage } = await runInSetup('interrupted');
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(130);
    expect(await damage()).toEqual([]);
    expect(await settle(() => builds())).toEqual([]);
  });

  it("gc removes the propagation directory a SIGKILLed run's build container left", async () => {
    const { run, builds, damage } = await runInSetup('killed');
    const left = builds();
    run.child.kill('SIGKILL');
    await run.done;
    // Its nspawn dies with it (unshare --kill-child), unable to clean up: the directory stays until gc.
    await settle(() => (spawnSync('pgrep', ['-f', `machine=${left[0]}`]).status === 0 ? ['build nspawn still running'] : []));
    expect(builds()).toEqual(left);
    const gc = runCli(['gc', '--state-dir', stateDir]);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toContain(`removed ${join(PROPAGATE, left[0]!)}`);
    expect(builds()).toEqual([]);
    expect(await damage()).toEqual([]);
  });
});

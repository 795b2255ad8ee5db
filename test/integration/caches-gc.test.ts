/**
 * `nsmatrix gc` and the `cache:` directories (issue 15): a run stopped in the middle of its save (after publishing,
 * while it removes the old version) keeps everything it is working on through a gc, because it holds the cache's
 * lock; once it is SIGKILLed there, gc removes what it left (the half-removed old version, a link and a meta file
 * not yet renamed) and keeps `current` and the version it names whole, and the next run restores that version.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { cacheId, pathCachesDir, removeCache } from '../../src/caches/paths.js';
import { CLI, runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';

const stateDir = inject('stateDir');
let work: string;
const tag = `${process.pid}-${Date.now()}`;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-caches-gc-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (file: string, out: string) => runCli(['run', file, '--state-dir', stateDir, '-o', out, '--plain'], { timeoutMs: 600_000 });

function firstLog(out: string): string {
  const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
  return readFileSync(join(out, result.cells[0]!.steps[0]!.attempts[0]!.logPath), 'utf8');
}

/** Whether someone holds the cache's lock (flock(1) -n fails with 1 then). */
function lockHeld(lockFile: string): boolean {
  return spawnSync('flock', ['-n', '-x', lockFile, 'true']).status !== 0;
}

describe('gc and cache: directories', () => {
  it('keeps a live save, removes what a SIGKILLed save left, and the cache stays usable', async () => {
    const key = `gc-${tag}`;
    // Many files: removing the old version after publishing takes long enough to stop the run in the middle of it.
    const file = join(work, 'gc.yaml');
    writeFileSync(
      file,
      [
        'matrix:',
        '  image: [debian:bookworm]',
        `cache: [{ path: /c, key: "${key}" }]`,
        'timeout: 5m',
        'steps:',
        '  - name: step',
        '    run: |',
        '      if [ -f /c/complete ]; then [ "$(find /c/files -type f | wc -l)" = "$(cat /c/complete)" ] || { echo torn; exit 1; }; echo "restored $(cat /c/generation)"; fi',
        '      g=$(( $(cat /c/generation 2>/dev/null || echo 0) + 1 )); echo $g > /c/generation',
        '      if [ ! -f /c/complete ]; then mkdir -p /c/files/a /c/files/b; seq 1 15000 | (cd /c/files/a && xargs touch); seq 1 15000 | (cd /c/files/b && xargs touch); fi',
        '      find /c/files -type f | wc -l > /c/complete',
      ].join('\n') + '\n',
    );
    const first = run(file, join(work, 'first'));
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const id = cacheId(`key:${key}`, '/c');
    const dir = join(pathCachesDir(stateDir), id);
    const lockFile = join(pathCachesDir(stateDir), `${id}.lock`);

    // Each trial: a run, stopped (SIGSTOP) as soon as it has switched `current`, which is before it removes the old
    // version. When the stop came too late (the old version already gone), the run goes on and the next one is tried.
    let stoppedInSave = false;
    for (let trial = 0; trial < 8 && !stoppedInSave; trial++) {
      const before = readlinkSync(join(dir, 'current'));
      const child = spawn(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', join(work, `t${trial}`), '--plain'], { stdio: 'ignore' });
      const closed = new Promise((r) => child.once('close', r));
      let stopped = false;
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline && child.exitCode === null) {
        if (readlinkSync(join(dir, 'current')) !== before) {
          child.kill('SIGSTOP');
          stopped = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!stopped || !existsSync(join(dir, before))) {
        if (stopped) child.kill('SIGCONT');
        await closed;
        continue;
      }
      stoppedInSave = true;
      const published = readlinkSync(join(dir, 'current'));
      // Other points a save can be killed at: its new `current` link and meta file made but not yet renamed.
      symlinkSync(published, join(dir, 'current.0123456789ab'));
      writeFileSync(join(dir, 'meta.json.0123456789ab'), '{}\n');

      // The run is alive and holds the lock: gc leaves its cache alone.
      expect(lockHeld(lockFile)).toBe(true);
      const whileLive = runCli(['gc', '--state-dir', stateDir]);
      expect(whileLive.code, whileLive.stdout + whileLive.stderr).toBe(0);
      expect(existsSync(join(dir, before)), 'the old version a live save is removing').toBe(true);
      expect(existsSync(join(dir, 'current.0123456789ab'))).toBe(true);
      expect(readdirSync(join(stateDir, 'run')).some((n) => n.startsWith(`${child.pid}-`)), "the live run's scratch").toBe(true);

      // Killed there: its flock(1) sees its stdin close and drops the lock (a condition, waited for).
      child.kill('SIGKILL');
      await closed;
      while (lockHeld(lockFile)) await new Promise((r) => setTimeout(r, 20));
      const gc = runCli(['gc', '--state-dir', stateDir]);
      expect(gc.code, gc.stdout + gc.stderr).toBe(0);
      expect(gc.stdout).toContain(`removed ${join(dir, before)}\n`);
      expect(readdirSync(dir).sort()).toEqual(['current', 'meta.json', published].sort());
      expect(readlinkSync(join(dir, 'current'))).toBe(published);
      const complete = Number(readFileSync(join(dir, published, 'complete'), 'utf8'));
      expect(complete).toBe(30_000);
      expect(readdirSync(join(dir, published, 'files', 'a')).length + readdirSync(join(dir, published, 'files', 'b')).length).toBe(complete);
      expect(readdirSync(join(stateDir, 'run')).some((n) => n.startsWith(`${child.pid}-`)), "the killed run's scratch").toBe(false);

      // Nothing left: a second gc finds nothing of this cache.
      expect(runCli(['gc', '--state-dir', stateDir]).stdout).not.toContain(dir);
      const generation = readFileSync(join(dir, published, 'generation'), 'utf8').trim();
      const next = run(file, join(work, 'next'));
      expect(next.code, next.stdout + next.stderr).toBe(0);
      expect(firstLog(join(work, 'next'))).toContain(`restored ${generation}`);
    }
    expect(stoppedInSave, 'a run stopped while removing the old version').toBe(true);
    await removeCache(stateDir, id);
  }, 1_200_000);
});

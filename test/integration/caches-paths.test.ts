/**
 * `cache:` directories for real (issue 15): a counter survives into the next run (and loses a setuid bit on the
 * way), four cells of each of two concurrent runs writing one cache all pass and leave one usable version, and a
 * run SIGKILLed while saving leaves nothing a later run trusts.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
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
  work = mkdtempSync('/var/tmp/nsm-caches-paths-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function matrixFile(name: string, lines: { cells?: number; cache: string; script: string }): string {
  const file = join(work, `${name}.yaml`);
  const body = lines.script.trim().split('\n').map((l) => `      ${l}`).join('\n');
  writeFileSync(
    file,
    [
      'matrix:',
      '  image: [debian:bookworm]',
      `  n: [${Array.from({ length: lines.cells ?? 1 }, (_, i) => i + 1).join(', ')}]`,
      'max-parallel: 4',
      `cache: [${lines.cache}]`,
      'timeout: 5m',
      'steps:',
      '  - name: step',
      '    run: |',
      body,
    ].join('\n') + '\n',
  );
  return file;
}

function logsOf(out: string): string[] {
  const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
  return result.cells.map((c) => readFileSync(join(out, c.steps[0]!.attempts[0]!.logPath), 'utf8'));
}

const run = (file: string, out: string) => runCli(['run', file, '--state-dir', stateDir, '-o', out, '--plain', '--jobs', '4'], { timeoutMs: 600_000 });

function versionsOf(id: string): string[] {
  return readdirSync(join(pathCachesDir(stateDir), id)).filter((n) => n.startsWith('v.'));
}

describe('cache: directories', () => {
  it('a counter survives into the second run, without its setuid bit', async () => {
    const key = `counter-${tag}`;
    const file = matrixFile('counter', {
      cache: `{ path: /root/.cache/counter, key: "${key}" }`,
      script: `
n=$(cat /root/.cache/counter/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /root/.cache/counter/n; echo "count=$n"
cp /bin/true /root/.cache/counter/suid && chmod 4755 /root/.cache/counter/suid`,
    });
    for (const [i, want] of [[1, 'count=1'], [2, 'count=2']] as const) {
      const r = run(file, join(work, `counter-${i}`));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(logsOf(join(work, `counter-${i}`))[0]).toContain(want);
    }
    const id = cacheId(`key:${key}`, '/root/.cache/counter');
    const current = join(pathCachesDir(stateDir), id, readlinkSync(join(pathCachesDir(stateDir), id, 'current')));
    expect(lstatSync(join(current, 'suid')).mode & 0o7000).toBe(0);
    expect(versionsOf(id)).toHaveLength(1);
    await removeCache(stateDir, id);
  }, 600_000);

  it('four cells of two concurrent runs write one cache: all pass and one usable version remains', async () => {
    const key = `shared-${tag}`;
    // Each cell checks that what it restored is one whole version (its files are exactly its manifest), then adds
    // its own files: a torn or mixed save shows as a missing or an extra file.
    const script = `
mkdir -p /c/files && touch /c/manifest
ls /c/files | sort > /tmp/have; sort /c/manifest > /tmp/want
cmp -s /tmp/have /tmp/want || { echo "torn cache: $(diff /tmp/have /tmp/want | head -5)"; exit 1; }
seq 1 1500 | sed "s/^/$$-/" > /tmp/new
(cd /c/files && xargs touch < /tmp/new)
cat /tmp/new >> /c/manifest
echo ok-$$`;
    const file = matrixFile('concurrent', { cells: 4, cache: `{ path: /c, key: "${key}" }`, script });
    const start = (out: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--plain', '--jobs', '4'], { stdio: 'ignore' });
        child.on('close', (code) => resolve(code));
      });
    const codes = await Promise.all([start(join(work, 'conc-a')), start(join(work, 'conc-b'))]);
    expect(codes).toEqual([0, 0]);
    const id = cacheId(`key:${key}`, '/c');
    expect(versionsOf(id)).toHaveLength(1);
    // The survivor is one cell's whole view: its manifest names only files it holds, and the next cells agree.
    const after = run(file, join(work, 'conc-after'));
    expect(after.code, after.stdout + after.stderr).toBe(0);
    await removeCache(stateDir, id);
  }, 600_000);

  it('a run SIGKILLed while saving leaves the previous version in force, and the next run uses it', async () => {
    const key = `killed-${tag}`;
    const script = `
if [ -f /c/complete ]; then [ "$(ls /c/files | wc -l)" = "$(cat /c/complete)" ] || { echo torn; exit 1; }; echo "restored $(cat /c/generation)"; fi
rm -rf /c/files /c/complete && mkdir -p /c/files
g=$(( $(cat /c/generation 2>/dev/null || echo 0) + 1 )); echo $g > /c/generation
seq 1 8000 | sed "s/^/g$g-/" | (cd /c/files && xargs touch)
ls /c/files | wc -l > /c/complete`;
    const file = matrixFile('killed', { cache: `{ path: /c, key: "${key}" }`, script });
    const first = run(file, join(work, 'killed-1'));
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const id = cacheId(`key:${key}`, '/c');
    const published = readlinkSync(join(pathCachesDir(stateDir), id, 'current'));

    // Later runs: the first measures how long the save phase lasts (from the container's end to the run's), the
    // others are SIGKILLed at spread points of it (disarm, measure, publish). Whatever a kill interrupts, `current`
    // must name one whole version.
    // The save lasts a different time on every run (a loaded machine), so a fraction that came too late is tried
    // again earlier, and the measure is the shortest save seen, until four runs were killed while saving.
    let killsInSave = 0;
    let saveMs = Number.POSITIVE_INFINITY;
    const fractions: Array<number | undefined> = [undefined, 0.2, 0.45, 0.7, 0.85, 0.95];
    for (let trial = 0; trial < fractions.length && trial < 14 && killsInSave < 4; trial++) {
      const fraction = fractions[trial];
      const out = join(work, `killed-k${trial}`);
      const child = spawn(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--plain'], { stdio: 'ignore' });
      const closed = new Promise((r) => child.once('close', r));
      const deadline = Date.now() + 300_000;
      let seenAt: number | undefined;
      let killed = false;
      while (Date.now() < deadline && child.exitCode === null) {
        if (seenAt === undefined) {
          for (const name of readdirSync(join(stateDir, 'run')).filter((n) => n.startsWith(`${child.pid}-`))) {
            const names = readdirSync(join(stateDir, 'run', name));
            // The step has run (its log exists) and its container is gone: only the save can be going on.
            const saving = names.some((n) => n.startsWith('cache-')) && !names.some((n) => n.startsWith('nsm-'));
            if (saving && existsSync(join(out, 'debian-bookworm_n-1', '01-step.log'))) seenAt = Date.now();
          }
        }
        if (seenAt !== undefined && fraction !== undefined && Date.now() - seenAt >= fraction * saveMs) {
          child.kill('SIGKILL');
          killed = true;
          killsInSave++;
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await closed;
      if (!killed && seenAt !== undefined) {
        saveMs = Math.min(saveMs, Date.now() - seenAt);
        if (fraction !== undefined) fractions.push(fraction * 0.6);
      }
      const now = readlinkSync(join(pathCachesDir(stateDir), id, 'current'));
      const version = join(pathCachesDir(stateDir), id, now);
      const complete = Number(readFileSync(join(version, 'complete'), 'utf8'));
      expect(readdirSync(join(version, 'files')), `trial ${trial} (${fraction} of ${saveMs} ms)`).toHaveLength(complete);
      if (now !== published) expect(Number(readFileSync(join(version, 'generation'), 'utf8'))).toBeGreaterThan(1);
      runCli(['gc', '--state-dir', stateDir]);
    }
    expect(killsInSave, 'runs killed in their save phase').toBeGreaterThanOrEqual(4);

    const gc = runCli(['gc', '--state-dir', stateDir]);
    expect(gc.code, gc.stdout + gc.stderr).toBe(0);
    const third = run(file, join(work, 'killed-3'));
    expect(third.code, third.stdout + third.stderr).toBe(0);
    expect(logsOf(join(work, 'killed-3'))[0]).toMatch(/restored \d+/);
    await removeCache(stateDir, id);
  }, 900_000);
});

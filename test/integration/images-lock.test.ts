/** Per-key locks held by flock(1) children: waiting, independence of keys, abort, and release on SIGKILL. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireKeyLock, tryKeyLock } from '../../src/images/lock.js';
import { ensureStore } from '../../src/images/store.js';
import { resources } from '../../src/lib/resources.js';
import { requireContainerHost } from '../helpers/host.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync('/var/tmp/nsmatrix-images-lock-');
const KEY_A = 'a'.repeat(24);
const KEY_B = 'b'.repeat(24);

function flockProcessesOn(path: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('flock\0') && cmd.includes(path)) count++;
    } catch {
      // exited meanwhile
    }
  }
  return count;
}

beforeAll(() => {
  requireContainerHost();
  ensureStore(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('image key locks', () => {
  it('a second taker of the same key waits (and says so) until the first releases', async () => {
    const first = await acquireKeyLock(dir, KEY_A);
    let waited = false;
    let acquired = false;
    const second = acquireKeyLock(dir, KEY_A, { onWait: () => (waited = true), waitNoticeMs: 50 }).then((lock) => {
      acquired = true;
      return lock;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(waited).toBe(true);
    expect(acquired).toBe(false);
    expect(await tryKeyLock(dir, KEY_A)).toBeUndefined();
    await first.release();
    await (await second).release();
    expect(acquired).toBe(true);
  });

  it('a different key never waits', async () => {
    const a = await acquireKeyLock(dir, KEY_A);
    const b = await acquireKeyLock(dir, KEY_B, { onWait: () => expect.fail('waited on an unrelated key') });
    await Promise.all([a.release(), b.release()]);
  });

  it('aborting a wait rejects at once and leaves no flock process or registry entry behind', async () => {
    const held = await acquireKeyLock(dir, KEY_A);
    const controller = new AbortController();
    const waiting = acquireKeyLock(dir, KEY_A, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    // the lock is still held: only the abort can end this wait (a hang would fail the test by its timeout)
    await expect(waiting).rejects.toThrow(/aborted/);
    await held.release();
    expect(flockProcessesOn(join(dir, 'locks'))).toBe(0);
    expect(resources.labels().filter((l) => l.startsWith('image lock'))).toEqual([]);
  });

  it('the kernel releases the lock when its holder is killed with SIGKILL', async () => {
    const script = join(dir, 'holder.mts');
    writeFileSync(
      script,
      `import { acquireKeyLock } from ${JSON.stringify(join(REPO, 'src/images/lock.js'))};
await acquireKeyLock(${JSON.stringify(dir)}, ${JSON.stringify(KEY_B)});
process.stdout.write('held\\n');
setInterval(() => undefined, 1000);
`,
    );
    const holder = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.on('data', (c: Buffer) => c.toString().includes('held') && resolve()));
    expect(await tryKeyLock(dir, KEY_B)).toBeUndefined();
    const exited = new Promise((r) => holder.on('close', r));
    holder.kill('SIGKILL');
    await exited;
    // granted only if the kernel dropped the dead holder's lock (else this waits until the test times out)
    const lock = await acquireKeyLock(dir, KEY_B);
    await lock.release();
    expect(flockProcessesOn(join(dir, 'locks'))).toBe(0);
  });
});

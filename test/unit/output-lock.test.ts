import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { lockOutputDir } from '../../src/cli/output-lock.js';
import { resources } from '../../src/lib/resources.js';
import { acquireFlock } from '../../src/lib/flock.js';
import { UsageError } from '../../src/errors.js';

const dirs: string[] = [];
afterEach(async () => {
  await resources.releaseAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('takes the output directory, refuses a second taker, and removes half-written report files', async () => {
  const out = mkdtempSync(join(tmpdir(), 'nsm-out-'));
  dirs.push(out);
  writeFileSync(join(out, '.junit.xml.4242.deadbeef.tmp'), '<testsuites');
  writeFileSync(join(out, 'junit.xml'), '<testsuites/>');
  // Cell directories a killed run was making or removing (run/scheduler.ts), and a user's hidden directory.
  for (const name of ['.debian-bookworm.0123456789ab.new', '.debian-sid_cc-gcc.abcdef012345.old', '.my-notes']) {
    mkdirSync(join(out, name, 'artifacts'), { recursive: true });
  }
  await lockOutputDir(out);
  expect(existsSync(join(out, '.debian-bookworm.0123456789ab.new'))).toBe(false);
  expect(existsSync(join(out, '.debian-sid_cc-gcc.abcdef012345.old'))).toBe(false);
  expect(existsSync(join(out, '.my-notes', 'artifacts'))).toBe(true);
  expect(existsSync(join(out, '.junit.xml.4242.deadbeef.tmp'))).toBe(false);
  expect(existsSync(join(out, 'junit.xml'))).toBe(true);
  // flock locks belong to open file descriptions: a second flock(1) child conflicts even from this process
  await expect(lockOutputDir(out)).rejects.toThrow(UsageError);
});

it("waits out a holder that lets go within the grace (a SIGKILLed run's flock child), and no longer", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-flock-'));
  dirs.push(dir);
  const file = join(dir, 'x.lock');
  // A holder that prints once it holds the lock, then keeps it for 600 ms.
  const holder = spawn('flock', ['-x', file, 'sh', '-c', 'echo held; sleep 0.6'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  expect(await acquireFlock(file, { nonBlocking: true, label: 'test lock' })).toBeNull();
  const started = Date.now();
  const lock = await acquireFlock(file, { nonBlocking: true, busyGraceMs: 5_000, label: 'test lock' });
  expect(lock).not.toBeNull();
  expect(Date.now() - started).toBeLessThan(5_000);
  const second = await acquireFlock(file, { nonBlocking: true, busyGraceMs: 300, label: 'test lock' });
  expect(second).toBeNull();
  await lock!.release();
});

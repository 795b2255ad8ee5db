import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { sweepPropagateDirs } from '../../src/lib/propagate.js';

const root = mkdtempSync(join(tmpdir(), 'nsm-propagate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('sweeps the empty propagation directories no running nspawn owns, and only those of the prefix', async () => {
  const live = `nsm-test-live-${process.pid}`;
  for (const name of ['nsm-dead-1', live, 'nsm-with-content-1', 'other-machine']) mkdirSync(join(root, name));
  writeFileSync(join(root, 'nsm-with-content-1', 'kept'), '');
  // A process whose command line names the live machine, as its systemd-nspawn's does.
  const owner = spawn('sh', ['-c', 'echo up; sleep 30', `--machine=${live}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => owner.stdout.once('data', () => resolve()));
  try {
    expect(sweepPropagateDirs('nsm-', root)).toEqual([join(root, 'nsm-dead-1')]);
    expect(readdirSync(root).sort()).toEqual(['nsm-with-content-1', live, 'other-machine'].sort());
  } finally {
    owner.kill('SIGKILL');
  }
  expect(sweepPropagateDirs('nsm-', join(root, 'missing'))).toEqual([]);
});

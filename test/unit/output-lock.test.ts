import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { lockOutputDir } from '../../src/cli/output-lock.js';
import { resources } from '../../src/lib/resources.js';
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
  await lockOutputDir(out);
  expect(existsSync(join(out, '.junit.xml.4242.deadbeef.tmp'))).toBe(false);
  expect(existsSync(join(out, 'junit.xml'))).toBe(true);
  // flock locks belong to open file descriptions: a second flock(1) child conflicts even from this process
  await expect(lockOutputDir(out)).rejects.toThrow(UsageError);
});

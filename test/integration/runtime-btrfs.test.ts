/** The btrfs-snapshot strategy on a real (loop-mounted) btrfs: chosen automatically, one snapshot per cell. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRunScratch, openContainer } from '../../src/runtime/index.js';
import type { ContainerOptions } from '../../src/runtime/types.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

requireContainerHost();
const work = mkdtempSync(join('/var/tmp', 'nsm-btrfs-test-'));
const mnt = join(work, 'mnt');
const imageRoot = join(mnt, 'image');
let mounted = false;

beforeAll(async () => {
  const source = (await testImage()).root;
  const file = join(work, 'fs.img');
  execFileSync('truncate', ['-s', '1G', file]);
  execFileSync('mkfs.btrfs', ['-q', file], { stdio: 'ignore' });
  mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop', file, mnt]);
  mounted = true;
  execFileSync('btrfs', ['subvolume', 'create', imageRoot], { stdio: 'ignore' });
  execFileSync('cp', ['-a', `${source}/.`, `${imageRoot}/`]);
});

afterAll(() => {
  if (mounted) execFileSync('umount', [mnt]); // a loop mount made by mount(8) detaches its device itself
  rmSync(work, { recursive: true, force: true });
});

describe('btrfs-snapshot strategy', () => {
  it('snapshots a btrfs subvolume image once per cell and deletes the snapshot on close', async () => {
    // Scratch on the same btrfs, as a state dir on btrfs would have it.
    const scratch = await createRunScratch(join(mnt, 'state'));
    const options: ContainerOptions = {
      cellId: 'btrfs-cell', root: imageRoot, cellOutputDir: join(work, 'out', 'btrfs-cell'), scratchDir: scratch.dir, sourceDir: work,
      sourceMode: 'ro', network: 'host', privateUsers: false, boot: false, binds: [], nspawnExtra: [], env: {},
    };
    const c = await openContainer(options);
    try {
      expect(c.strategy).toBe('btrfs-snapshot');
      const log = join(work, 'out', 'btrfs-cell', '01.log');
      expect(await c.exec({ index: 0, name: 'a', script: 'echo kept > /etc/nsm-kept', env: {}, timeoutMs: 60_000, logPath: log })).toMatchObject({ exitCode: 0 });
      expect(await c.exec({ index: 1, name: 'b', script: 'cat /etc/nsm-kept', env: {}, timeoutMs: 60_000, logPath: log })).toMatchObject({ exitCode: 0, tail: ['kept'] });
      const subvolumes = execFileSync('btrfs', ['subvolume', 'list', mnt], { encoding: 'utf8' });
      expect(subvolumes).toMatch(/rootfs$/m);
    } finally {
      await c.close();
      await scratch.remove();
    }
    expect(existsSync(join(imageRoot, 'etc', 'nsm-kept'))).toBe(false);
    expect(execFileSync('btrfs', ['subvolume', 'list', mnt], { encoding: 'utf8' }).trim().split('\n')).toHaveLength(1);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(scratch.dir);
  });
});

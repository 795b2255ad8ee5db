/** The pure and file-level pieces of caches (issue 15), without containers. */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { aptArchiveName, packagePool, parsePackagesIndex } from '../../src/caches/packages.js';
import { cacheId, listCaches, pathCachesDir, pruneCaches, restoreCache, saveCache } from '../../src/caches/paths.js';
import { parseSize } from '../../src/cli/commands/cache.js';
import { installScript } from '../../src/images/package-managers.js';
import { cachePathProblem } from '../../src/matrix/schema.js';
import { cacheSpecsOf } from '../../src/run/lifecycle.js';
import type { Cell, MatrixModel } from '../../src/matrix/types.js';

const dirs: string[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-caches-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('apt index', () => {
  it('names archives as apt does (epoch quoted) and keeps only wanted, well-formed entries', async () => {
    expect(aptArchiveName('libfoo', '1:2.0-1', 'amd64')).toBe('libfoo_1%3a2.0-1_amd64.deb');
    const text = [
      'Package: hello',
      'Version: 2.10-3',
      'Architecture: amd64',
      'Description: x',
      ' continuation: Size: 1',
      'Size: 53080',
      `SHA256: ${'a'.repeat(64)}`,
      '',
      'Package: bad',
      'Version: 1',
      'Architecture: all',
      'Size: 12',
      'SHA256: nothex',
      '',
      'Package: foo',
      'Version: 1:1.0',
      'Architecture: all',
      'Size: 7',
      `SHA256: ${'b'.repeat(64)}`,
    ];
    const all = await parsePackagesIndex(Readable.from(text));
    expect([...all.keys()].sort()).toEqual(['foo_1%3a1.0_all.deb', 'hello_2.10-3_amd64.deb']);
    expect(all.get('hello_2.10-3_amd64.deb')).toEqual({ size: 53080, sha256: 'a'.repeat(64) });
    const some = await parsePackagesIndex(Readable.from(text), new Set(['foo_1%3a1.0_all.deb']));
    expect([...some.keys()]).toEqual(['foo_1%3a1.0_all.deb']);
  });

  it('the install script keeps downloads only when asked', () => {
    expect(installScript('apt', ['hello'])).toContain('apt-get clean');
    expect(installScript('apt', ['hello'], { keepDownloads: true })).not.toContain('apt-get clean');
  });

  it("a pool lease is an overlay of the release's pool over a fresh upper directory, removed on release", async () => {
    const state = tmp();
    const root = tmp();
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/os-release'), 'ID=debian\nVERSION_CODENAME=bookworm\n');
    // The tree's architecture is read from an ELF header: x86-64 (machine 0x3e), 64-bit little-endian.
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    const elf = Buffer.alloc(64);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(0x3e, 18);
    writeFileSync(join(root, 'usr/bin/env'), elf);
    const work = join(tmp(), 'pkgcache');
    const lease = await packagePool(state).open(root, work);
    expect(lease?.name).toBe('apt-debian-bookworm-amd64');
    expect(lease?.mount).toEqual({ type: 'overlay', lower: join(state, 'caches/packages/apt-debian-bookworm-amd64'), upper: join(work, 'upper'), container: '/var/cache/apt/archives' });
    expect(existsSync(join(work, 'upper'))).toBe(true);
    expect(await lease!.harvest()).toEqual({ added: [], refused: [], bytes: 0 });
    await lease!.release();
    expect(existsSync(work)).toBe(false);
    // An unknown OS shares nothing.
    rmSync(join(root, 'etc/os-release'));
    expect(await packagePool(state).open(root, work)).toBeUndefined();
  });
});

describe('cache: entries', () => {
  it('refuses paths nsmatrix mounts or the kernel owns, and relative ones', () => {
    for (const bad of ['relative', '/', '/proc/x', '/src', '/artifacts/a', '/run/nsmatrix', '/tmp', '/a/../b', '/a:b', '/var/cache/apt/archives']) {
      expect(cachePathProblem(bad), bad).toBeDefined();
    }
    for (const good of ['/root/.cache/ccache', '/tmp/ccache', '/run/user-cache']) expect(cachePathProblem(good), good).toBeUndefined();
  });

  it('keys by image key and path unless key: says otherwise; one entry per path, matrix-wide first', () => {
    const model = { cache: [{ path: '/a/' }, { path: '/b', key: 'k-${{ matrix.cc }}' }], steps: [{ cache: [{ path: '/a' }, { path: '/c' }] }, {}] } as unknown as MatrixModel;
    const cell = { values: { cc: 'gcc' } } as unknown as Cell;
    expect(cacheSpecsOf(model, cell, 'IMG')).toEqual([
      { key: 'image:IMG', path: '/a' },
      { key: 'key:k-gcc', path: '/b' },
      { key: 'image:IMG', path: '/c', step: 0 },
    ]);
  });

  it('parses sizes for prune', () => {
    expect(parseSize('10G')).toBe(10 * 1024 ** 3);
    expect(parseSize('500M')).toBe(500 * 1024 ** 2);
    expect(parseSize('12')).toBe(12);
    expect(parseSize('1x')).toBeUndefined();
  });
});

describe('restore and save', () => {
  it('publishes a disarmed copy by switching current; a copy changed after restore never touches the published one', async () => {
    const state = tmp();
    const spec = { key: 'key:k', path: '/c', image: 'debian:bookworm' };
    const first = await restoreCache(state, spec, join(state, 'w1'));
    expect(first.hit).toBe(false);
    writeFileSync(join(first.data, 'n'), '1');
    writeFileSync(join(first.data, 'suid'), '#!/bin/sh\n');
    chmodSync(join(first.data, 'suid'), 0o4755);
    symlinkSync('/etc/shadow', join(first.data, 'link'));
    expect(await saveCache(state, first)).toMatchObject({ saved: true });
    const dir = join(pathCachesDir(state), cacheId('key:k', '/c'));
    const v1 = readlinkSync(join(dir, 'current'));
    expect(lstatSync(join(dir, v1, 'suid')).mode & 0o7000).toBe(0);
    expect(readlinkSync(join(dir, v1, 'link'))).toBe('/etc/shadow');

    const second = await restoreCache(state, spec, join(state, 'w2'));
    expect(second.hit).toBe(true);
    writeFileSync(join(second.data, 'n'), '2');
    expect(readFileSync(join(dir, v1, 'n'), 'utf8')).toBe('1');
    // A killed save's leftover version is never named, and the next save removes it.
    mkdirSync(join(dir, 'v.0000000000001.aaaaaaaaaaaa'));
    expect(await saveCache(state, second, { maxBytes: 10 * 1024 ** 2 })).toMatchObject({ saved: true });
    const v2 = readlinkSync(join(dir, 'current'));
    expect(v2).not.toBe(v1);
    expect(readdirSync(dir).filter((n) => n.startsWith('v.'))).toEqual([v2]);
    expect(readFileSync(join(dir, v2, 'n'), 'utf8')).toBe('2');
  });

  it('refuses to save a cache above the size limit, and prune removes by size', async () => {
    const state = tmp();
    const restored = await restoreCache(state, { key: 'key:big', path: '/c', image: 'x' }, join(state, 'w'));
    writeFileSync(join(restored.data, 'blob'), Buffer.alloc(64 * 1024));
    expect(await saveCache(state, restored, { maxBytes: 1024 })).toMatchObject({ saved: false });
    expect(await saveCache(state, restored)).toMatchObject({ saved: true });
    expect((await listCaches(state)).map((c) => c.published)).toEqual([true]);
    expect(await pruneCaches(state, { maxBytes: 1024 })).toHaveLength(1);
    expect(existsSync(join(pathCachesDir(state), restored.id))).toBe(false);
  });
});

/**
 * The images stage for real: mmdebstrap from the host's mirror, nspawn package installs, locks between
 * processes, SIGKILL in the middle of a build, tarballs pulled over HTTP and checked.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { InfraError } from '../../src/errors.js';
import { gcImages, listImages, provisionImage } from '../../src/images/index.js';
import { readManifest, storePaths } from '../../src/images/store.js';
import { resources } from '../../src/lib/resources.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const stateDir = inject('stateDir');
const scratch = mkdtempSync('/var/tmp/nsmatrix-images-test-');

function sha256(path: string): string {
  return execFileSync('sha256sum', [path], { encoding: 'utf8' }).split(' ')[0]!;
}

function installed(root: string, pkg: string): boolean {
  try {
    const out = execFileSync('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f=${Status}', pkg], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.trim() === 'install ok installed';
  } catch {
    return false;
  }
}

/** Command lines of live processes that mention `text`: how we prove a killed build left nothing running. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(text) && Number(pid) !== process.pid) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function mountsUnder(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(path));
}

function tmpEntries(dir: string): string[] {
  const tmp = storePaths(dir).tmp;
  return existsSync(tmp) ? readdirSync(tmp) : [];
}

/** A child process provisioning debian:bookworm with a setup script in `dir`; resolves with its output. */
function provisionInChild(dir: string, setup: string) {
  const script = join(scratch, 'provision-child.mts');
  writeFileSync(
    script,
    `import { provisionImage } from ${JSON.stringify(join(REPO, 'src/images/index.js'))};
const [dir, setup] = process.argv.slice(2);
const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [], setup },
  { stateDir: dir, onProgress: (line) => process.stderr.write(line + '\\n') });
process.stdout.write(JSON.stringify(image));
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, setup], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function expectInfraError(promise: Promise<unknown>, message: RegExp): Promise<InfraError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InfraError);
  expect((error as InfraError).exitCode).toBe(3);
  expect((error as Error).message).toMatch(message);
  return error as InfraError;
}

beforeAll(() => requireContainerHost());
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('debian:bookworm from the host mirror', () => {
  it('builds a base and a top layer with the packages installed, and says what it was made from', async () => {
    const image = await testImage(['hello']);
    expect(installed(image.root, 'hello')).toBe(true);
    expect(existsSync(join(image.root, 'usr/bin/hello'))).toBe(true);
    expect(image.key).not.toBe(image.baseKey);
    expect(image.madeFrom).toMatch(/base [0-9a-f]{24} \(.*--variant=minbase bookworm amd64 from http.*\) \+ packages hello/);
    const manifest = readManifest(stateDir, image.key)!;
    expect(manifest).toMatchObject({ name: 'debian:bookworm', layer: 'top', baseKey: image.baseKey, kind: 'debian' });
    expect(manifest.sizeBytes).toBeGreaterThan(50_000_000);
    expect(readManifest(stateDir, image.baseKey)?.keyInputs).toMatchObject({ suite: 'bookworm', variant: 'minbase' });
    expect(readFileSync(join(stateDir, 'images', image.key, 'build.log'), 'utf8')).toMatch(/--suppress-sync=yes/);
    expect(tmpEntries(stateDir)).toEqual([]);
  });

  it('a second provision is a cache hit: cached, same key, last-used updated', async () => {
    const first = await testImage(['hello']);
    const before = readManifest(stateDir, first.key)!;
    await new Promise((r) => setTimeout(r, 20));
    const again = await provisionImage(
      { name: 'debian:bookworm', spec: { packages: [] }, packages: ['hello'] },
      { stateDir },
    );
    expect(again).toMatchObject({ key: first.key, baseKey: first.baseKey, cached: true, root: first.root });
    expect(Date.parse(readManifest(stateDir, first.key)!.lastUsed)).toBeGreaterThan(Date.parse(before.lastUsed));
  });

  it('adding one package rebuilds only the top layer from the cached base', async () => {
    const first = await testImage(['hello']);
    const baseLog = join(stateDir, 'images', first.baseKey, 'build.log');
    const baseLogBefore = { text: readFileSync(baseLog, 'utf8'), mtime: statSync(baseLog).mtimeMs };
    const progress: string[] = [];
    const second = await provisionImage(
      { name: 'debian:bookworm', spec: { packages: [] }, packages: ['hello', 'tree'] },
      { stateDir, onProgress: (l) => progress.push(l) },
    );
    expect(second.cached).toBe(false);
    expect(second.baseKey).toBe(first.baseKey);
    expect(second.key).not.toBe(first.key);
    expect(installed(second.root, 'tree') && installed(second.root, 'hello')).toBe(true);
    expect(installed(first.root, 'tree')).toBe(false);
    expect(readFileSync(baseLog, 'utf8')).toBe(baseLogBefore.text);
    expect(statSync(baseLog).mtimeMs).toBe(baseLogBefore.mtime);
    expect(progress.some((l) => l.includes('building base layer'))).toBe(false);
    expect(progress.some((l) => l.startsWith(`building top layer ${second.key}`))).toBe(true);
  });

  it('with neither packages nor setup the image is the base itself', async () => {
    const layered = await testImage(['hello']);
    const bare = await testImage([]);
    expect(bare.key).toBe(layered.baseKey);
    expect(bare.baseKey).toBe(bare.key);
    expect(bare.root).toBe(join(stateDir, 'images', bare.key, 'rootfs'));
  });

  it('two processes provisioning the same key run exactly one build', async () => {
    await testImage([]);
    const setup = `sleep 2; echo concurrent-${Date.now()} > /etc/nsmatrix-concurrency`;
    const a = provisionInChild(stateDir, setup);
    const b = provisionInChild(stateDir, setup);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    const ia = JSON.parse(ra.stdout) as { key: string; cached: boolean };
    const ib = JSON.parse(rb.stdout) as { key: string; cached: boolean };
    expect(ia.key).toBe(ib.key);
    expect([ia.cached, ib.cached].sort()).toEqual([false, true]);
    const waiter = ia.cached ? ra : rb;
    expect(waiter.stderr).toMatch(/waiting for another build of debian:bookworm \(top [0-9a-f]{24}\)/);
    const log = readFileSync(join(stateDir, 'images', ia.key, 'build.log'), 'utf8');
    expect(log.match(/building top layer/g)).toHaveLength(1);
    expect(`${ra.stderr}${rb.stderr}`.match(/building top layer/g)).toHaveLength(1);
    expect(tmpEntries(stateDir)).toEqual([]);
  });

  it('SIGKILL during a build leaves nothing published and nothing running; the next provision recovers', async () => {
    const base = await testImage([]);
    const setup = `sleep 6; echo survived > /etc/nsmatrix-sigkill-${Date.now()}`;
    const victim = provisionInChild(stateDir, setup);
    await waitFor(() => victim.stderr().includes('running the setup script'), 'the setup script to start');
    const leftover = tmpEntries(stateDir);
    expect(leftover).toHaveLength(1);
    victim.child.kill('SIGKILL');
    const result = await victim.done;
    expect(result.signal).toBe('SIGKILL');
    const key = leftover[0]!.split('.')[0]!;
    await waitFor(() => processesMentioning(leftover[0]!).length === 0, 'the killed build to stop', 10_000);
    expect(readManifest(stateDir, key)).toBeUndefined();
    expect(existsSync(join(stateDir, 'images', key))).toBe(false);

    const recovered = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: [], setup }, { stateDir });
    expect(recovered).toMatchObject({ key, baseKey: base.key, cached: false });
    expect(readdirSync(join(recovered.root, 'etc')).some((f) => f.startsWith('nsmatrix-sigkill-'))).toBe(true);
    expect(tmpEntries(stateDir)).toEqual([]);
    expect(mountsUnder(stateDir)).toEqual([]);
  });

  it('an aborted build releases its processes, lock and temporary directory', async () => {
    await testImage([]);
    const controller = new AbortController();
    const progress: string[] = [];
    const pending = provisionImage(
      { name: 'debian:bookworm', spec: { packages: [] }, packages: [], setup: `sleep 30 # abort-${Date.now()}` },
      { stateDir, signal: controller.signal, onProgress: (l) => progress.push(l) },
    );
    await waitFor(() => progress.some((l) => l.includes('running the setup script')), 'the setup script to start');
    const started = Date.now();
    controller.abort();
    await expectInfraError(pending, /aborted/);
    // Far below the 30 s the setup would take: the build was killed, not waited for (removal of the copy included).
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(resources.labels().filter((l) => l.startsWith('image'))).toEqual([]);
    expect(tmpEntries(stateDir)).toEqual([]);
    expect(processesMentioning('abort-').filter((p) => p.includes('sleep 30'))).toEqual([]);
  });

  it('falls back to debootstrap (forced here by NSMATRIX_BOOTSTRAP_TOOL) and layers packages on it', async () => {
    const own = mkdtempSync('/var/tmp/nsmatrix-images-debootstrap-');
    process.env.NSMATRIX_BOOTSTRAP_TOOL = 'debootstrap';
    try {
      const image = await provisionImage({ name: 'debian:bookworm', spec: { packages: [] }, packages: ['hello'] }, { stateDir: own });
      expect(image.madeFrom).toMatch(/debootstrap --variant=minbase bookworm/);
      expect(readManifest(own, image.baseKey)?.keyInputs).toMatchObject({ tool: 'debootstrap' });
      expect(image.baseKey).not.toBe((await testImage([])).key);
      expect(installed(image.root, 'hello')).toBe(true);
      expect(readFileSync(join(image.root, 'etc/apt/sources.list'), 'utf8')).toMatch(/bookworm-security main/);
    } finally {
      delete process.env.NSMATRIX_BOOTSTRAP_TOOL;
      rmSync(own, { recursive: true, force: true });
    }
  }, 300_000);

  it('an unreachable mirror fails with the log named and its tail, and publishes nothing', async () => {
    const before = listImages(stateDir).length;
    const error = await expectInfraError(
      provisionImage({ name: 'debian:bookworm', spec: { packages: [], mirror: 'http://127.0.0.1:9/debian' }, packages: [] }, { stateDir }),
      /mmdebstrap failed for debian:bookworm from http:\/\/127\.0\.0\.1:9\/debian/,
    );
    expect(error.logPath).toMatch(/\/logs\/[0-9a-f]{24}\.failed\.log$/);
    expect(existsSync(error.logPath!)).toBe(true);
    expect(error.tail.length).toBeGreaterThan(0);
    expect(listImages(stateDir)).toHaveLength(before);
    expect(tmpEntries(stateDir)).toEqual([]);
  });
});

describe('pull:, path: and machine: bases', () => {
  let own: string;
  let server: Server;
  let port: number;
  const tree = join(scratch, 'tree');
  const outside = join(scratch, 'outside');

  beforeAll(async () => {
    own = mkdtempSync('/var/tmp/nsmatrix-images-own-');
    // A tiny root filesystem: a file, a setuid binary, a benign symlink out, a device node.
    mkdirSync(join(tree, 'usr/bin'), { recursive: true });
    mkdirSync(join(tree, 'etc'), { recursive: true });
    mkdirSync(join(tree, 'dev'), { recursive: true });
    writeFileSync(join(tree, 'etc/os-release'), 'ID=tiny\n');
    writeFileSync(join(tree, 'usr/bin/su'), '#!/bin/sh\n', { mode: 0o4755 });
    symlinkSync('/usr/share/zoneinfo/UTC', join(tree, 'etc/localtime'));
    execFileSync('mknod', [join(tree, 'dev/null'), 'c', '1', '3']);
    execFileSync('tar', ['-C', tree, '-czf', join(scratch, 'tiny.tar.gz'), '.']);
    execFileSync('tar', ['-C', tree, '--zstd', '-cf', join(scratch, 'tiny.tar.zst'), '.']);
    execFileSync('tar', ['-C', tree, '-cJf', join(scratch, 'tiny.tar.xz'), '.']);

    // A hostile tarball: ../, an absolute path, and a symlink out followed by a file written through it.
    mkdirSync(outside);
    const hostile = join(scratch, 'hostile');
    mkdirSync(hostile);
    writeFileSync(join(hostile, 'payload'), 'pwned\n');
    symlinkSync(outside, join(hostile, 'out'));
    const tarball = join(scratch, 'hostile.tar');
    execFileSync('tar', ['-C', hostile, '-cf', tarball, 'out']);
    execFileSync('tar', ['-C', hostile, '-rf', tarball, '--transform', 's,^payload$,out/evil,', 'payload']);
    const quiet = { stdio: 'ignore' } as const;
    execFileSync('tar', ['-C', hostile, '-rf', tarball, '--transform', 's,^payload$,../escaped,', '-P', 'payload'], quiet);
    execFileSync('tar', ['-C', hostile, '-rf', tarball, '-P', '--transform', `s,^payload$,${outside}/absolute,`, 'payload'], quiet);

    server = createServer((req, res) => {
      const file = join(scratch, (req.url ?? '/').slice(1));
      if (!/^\/[\w.-]+$/.test(req.url ?? '') || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(own, { recursive: true, force: true });
  });

  it('lists the hostile tarball as a real one (the fixture is what it claims)', () => {
    const names = execFileSync('tar', ['-tf', join(scratch, 'hostile.tar')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    expect(names).toEqual(expect.arrayContaining(['out', 'out/evil', '../escaped', `${outside}/absolute`]));
  });

  it.each(['tiny.tar.gz', 'tiny.tar.zst', 'tiny.tar.xz'])('pulls %s over HTTP from 127.0.0.1, verified and unpacked', async (file) => {
    const sha = sha256(join(scratch, file));
    const url = `http://127.0.0.1:${port}/${file}`;
    const image = await provisionImage({ name: 'tiny', spec: { packages: [], pull: { url, sha256: sha } }, packages: [] }, { stateDir: own });
    expect(image.cached).toBe(false);
    expect(readFileSync(join(image.root, 'etc/os-release'), 'utf8')).toBe('ID=tiny\n');
    expect(statSync(join(image.root, 'usr/bin/su')).mode & 0o4000).toBe(0o4000);
    expect(existsSync(join(image.root, 'dev/null'))).toBe(false);
    expect(readManifest(own, image.key)).toMatchObject({ kind: 'tarball', madeFrom: expect.stringContaining(url) });
    // The same bytes from a local path are the same base: the key is the content.
    const local = await provisionImage(
      { name: 'tiny', spec: { packages: [], pull: { url: join(scratch, file), sha256: sha } }, packages: [] },
      { stateDir: own },
    );
    expect(local).toMatchObject({ key: image.key, cached: true });
  });

  it('refuses a checksum mismatch before unpacking anything', async () => {
    const before = listImages(own).length;
    const url = `http://127.0.0.1:${port}/tiny.tar.gz`;
    const error = await expectInfraError(
      provisionImage({ name: 'tiny', spec: { packages: [], pull: { url, sha256: '0'.repeat(64) } }, packages: [] }, { stateDir: own }),
      /checksum mismatch .* expected sha256 0{64}, got [0-9a-f]{64}/,
    );
    expect(readFileSync(error.logPath!, 'utf8')).not.toMatch(/\$ tar -x/);
    expect(listImages(own)).toHaveLength(before);
    expect(tmpEntries(own)).toEqual([]);
  });

  it('refuses a hostile tarball: nothing written outside, nothing published', async () => {
    const before = listImages(own).length;
    const file = join(scratch, 'hostile.tar');
    const error = await expectInfraError(
      provisionImage(
        { name: 'hostile', spec: { packages: [], pull: { url: `http://127.0.0.1:${port}/hostile.tar`, sha256: sha256(file) } }, packages: [] },
        { stateDir: own },
      ),
      /refusing to unpack: 3 member\(s\) would escape the target/,
    );
    expect(error.tail).toEqual([
      'out/evil: written through the symlink out',
      '../escaped: ".." in the path',
      `${outside}/absolute: absolute path`,
    ]);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(scratch, 'escaped'))).toBe(false);
    expect(listImages(own)).toHaveLength(before);
    expect(tmpEntries(own)).toEqual([]);
  });

  it('a missing download is an infrastructure error', async () => {
    await expectInfraError(
      provisionImage(
        { name: 'tiny', spec: { packages: [], pull: { url: `http://127.0.0.1:${port}/nope.tar`, sha256: 'a'.repeat(64) } }, packages: [] },
        { stateDir: own },
      ),
      /cannot download .*nope\.tar: HTTP 404/,
    );
  });

  it('an image whose path: directory vanished is no image: not listed, rebuilt when asked for, removed by gc', async () => {
    const tree = join(scratch, 'vanishing');
    mkdirSync(join(tree, 'usr/bin'), { recursive: true });
    writeFileSync(join(tree, 'usr/bin/marker'), 'one\n');
    const request = { name: 'vanishing', spec: { packages: [], path: tree }, packages: [] };
    const first = await provisionImage(request, { stateDir: own });
    expect(listImages(own).map((m) => m.key)).toContain(first.key);
    rmSync(tree, { recursive: true, force: true });
    expect(listImages(own).map((m) => m.key)).not.toContain(first.key);
    // the directory comes back: provisioning trusts the tree again only after publishing it anew
    mkdirSync(join(tree, 'usr/bin'), { recursive: true });
    writeFileSync(join(tree, 'usr/bin/marker'), 'one\n');
    const again = await provisionImage(request, { stateDir: own });
    expect(again.root).toBe(tree);
    rmSync(tree, { recursive: true, force: true });
    const removed = await gcImages(own);
    expect(removed.some((p) => p.includes(first.key) || p.includes(again.key))).toBe(true);
    expect(existsSync(join(storePaths(own).images, again.key))).toBe(false);
  });

  it('path: that does not exist is a clear error; machine: looks in /var/lib/machines', async () => {
    await expectInfraError(
      provisionImage({ name: 'mine', spec: { packages: [], path: join(scratch, 'absent') }, packages: [] }, { stateDir: own }),
      /^path: \/.*absent does not exist/,
    );
    await expectInfraError(
      provisionImage({ name: 'mine', spec: { packages: [], machine: 'nsmatrix-absent-machine' }, packages: [] }, { stateDir: own }),
      /\/var\/lib\/machines\/nsmatrix-absent-machine does not exist/,
    );
    expect(listImages(own).filter((m) => m.name === 'mine')).toEqual([]);
  });

  it('path: is used read-only in place; a setup script layers on a copy and leaves the original alone', async () => {
    const tiny = await provisionImage({ name: 'tiny-dir', spec: { packages: [], path: tree }, packages: [] }, { stateDir: own });
    expect(tiny).toMatchObject({ root: tree, cached: false });
    expect(readManifest(own, tiny.key)?.madeFrom).toMatch(/used read-only in place/);
    // A real root filesystem as the directory: the base of this run's bookworm image.
    const bookworm = await testImage([]);
    const spec = { packages: [], path: bookworm.root };
    const layered = await provisionImage({ name: 'dir', spec, packages: [], setup: 'echo layered > /etc/nsmatrix-marker' }, { stateDir: own });
    expect(layered.root).not.toBe(bookworm.root);
    expect(readFileSync(join(layered.root, 'etc/nsmatrix-marker'), 'utf8')).toBe('layered\n');
    expect(existsSync(join(bookworm.root, 'etc/nsmatrix-marker'))).toBe(false);
    const again = await provisionImage({ name: 'dir', spec, packages: [], setup: 'echo layered > /etc/nsmatrix-marker' }, { stateDir: own });
    expect(again).toMatchObject({ key: layered.key, cached: true });
  });

  it('gc removes leftovers of dead builds and keeps published images', async () => {
    const published = listImages(own).map((m) => m.key);
    mkdirSync(join(storePaths(own).tmp, `${'f'.repeat(24)}.999999.dead`), { recursive: true });
    writeFileSync(join(storePaths(own).tmp, `${'f'.repeat(24)}.999999.dead`, 'junk'), 'x');
    const removed = await gcImages(own);
    expect(removed).toEqual([join(storePaths(own).tmp, `${'f'.repeat(24)}.999999.dead`)]);
    expect(listImages(own).map((m) => m.key)).toEqual(published);
  });
});

describe('on a btrfs store', () => {
  const mountPoint = join(scratch, 'btrfs');
  let mounted = false;

  beforeAll(() => {
    const image = join(scratch, 'btrfs.img');
    execFileSync('truncate', ['-s', '3G', image]);
    execFileSync('mkfs.btrfs', ['-q', image], { stdio: 'ignore' });
    mkdirSync(mountPoint);
    execFileSync('mount', ['-o', 'loop', image, mountPoint]);
    mounted = true;
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [mountPoint]);
  });

  it('bases are subvolumes, top layers are snapshots, and removal deletes the subvolumes', async () => {
    // A real root filesystem as a tarball: this run's bookworm base (the audit must accept a real tree).
    const bookworm = await testImage([]);
    const tarball = join(scratch, 'bookworm.tar');
    execFileSync('tar', ['-C', bookworm.root, '--numeric-owner', '-cf', tarball, '.']);
    const dir = join(mountPoint, 'state');
    const spec = { packages: [], pull: { url: tarball, sha256: sha256(tarball) } };
    const progress: string[] = [];
    const image = await provisionImage(
      { name: 'snap', spec, packages: [], setup: 'echo snap > /etc/nsmatrix-btrfs' },
      { stateDir: dir, onProgress: (l) => progress.push(l) },
    );
    const baseRoot = join(dir, 'images', image.baseKey, 'rootfs');
    expect(statSync(baseRoot).ino).toBe(256);
    expect(statSync(image.root).ino).toBe(256);
    expect(progress.some((l) => /cloned base [0-9a-f]{24} by btrfs subvolume snapshot/.test(l))).toBe(true);
    expect(readFileSync(join(image.root, 'etc/nsmatrix-btrfs'), 'utf8')).toBe('snap\n');
    expect(existsSync(join(baseRoot, 'etc/nsmatrix-btrfs'))).toBe(false);
    expect(existsSync(join(baseRoot, 'usr/bin/dpkg'))).toBe(true);

    const { removeImage } = await import('../../src/images/index.js');
    expect((await removeImage(dir, 'snap')).sort()).toEqual([image.baseKey, image.key].sort());
    const subvolumes = execFileSync('btrfs', ['subvolume', 'list', mountPoint], { encoding: 'utf8' });
    expect(subvolumes.trim()).toBe('');
    expect(listImages(dir)).toEqual([]);
  });
});

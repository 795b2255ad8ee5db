/**
 * `oci:` images from a real registry on 127.0.0.1 (Debian's docker-registry), holding an image the test makes
 * with umoci from the run's debian:bookworm tree, in several layers: a file deleted in an upper layer, an opaque
 * directory, a hard link, odd owners and modes. Pulled by nsmatrix, checked file by file, then cached, re-tagged,
 * corrupted, and run in a real matrix next to debian:bookworm through the built CLI.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chownSync, chmodSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { InfraError } from '../../src/errors.js';
import { listImages, provisionImage } from '../../src/images/index.js';
import { buildDirsOf } from '../../src/images/store.js';
import type { ProvisionedImage } from '../../src/images/types.js';
import type { RunResult } from '../../src/run/result.js';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

const stateDir = inject('stateDir');
let work: string;
let registry: ChildProcess | undefined;
let registryLog = '';
let host: string;
let debianRoot: string;

const sh = (command: string, args: string[], cwd?: string) =>
  execFileSync(command, args, { cwd: cwd ?? work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function startRegistry(): Promise<void> {
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  const config = join(work, 'registry.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'storage')}\nhttp:\n  addr: ${host}\n`,
  );
  registry = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  registry.stdout!.on('data', (c: Buffer) => (registryLog += c.toString()));
  registry.stderr!.on('data', (c: Buffer) => (registryLog += c.toString()));
  for (let i = 0; i < 100; i++) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not start on ${host}:\n${registryLog}`);
}

/** Blob downloads the registry served so far (GET .../blobs/sha256:...). */
const blobGets = () => registryLog.split('\n').filter((l) => /"GET \/v2\/[^ ]+\/blobs\/sha256:/.test(l)).length;
const manifestGets = () => registryLog.split('\n').filter((l) => /"(GET|HEAD) \/v2\/[^ ]+\/manifests\//.test(l)).length;

/** A layer of the image `layout:tag`: unpack, let `change` edit the tree, repack as one new layer. */
function addLayer(layout: string, change: (rootfs: string) => void): void {
  const bundle = join(work, `bundle-${Date.now()}`);
  sh('umoci', ['unpack', '--image', layout, bundle]);
  change(join(bundle, 'rootfs'));
  sh('umoci', ['repack', '--image', layout, bundle]);
  rmSync(bundle, { recursive: true, force: true });
}

function push(layout: string, target: string): void {
  sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}`, `docker://${host}/${target}`]);
}

/** An uncompressed layer written by hand: tar archives umoci repack never makes (an opaque directory). */
function addRawLayer(layout: string, name: string, files: Record<string, string>): void {
  const dir = join(work, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const tar = join(work, `${name}.tar`);
  sh('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', dir, '-cf', tar, ...readdirSync(dir)]);
  sh('umoci', ['raw', 'add-layer', '--image', layout, tar]);
}

const LAYOUT = () => join(work, 'layout');

beforeAll(async () => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-oci-test-');
  await startRegistry();
  debianRoot = (await testImage()).root;

  const image = `${LAYOUT()}:v1`;
  sh('umoci', ['init', '--layout', LAYOUT()]);
  sh('umoci', ['new', '--image', image]);
  // Layer 1: the whole Debian tree plus the objects under test.
  addLayer(image, (rootfs) => {
    sh('cp', ['-a', `${debianRoot}/.`, rootfs]);
    mkdirSync(join(rootfs, 'opt/nsm/opaque'), { recursive: true });
    writeFileSync(join(rootfs, 'opt/nsm/opaque/old-1'), 'old\n');
    writeFileSync(join(rootfs, 'opt/nsm/opaque/old-2'), 'old\n');
    writeFileSync(join(rootfs, 'opt/nsm/doomed'), 'deleted in layer 2\n');
    writeFileSync(join(rootfs, 'opt/nsm/linked'), 'one inode, two names\n');
    linkSync(join(rootfs, 'opt/nsm/linked'), join(rootfs, 'opt/nsm/hard-link'));
    writeFileSync(join(rootfs, 'opt/nsm/owned'), 'owned by 1234:5678, mode 4750\n');
    chownSync(join(rootfs, 'opt/nsm/owned'), 1234, 5678);
    chmodSync(join(rootfs, 'opt/nsm/owned'), 0o4750);
  });
  // Layer 2: a deletion (a .wh. whiteout) and a changed file.
  addLayer(image, (rootfs) => {
    rmSync(join(rootfs, 'opt/nsm/doomed'));
    writeFileSync(join(rootfs, 'etc/nsm-marker'), 'v1\n');
  });
  // Layer 3: an opaque directory replacing everything below opt/nsm/opaque.
  addRawLayer(image, 'layer3', { 'opt/nsm/opaque/.wh..wh..opq': '', 'opt/nsm/opaque/new': 'new\n' });
  push(image, 'nsmatrix/debian:v1');
}, 900_000);

afterAll(async () => {
  if (registry && registry.exitCode === null && registry.signalCode === null) {
    const exited = new Promise((resolve) => registry!.once('close', resolve));
    registry.kill('SIGKILL');
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

const request = (name: string, packages: string[] = []) => ({ name, spec: { packages: [], insecure: true }, packages });
const provision = (name: string, lines: string[] = [], packages: string[] = []) =>
  provisionImage(request(name, packages), { stateDir, onProgress: (l) => lines.push(l) });

/** Every entry below `root` but device nodes: type, mode, owner, size of files, link target. */
function listing(root: string, except: RegExp): string[] {
  const out = sh('find', [root, '-xdev', '-mindepth', '1', '!', '-type', 'b', '!', '-type', 'c', '-printf', '%P|%y|%m|%U|%G|%l|%s\\n']);
  return out
    .split('\n')
    .filter((l) => l && !except.test(l))
    .map((l) => (l.split('|')[1] === 'd' ? l.replace(/\|\d+$/, '|dir') : l))
    .sort();
}

describe('oci: images from a registry', () => {
  let first: ProvisionedImage;
  const name = () => `oci:${host}/nsmatrix/debian:v1`;

  it('pulls, verifies and unpacks the layers in order, file by file', async () => {
    const lines: string[] = [];
    first = await provision(name(), lines);
    expect(first.cached).toBe(false);
    expect(first.madeFrom).toMatch(/^oci .*nsmatrix\/debian:v1 = sha256:[0-9a-f]{64}/);
    expect(lines.join('\n')).toMatch(/skopeo copy/);
    const root = first.root;

    // The Debian tree arrives entry for entry (types, modes, owners, sizes, link targets).
    const ours = /^(opt\/nsm|etc\/nsm-marker)|^opt\|/;
    expect(listing(root, ours)).toEqual(listing(debianRoot, ours));
    // Layer 2's whiteout removed the file; its new file is there.
    expect(existsSync(join(root, 'opt/nsm/doomed'))).toBe(false);
    expect(readFileSync(join(root, 'etc/nsm-marker'), 'utf8')).toBe('v1\n');
    // Layer 3's opaque directory hides what the lower layers had there, and leaves no whiteout file behind.
    expect(readdirSync(join(root, 'opt/nsm/opaque')).sort()).toEqual(['new']);
    expect(sh('find', [root, '-name', '.wh.*'])).toBe('');
    // Hard links stay one inode; owners and the setuid mode survive.
    const a = statSync(join(root, 'opt/nsm/linked'));
    const b = statSync(join(root, 'opt/nsm/hard-link'));
    expect([a.ino, a.nlink]).toEqual([b.ino, 2]);
    const owned = statSync(join(root, 'opt/nsm/owned'));
    expect([owned.uid, owned.gid, owned.mode & 0o7777]).toEqual([1234, 5678, 0o4750]);
    // Device nodes are never taken from an image.
    expect(sh('find', [root, '-xdev', '(', '-type', 'b', '-o', '-type', 'c', ')'])).toBe('');
    expect(statSync(root).mode & 0o777).toBe(0o755);
  });

  it('is a cache hit the second time: the manifest is resolved, no layer is downloaded', async () => {
    const blobsBefore = blobGets();
    const manifestsBefore = manifestGets();
    const lines: string[] = [];
    const started = Date.now();
    const again = await provision(name(), lines);
    const ms = Date.now() - started;
    expect(again.cached).toBe(true);
    expect(again.key).toBe(first.key);
    expect(again.root).toBe(first.root);
    expect(blobGets()).toBe(blobsBefore);
    expect(manifestGets()).toBeGreaterThan(manifestsBefore);
    expect(lines.join('\n')).not.toMatch(/skopeo copy/);
    console.info(`oci: cache hit (manifest resolved, no layer downloaded) in ${ms} ms`);
  });

  it('notices a new image pushed under the same tag', async () => {
    addLayer(`${LAYOUT()}:v1`, (rootfs) => writeFileSync(join(rootfs, 'etc/nsm-marker'), 'v2\n'));
    push(`${LAYOUT()}:v1`, 'nsmatrix/debian:v1');
    const moved = await provision(name());
    expect(moved.cached).toBe(false);
    expect(moved.key).not.toBe(first.key);
    expect(readFileSync(join(moved.root, 'etc/nsm-marker'), 'utf8')).toBe('v2\n');
    // The old digest's image is still published, untouched.
    expect(readFileSync(join(first.root, 'etc/nsm-marker'), 'utf8')).toBe('v1\n');
  });

  it('refuses a corrupted blob: exit 3, the digest named, nothing published', async () => {
    addRawLayer(`${LAYOUT()}:v1`, 'layer-corrupt', { 'opt/nsm/corrupt-me': 'x'.repeat(4096) });
    push(`${LAYOUT()}:v1`, 'nsmatrix/debian:corrupt');
    const index = JSON.parse(readFileSync(join(LAYOUT(), 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const manifestDigest = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1')!.digest;
    const manifest = JSON.parse(readFileSync(join(LAYOUT(), 'blobs/sha256', manifestDigest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    const top = manifest.layers.at(-1)!.digest.slice(7);
    const data = join(work, 'storage/docker/registry/v2/blobs/sha256', top.slice(0, 2), top, 'data');
    const bytes = readFileSync(data);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(data, bytes);

    const before = listImages(stateDir).map((m) => m.key).sort();
    const error = await provision(`oci:${host}/nsmatrix/debian:corrupt`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InfraError);
    expect((error as InfraError).exitCode).toBe(3);
    expect((error as InfraError).message).toMatch(/pulling .*debian:corrupt failed/);
    expect((error as InfraError).tail.join('\n')).toMatch(/[Dd]igest did not match/);
    expect(listImages(stateDir).map((m) => m.key).sort()).toEqual(before);
    expect(buildDirsOf(stateDir)).toEqual([]);
    // Later images are built on this layout: give the registry its intact blob back.
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(data, bytes);
  });

  it('an abort during the pull kills skopeo and publishes nothing; the next provision pulls cleanly', async () => {
    addRawLayer(`${LAYOUT()}:v1`, 'layer-abort', { 'opt/nsm/abort-me': 'y'.repeat(1 << 20) });
    push(`${LAYOUT()}:v1`, 'nsmatrix/debian:abort');
    const before = listImages(stateDir).map((m) => m.key).sort();
    const controller = new AbortController();
    const name = `oci:${host}/nsmatrix/debian:abort`;
    const error = await provisionImage(request(name), {
      stateDir,
      signal: controller.signal,
      onProgress: (line) => {
        if (line.startsWith('$ skopeo copy')) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InfraError);
    expect((error as Error).message).toMatch(/aborted/);
    expect(listImages(stateDir).map((m) => m.key).sort()).toEqual(before);
    expect(buildDirsOf(stateDir)).toEqual([]);
    expect(sh('ps', ['-eo', 'args']).split('\n').filter((l) => l.startsWith('skopeo copy') && l.includes('debian@'))).toEqual([]);
    const pulled = await provision(name);
    expect(pulled.cached).toBe(false);
    expect(readFileSync(join(pulled.root, 'opt/nsm/abort-me'), 'utf8')).toHaveLength(1 << 20);
  });

  it('talks plain HTTP only when the image says insecure: true', async () => {
    const error = await provisionImage({ name: `oci:${host}/nsmatrix/debian:v1`, spec: { packages: [] }, packages: [] }, { stateDir }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InfraError);
    expect((error as InfraError).exitCode).toBe(3);
    expect((error as Error).message).toMatch(/^cannot resolve docker:\/\/127\.0\.0\.1:\d+\/nsmatrix\/debian:v1: .*HTTP response to HTTPS client/);
  });

  it('refuses to boot an image with no systemd, and cannot guess a package manager it does not know', async () => {
    // The v1 tree says it is Debian; a copy whose os-release says Alpine stands in for an Alpine image.
    const fake = join(work, 'alpine-like');
    mkdirSync(join(fake, 'usr'), { recursive: true });
    mkdirSync(join(fake, 'etc'));
    writeFileSync(join(fake, 'etc/os-release'), 'ID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n');
    const boot = await provisionImage(
      { name: 'alpine-like', spec: { packages: [], path: fake }, packages: [], boot: true },
      { stateDir },
    ).catch((e: unknown) => e);
    expect(boot).toBeInstanceOf(InfraError);
    expect((boot as Error).message).toMatch(/Alpine Linux v3.20\) has no systemd to boot/);
    writeFileSync(join(fake, 'etc/os-release'), 'ID=plan9\n');
    const unknown = await provisionImage({ name: 'plan9', spec: { packages: [], path: fake }, packages: ['hello'] }, { stateDir }).catch((e: unknown) => e);
    expect((unknown as Error).message).toMatch(/cannot tell its package manager \(ID "plan9"/);
  });

  it('runs matrices/local-registry.yaml: debian:bookworm and the pulled oci: image, one packages: list, through the built CLI', () => {
    sh('npm', ['run', 'build', '--silent'], process.cwd());
    const dir = join(work, 'project');
    mkdirSync(dir);
    const ref = `oci:${host}/nsmatrix/debian:v1`;
    // The committed example, pointed at this test's registry.
    const example = readFileSync('matrices/local-registry.yaml', 'utf8');
    expect(example).toContain('oci:127.0.0.1:5000/nsmatrix/debian:v1');
    writeFileSync(join(dir, 'nsmatrix.yaml'), example.replaceAll('127.0.0.1:5000', host));
    const out = join(work, 'out');
    const r = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out, '-r', 'json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    expect(result.cells.map((c) => [c.image, c.outcome])).toEqual([
      ['debian:bookworm', 'passed'],
      [ref, 'passed'],
    ]);
    const markers = result.cells.map((c) => readFileSync(join(out, c.artifactsDir, 'marker'), 'utf8'));
    // The tag was moved to the v2 image by an earlier test: the run pulled what the tag names now.
    expect(markers).toEqual(['plain\n', 'v2\n']);
  });

  it('an index for amd64 and arm64: each arch cell pulls its own platform, the arm64 one runs emulated', { timeout: 1_800_000 }, async () => {
    // The arm64 half is the multi-arch example's arm64 base (same image spec, so the suite builds it once).
    const arm64 = await provisionImage(
      { name: 'debian:bookworm', spec: { packages: [], mirror: 'http://deb.debian.org/debian' }, packages: [], arch: 'arm64' },
      { stateDir },
    );
    const armImage = `${LAYOUT()}:arm64`;
    sh('umoci', ['new', '--image', armImage]);
    sh('umoci', ['config', '--image', armImage, '--os=linux', '--architecture=arm64']);
    addLayer(armImage, (rootfs) => sh('cp', ['-a', `${arm64.root}/.`, rootfs]));
    // An OCI index naming v1 (amd64, as umoci made it) and the arm64 image, tagged `multi` in the layout.
    type Entry = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
    const indexPath = join(LAYOUT(), 'index.json');
    const layoutIndex = JSON.parse(readFileSync(indexPath, 'utf8')) as { manifests: Entry[] };
    const tagged = (tag: string) => layoutIndex.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
    const entry = (tag: string, platform: Record<string, string>) => ({ mediaType: tagged(tag).mediaType, digest: tagged(tag).digest, size: tagged(tag).size, platform });
    const multi = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [entry('v1', { os: 'linux', architecture: 'amd64' }), entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' })],
    });
    const multiDigest = createHash('sha256').update(multi).digest('hex');
    writeFileSync(join(LAYOUT(), 'blobs/sha256', multiDigest), multi);
    layoutIndex.manifests.push({
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: `sha256:${multiDigest}`,
      size: Buffer.byteLength(multi),
      annotations: { 'org.opencontainers.image.ref.name': 'multi' },
    });
    writeFileSync(indexPath, JSON.stringify(layoutIndex));
    sh('skopeo', ['copy', '--all', '--quiet', '--dest-tls-verify=false', `oci:${LAYOUT()}:multi`, `docker://${host}/nsmatrix/debian:multi`]);
    // The arm64 image on its own (no index): asked for another foreign architecture, its config refuses it.
    sh('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${armImage}`, `docker://${host}/nsmatrix/debian:arm64-only`]);

    const dir = join(work, 'multi');
    mkdirSync(dir);
    const ref = `oci:${host}/nsmatrix/debian:multi`;
    writeFileSync(
      join(dir, 'nsmatrix.yaml'),
      [
        'matrix:',
        `  image: ["${ref}"]`,
        '  arch: [amd64, arm64]',
        'images:',
        `  "${ref}": { insecure: true }`,
        'steps:',
        '  - name: architecture',
        '    run: echo "uname=$(uname -m) dpkg=$(dpkg --print-architecture) marker=$(cat /etc/nsm-marker 2>/dev/null || echo none)"',
      ].join('\n') + '\n',
    );
    const out = join(dir, 'out');
    const r = runCli(['run', join(dir, 'nsmatrix.yaml'), '--state-dir', stateDir, '-o', out, '-r', 'json'], { timeoutMs: 1_200_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    // amd64 is v1's tree (its marker says v1, or v2 after the tag moved above); arm64 the plain arm64 base.
    expect(result.cells.map((c) => [c.values.arch, c.steps[0]!.attempts[0]!.tail.at(-1)])).toEqual([
      ['amd64', expect.stringMatching(/^uname=x86_64 dpkg=amd64 marker=v[12]$/)],
      ['arm64', 'uname=aarch64 dpkg=arm64 marker=none'],
    ]);
    const listed = runCli(['images', 'list', '--state-dir', stateDir]);
    expect(listed.stdout).toMatch(new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+arm64\\s`));

    const wrong = await provisionImage({ ...request(`oci:${host}/nsmatrix/debian:arm64-only`), arch: 'i386' }, { stateDir }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(InfraError);
    expect((wrong as Error).message).toMatch(/debian:arm64-only is an image for linux\/arm64 only, not linux\/386/);
  });
});

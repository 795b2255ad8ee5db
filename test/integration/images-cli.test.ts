/** `nsmatrix images build|list|rm|prune` through the command functions the CLI calls. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { build, list, prune, rm } from '../../src/cli/commands/images.js';
import { UsageError } from '../../src/errors.js';
import { listImages, provisionImage } from '../../src/images/index.js';
import { readManifest, writeManifest, imageDir } from '../../src/images/store.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

const stateDir = inject('stateDir');
const own = mkdtempSync('/var/tmp/nsmatrix-images-cli-');

async function capture(run: () => Promise<number>): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  try {
    return { code: await run(), stdout };
  } finally {
    spy.mockRestore();
  }
}

/** Three small images in a private store, made from directories (no build needed). */
async function directoryImage(name: string): Promise<string> {
  const tree = join(own, 'trees', name);
  mkdirSync(join(tree, 'usr'), { recursive: true });
  writeFileSync(join(tree, 'usr', 'marker'), name);
  return (await provisionImage({ name, spec: { packages: [], path: tree }, packages: [] }, { stateDir: own })).key;
}

beforeAll(() => requireContainerHost());
afterAll(() => rmSync(own, { recursive: true, force: true }));

describe('nsmatrix images', () => {
  it('build prints the key, whether it was cached, and what it was made from', async () => {
    const image = await testImage([]);
    const { code, stdout } = await capture(() => build({ refs: ['debian:bookworm'], stateDir, packages: [] }));
    expect(code).toBe(0);
    expect(stdout).toContain(`debian:bookworm  amd64  ${image.key}  cached`);
    expect(stdout).toMatch(/made from: mmdebstrap --variant=minbase bookworm amd64 from http/);
  });

  it('build of an unknown suite fails with exit 2 (a bad image reference, README: exit codes) and publishes nothing', async () => {
    const before = listImages(stateDir).length;
    await expect(build({ refs: ['debian:hamm'], stateDir, packages: [] })).rejects.toMatchObject({ exitCode: 2 });
    await expect(build({ refs: ['../../etc/passwd'], stateDir, packages: [] })).rejects.toMatchObject({ exitCode: 2 });
    expect(listImages(stateDir)).toHaveLength(before);
  });

  it('list shows name, key, size, age and last use as a table or JSON', async () => {
    const key = await directoryImage('listed');
    const table = await capture(() => list({ stateDir: own, format: 'table' }));
    const [header, row] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+ARCH\s+KEY\s+LAYER\s+SIZE\s+AGE\s+LAST USED$/);
    expect(row).toMatch(new RegExp(`^listed\\s+\\S+\\s+${key}\\s+base\\s+-\\s+\\S+ ago\\s+\\S+ ago$`));
    const json = await capture(() => list({ stateDir: own, format: 'json' }));
    expect((JSON.parse(json.stdout) as { key: string }[]).map((m) => m.key)).toContain(key);
  });

  it('rm removes by name or key prefix and refuses unknown references', async () => {
    const byName = await directoryImage('to-remove');
    const byKey = await directoryImage('to-remove-by-key');
    expect((await capture(() => rm({ stateDir: own, refs: ['to-remove'] }))).stdout).toBe(`removed ${byName} (to-remove)\n`);
    expect((await capture(() => rm({ stateDir: own, refs: [byKey.slice(0, 8)] }))).stdout).toContain(`removed ${byKey}`);
    expect(readManifest(own, byName)).toBeUndefined();
    expect(readManifest(own, byKey)).toBeUndefined();
    await expect(rm({ stateDir: own, refs: ['never-built'] })).rejects.toMatchObject({ exitCode: 2 });
  });

  it('prune removes images unused for longer than --older-than and keeps the rest', async () => {
    const old = await directoryImage('old');
    const fresh = await directoryImage('fresh');
    const manifest = readManifest(own, old)!;
    writeManifest(imageDir(own, old), { ...manifest, lastUsed: new Date(Date.now() - 20 * 86_400_000).toISOString() });
    const { stdout } = await capture(() => prune({ stateDir: own, olderThan: '14d' }));
    expect(stdout).toContain(`removed ${old}`);
    expect(readManifest(own, old)).toBeUndefined();
    expect(readManifest(own, fresh)).toBeDefined();
    await expect(prune({ stateDir: own, olderThan: 'soon' })).rejects.toBeInstanceOf(UsageError);
  });

  it('the store is private to root (image trees keep their setuid binaries)', () => {
    const mode = execFileSync('stat', ['-c', '%a', join(own, 'images')], { encoding: 'utf8' }).trim();
    expect(mode).toBe('700');
  });
});

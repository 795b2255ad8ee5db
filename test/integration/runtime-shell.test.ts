/** `nsmatrix shell` with real containers: runs a command with the current directory at /src, returns its status. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import shell, { shellScript } from '../../src/cli/commands/shell.js';
import { UsageError } from '../../src/errors.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

requireContainerHost();
const stateDir = inject('stateDir');
const work = mkdtempSync(join('/var/tmp', 'nsm-shell-test-'));
const project = join(work, 'project');
const exchange = join(work, 'exchange');
const previousCwd = process.cwd();

beforeAll(async () => {
  await testImage(); // the base image, built by the images stage into this run's state dir
  mkdirSync(project, { recursive: true });
  mkdirSync(exchange, { recursive: true });
  writeFileSync(join(project, 'hello.txt'), 'from the project\n');
  process.chdir(project);
});

afterAll(() => {
  process.chdir(previousCwd);
  rmSync(work, { recursive: true, force: true });
});

// As root inside (as a cell): under sudo, SUDO_UID would make the shell run as that user, who cannot write /exchange.
const base = { image: 'debian:bookworm', packages: [] as string[], bind: [`${exchange}:/exchange`], stateDir, network: 'host' as const, root: true };

describe('nsmatrix shell', () => {
  it('runs a command in /src over the current directory and returns its exit status', async () => {
    const script = 'pwd > /exchange/pwd; cat hello.txt > /exchange/seen; echo changed > hello.txt; exit 5';
    expect(await shell({ ...base, command: ['sh', '-c', script] })).toBe(5);
    expect(readFileSync(join(exchange, 'pwd'), 'utf8')).toBe('/src\n');
    expect(readFileSync(join(exchange, 'seen'), 'utf8')).toBe('from the project\n');
    expect(readFileSync(join(project, 'hello.txt'), 'utf8')).toBe('from the project\n');
    expect(await shell({ ...base, command: ['true'] })).toBe(0);
    expect(await shell({ ...base, command: ['sh', '-c', 'kill -9 $$'] })).toBe(137);
    // Nothing of the throwaway containers remains in the state dir's scratch area.
    expect(readdirSync(join(stateDir, 'run')).filter((d) => d.startsWith(`${process.pid}-`))).toEqual([]);
  });

  it('puts -p packages into a cached layer: the second shell with them reuses it', async () => {
    const images = join(stateDir, 'images');
    const helloLayer = () =>
      readdirSync(images)
        .map((key) => JSON.parse(readFileSync(join(images, key, 'manifest.json'), 'utf8')) as { key: string; created: string; lastUsed: string; keyInputs: { packages?: string[] } })
        .find((m) => JSON.stringify(m.keyInputs.packages) === JSON.stringify(['hello']));
    expect(await shell({ ...base, packages: ['hello'], command: ['sh', '-c', 'hello > /exchange/hello'] })).toBe(0);
    expect(readFileSync(join(exchange, 'hello'), 'utf8')).toBe('Hello, world!\n');
    const layer = helloLayer();
    expect(layer, 'the -p packages went into a cached top layer').toBeTruthy();
    const before = readdirSync(images).sort();
    expect(await shell({ ...base, packages: ['hello'], command: ['hello'] })).toBe(0);
    // a cache hit: no new image, the same layer (not rebuilt), marked as used again
    expect(readdirSync(images).sort()).toEqual(before);
    const again = helloLayer()!;
    expect(again.key).toBe(layer!.key);
    expect(again.created).toBe(layer!.created);
    expect(Date.parse(again.lastUsed)).toBeGreaterThanOrEqual(Date.parse(layer!.lastUsed));
  }, 600_000);

  it('refuses a hostile --bind', async () => {
    await expect(shell({ ...base, bind: ['/:/host'], command: ['true'] })).rejects.toThrow(UsageError);
    await expect(shell({ ...base, bind: [`${stateDir}:/state`], command: ['true'] })).rejects.toThrow(/state directory/);
    expect(existsSync(join(exchange, 'nothing'))).toBe(false);
  });

  it('quotes the command exactly', () => {
    expect(shellScript(['printf', "%s\n", "it's"])).toBe(`exec 'printf' '%s\n' 'it'\\''s'`);
    expect(shellScript([])).toMatch(/exec bash -l/);
  });
});

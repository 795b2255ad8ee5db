/** lib/code-cache.ts: the CLI bundle runs as CommonJS with V8's code cache, which never outlives the bundle it was made from. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheUpdate, GROWTH_FLOOR, MAX_GENERATION } from '../../src/lib/code-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-code-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const loader = resolve('src/lib/code-cache.ts');

/** Runs the bundle in a fresh node, as bin.ts does, with `argv` after it. */
function runIt(bundle: string, cacheDir: string, argv: string[], env: Record<string, string> = {}): string {
  const code = `import { runBundle } from ${JSON.stringify(loader)}; runBundle(${JSON.stringify(bundle)}, ${JSON.stringify(argv)}, ${JSON.stringify(cacheDir)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

const bundleText = (word: string) => `#!/usr/bin/env node\nconst { basename } = require('node:path');\nmodule.exports = 1;\nprocess.stdout.write(['${word}', basename(__filename), basename(__dirname), typeof exports].join(' ') + '\\n');\n`;

describe('runBundle', () => {
  it('runs a CommonJS file as node would (require, module, __filename, __dirname; a #! line)', () => {
    const bundle = join(dir, 'plain.cjs');
    writeFileSync(bundle, bundleText('hello'));
    expect(runIt(bundle, join(dir, 'cache-plain'), ['list'])).toBe(`hello plain.cjs ${dir.split('/').pop()} object\n`);
  });

  it.runIf(process.getuid?.() === 0)('keeps a cache per command, reuses it, and never uses one made for another bundle of the same length', () => {
    const bundle = join(dir, 'b.cjs');
    const cache = join(dir, 'cache');
    writeFileSync(bundle, bundleText('first'));
    expect(runIt(bundle, cache, ['shell', 'x'])).toMatch(/^first /);
    const [made] = readdirSync(cache);
    expect(made).toMatch(/^shell-.+\.v8$/);
    const generation = () => readFileSync(join(cache, made!))[0];
    expect(generation()).toBe(1);
    // Accepted, and written again only until it stops growing (here at once: the same code ran).
    expect(runIt(bundle, cache, ['shell'])).toMatch(/^first /);
    expect(generation()).toBe(MAX_GENERATION);
    const written = statSync(join(cache, made!), { bigint: true }).mtimeNs;
    expect(runIt(bundle, cache, ['shell'])).toMatch(/^first /);
    expect(statSync(join(cache, made!), { bigint: true }).mtimeNs).toBe(written);
    runIt(bundle, cache, ['--help']);
    expect(readdirSync(cache).sort().map((n) => n.split('-')[0])).toEqual(['other', 'shell']);

    // A rebuilt bundle of exactly the same length: V8 alone would take the old code.
    writeFileSync(bundle, bundleText('other'));
    expect(runIt(bundle, cache, ['shell'])).toMatch(/^other /);
    const shells = readdirSync(cache).filter((n) => n.startsWith('shell-'));
    expect(shells).toHaveLength(1);
    expect(shells[0]).not.toBe(made);
  });

  it.runIf(process.getuid?.() === 0)('grows a cache with the code a later run of the same command took that the first did not', () => {
    const bundle = join(dir, 'paths.cjs');
    const cache = join(dir, 'cache-paths');
    // Two paths through one bundle, each with functions of its own; NSM_PATH picks one.
    const fns = (p: string) => Array.from({ length: 300 }, (_, i) => `function ${p}${i}(x) { return [x, ${i}, '${p}'].join(':').length + ${i}; }`).join('\n');
    writeFileSync(bundle, `${fns('a')}\n${fns('b')}\nlet t = 0;\nfor (let i = 0; i < 300; i++) t += (process.env.NSM_PATH === 'b' ? eval('b' + i) : eval('a' + i))(i);\nprocess.stdout.write(String(t) + '\\n');\n`);
    runIt(bundle, cache, ['shell'], { NSM_PATH: 'a' });
    const [made] = readdirSync(cache);
    const first = readFileSync(join(cache, made!));
    expect(first[0]).toBe(1);
    runIt(bundle, cache, ['shell'], { NSM_PATH: 'b' });
    const second = readFileSync(join(cache, made!));
    expect(second[0]).toBe(2);
    expect(second.length).toBeGreaterThan(first.length * (1 + GROWTH_FLOOR));
  });
});

describe('cacheUpdate', () => {
  const made = (bytes: number) => () => new Uint8Array(bytes);
  it('writes a first cache as generation 1', () => {
    expect(cacheUpdate(null, made(10))).toMatchObject({ generation: 1 });
  });
  it('writes a grown cache as the next generation, one that did not grow as final', () => {
    expect(cacheUpdate({ generation: 1, bytes: 1000 }, made(1100))).toMatchObject({ generation: 2 });
    expect(cacheUpdate({ generation: 2, bytes: 1000 }, made(1010))).toMatchObject({ generation: MAX_GENERATION });
  });
  it('leaves a final cache alone without serialising anything', () => {
    let called = false;
    expect(cacheUpdate({ generation: MAX_GENERATION, bytes: 1000 }, () => ((called = true), new Uint8Array(5000)))).toBeNull();
    expect(called).toBe(false);
  });
});

/** lib/code-cache.ts: the CLI bundle runs as CommonJS with V8's code cache, which never outlives the bundle it was made from. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'nsm-code-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const loader = resolve('src/lib/code-cache.ts');

/** Runs the bundle in a fresh node, as bin.ts does, with `argv` after it. */
function runIt(bundle: string, cacheDir: string, argv: string[]): string {
  const code = `import { runBundle } from ${JSON.stringify(loader)}; runBundle(${JSON.stringify(bundle)}, ${JSON.stringify(argv)}, ${JSON.stringify(cacheDir)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
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
    const written = statSync(join(cache, made!)).mtimeMs;
    expect(runIt(bundle, cache, ['shell'])).toMatch(/^first /);
    // Accepted: not written again.
    expect(statSync(join(cache, made!)).mtimeMs).toBe(written);
    runIt(bundle, cache, ['--help']);
    expect(readdirSync(cache).sort().map((n) => n.split('-')[0])).toEqual(['other', 'shell']);

    // A rebuilt bundle of exactly the same length: V8 alone would take the old code.
    writeFileSync(bundle, bundleText('other'));
    expect(runIt(bundle, cache, ['shell'])).toMatch(/^other /);
    const shells = readdirSync(cache).filter((n) => n.startsWith('shell-'));
    expect(shells).toHaveLength(1);
    expect(shells[0]).not.toBe(made);
  });
});

/**
 * matrix/model-cache.ts: root keeps validated matrix models between commands. What it gives back must be the model
 * parsing would give; anything that changes the model (text, name, directory, code) must miss; and the CLI must
 * really take a kept model instead of parsing (checked by planting a different model under the key it reads).
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { parseMatrix } from '../../src/matrix/load.js';
import { cachedModel, keepModel, MAX_KEPT_MODELS } from '../../src/matrix/model-cache.js';
import { CLI, runCli } from '../helpers/cli.js';
import { fileIdentity } from '../../src/lib/root-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-model-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

const TEXT = 'name: m\nmatrix:\n  image: [debian:bookworm]\n  cc: [gcc, clang]\nbind: [data:/data:ro]\nsteps:\n  - name: s\n    run: echo ${{ matrix.cc }}\n    timeout: 90s\n';

describe('a kept model', () => {
  it('is, through JSON, exactly the model parsing gives, for every example matrix', () => {
    const files = readdirSync('matrices').filter((n) => n.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(3);
    for (const name of files) {
      const file = join('matrices', name);
      const model = parseMatrix(readFileSync(file, 'utf8'), file);
      expect(JSON.parse(JSON.stringify(model)), file).toStrictEqual(model);
    }
  });

  it.runIf(isRoot)('is given back for the same text, name, directory and build, and missed when any of them differs', () => {
    const cache = { dir: join(dir, 'models'), build: 'build-1' };
    const model = parseMatrix(TEXT, 'nsmatrix.yaml');
    expect(cachedModel(TEXT, 'nsmatrix.yaml', cache)).toBeNull();
    keepModel(TEXT, 'nsmatrix.yaml', model, cache);
    expect(cachedModel(TEXT, 'nsmatrix.yaml', cache)).toStrictEqual(model);
    expect(cachedModel(`${TEXT}\n`, 'nsmatrix.yaml', cache)).toBeNull();
    expect(cachedModel(TEXT, 'other.yaml', cache)).toBeNull();
    expect(cachedModel(TEXT, 'nsmatrix.yaml', { ...cache, build: 'build-2' })).toBeNull();
    // Same name from another directory: the bind's host path would resolve elsewhere.
    const here = process.cwd();
    process.chdir(dir);
    try {
      expect(cachedModel(TEXT, 'nsmatrix.yaml', cache)).toBeNull();
    } finally {
      process.chdir(here);
    }
    // Without a build identity (not running from the bundle) nothing is kept or read.
    keepModel(TEXT, 'x.yaml', model, { ...cache, build: null });
    expect(cachedModel(TEXT, 'x.yaml', { ...cache, build: null })).toBeNull();
    expect(readdirSync(cache.dir)).toHaveLength(1);
  });

  it.runIf(isRoot)(`keeps at most ${MAX_KEPT_MODELS} models, dropping the oldest`, () => {
    const cache = { dir: join(dir, 'many'), build: 'b' };
    const model = parseMatrix(TEXT, 'nsmatrix.yaml');
    for (let i = 0; i < MAX_KEPT_MODELS + 5; i++) keepModel(`${TEXT}# ${i}\n`, 'nsmatrix.yaml', model, cache);
    expect(readdirSync(cache.dir)).toHaveLength(MAX_KEPT_MODELS);
    expect(cachedModel(`${TEXT}# ${MAX_KEPT_MODELS + 4}\n`, 'nsmatrix.yaml', cache)).not.toBeNull();
  });
});

describe.runIf(isRoot)('the CLI', () => {
  const bundle = resolve(CLI, '..', 'nsmatrix.cjs');
  const build = fileIdentity(bundle)!;
  const models = '/run/nsmatrix/matrix-models';
  const keyOf = (text: string, file: string, cwd: string) => createHash('sha256').update(JSON.stringify([build, file, resolve(cwd, file), text])).digest('hex');

  it('lists the cells of a kept model, and parses (and reports) a file with problems every time', () => {
    const project = mkdtempSync(join(dir, 'project-'));
    writeFileSync(join(project, 'nsmatrix.yaml'), TEXT);
    const first = runCli(['list'], { cwd: project });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/debian-bookworm_cc-clang/);
    const kept = join(models, `${keyOf(TEXT, 'nsmatrix.yaml', project)}.json`);
    try {
      // Root wrote it: plant another model under that key; the next command takes it instead of the file's.
      const model = JSON.parse(readFileSync(kept, 'utf8')) as { axes: { key: string; values: string[] }[] };
      model.axes = model.axes.map((axis) => (axis.key === 'cc' ? { ...axis, values: ['tcc'] } : axis));
      writeFileSync(kept, JSON.stringify(model));
      const second = runCli(['list'], { cwd: project });
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toMatch(/debian-bookworm_cc-tcc/);
      expect(second.stdout).not.toMatch(/cc-clang/);
    } finally {
      rmSync(kept, { force: true });
    }

    const bad = TEXT.replace('timeout: 90s', 'timeout: soon');
    mkdirSync(join(project, 'bad'));
    writeFileSync(join(project, 'bad', 'nsmatrix.yaml'), bad);
    for (let i = 0; i < 2; i++) {
      const r = runCli(['validate'], { cwd: join(project, 'bad') });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/nsmatrix\.yaml:9:\d+: .*invalid duration "soon"/);
    }
  });
});

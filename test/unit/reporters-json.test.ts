import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJsonReporter } from '../../reporters/json.js';
import { parseRunResult, readRunResult } from '../../src/run/result.js';
import { UsageError } from '../../src/errors.js';
import { RESULT_VERSION, type RunResult } from '../../src/run/result.js';
import { makeHostileResult } from '../fixtures/results/make-result.js';

describe('json reporter', () => {
  let dir: string;
  let result: RunResult;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-json-'));
    result = await makeHostileResult(dir, { bigLogBytes: 1024 });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes results.json whole and reads it back equal (lone surrogates and controls included)', async () => {
    const [path] = (await createJsonReporter().onRunEnd!(result, { outputDir: dir })) as string[];
    expect(path).toBe(join(dir, 'results.json'));
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const back = await readRunResult(path!);
    expect(back).toEqual(result);
    expect(back.version).toBe(RESULT_VERSION);
    expect(back.cells.find((c) => c.steps.some((s) => s.flaky))?.steps[0]?.attempts).toHaveLength(3);
  });

  it('honours an explicit target', async () => {
    const target = join(dir, 'sub', 'r.json');
    expect(await createJsonReporter().onRunEnd!(result, { outputDir: dir, target })).toEqual([target]);
    expect(JSON.parse(await readFile(target, 'utf8')).matrix.name).toBe(result.matrix.name);
  });

  it('keeps fields it does not know (a newer writer of the same version)', () => {
    const withExtra = { ...result, extra: 1, cells: result.cells.map((c) => ({ ...c, future: 'x' })) };
    const back = parseRunResult(JSON.parse(JSON.stringify(withExtra)), 'r.json') as unknown as { extra: number; cells: { future: string }[] };
    expect(back.extra).toBe(1);
    expect(back.cells[0]!.future).toBe('x');
  });

  it('throws a UsageError naming the file for anything that is not an nsmatrix result', async () => {
    const cases: [string, string, RegExp][] = [
      ['bad.json', '{ not json', /bad\.json: not an nsmatrix result \(invalid JSON/],
      ['other.json', JSON.stringify({ tests: 3 }), /other\.json: not an nsmatrix result/],
      ['version.json', JSON.stringify({ ...result, version: 99 }), /version\.json: nsmatrix result version 99 is not supported/],
      ['shape.json', JSON.stringify({ ...result, cells: [{ id: 'x' }] }), /shape\.json: not an nsmatrix result \(.* at cells\.0\./],
    ];
    for (const [name, content, message] of cases) {
      const path = join(dir, name);
      await writeFile(path, content);
      const error = await readRunResult(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    }
    const missing = await readRunResult(join(dir, 'missing.json')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(UsageError);
    expect((missing as Error).message).toContain('missing.json');
  });
});

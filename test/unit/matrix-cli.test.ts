import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import list from '../../src/cli/commands/list.js';
import validate from '../../src/cli/commands/validate.js';
import { UsageError } from '../../src/errors.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'matrices');
const FULL = join(FIXTURES, 'valid-full.yaml');

/** Runs a command and returns what it wrote to stdout. */
async function stdoutOf(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    const code = await run();
    return { code, out: chunks.join('') };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('nsmatrix validate', () => {
  it('prints FILE: OK (N cells, M steps) and returns 0', async () => {
    const { code, out } = await stdoutOf(() => validate({ file: FULL, maxCells: 256 }));
    expect(code).toBe(0);
    expect(out).toBe(`${FULL}: OK (11 cells, 3 steps)\n`);
  });

  it('throws a UsageError with every positioned problem for a bad file', async () => {
    const file = join(FIXTURES, 'bad-many.yaml');
    const error = await validate({ file, maxCells: 256 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).lines).toHaveLength(7);
    for (const line of (error as UsageError).lines) expect(line.startsWith(`${file}:`)).toBe(true);
  });

  it('applies --max-cells', async () => {
    await expect(validate({ file: FULL, maxCells: 10 })).rejects.toThrow(/11 cells, more than the limit of 10 \(raise it with --max-cells\)/);
  });
});

describe('nsmatrix list', () => {
  const base = { file: FULL, filter: [] as string[], maxCells: 256 };

  it('json: an array of {id, name, image, values}', async () => {
    const { code, out } = await stdoutOf(() => list({ ...base, format: 'json' }));
    expect(code).toBe(0);
    const cells = JSON.parse(out) as { id: string; name: string; image: string; values: Record<string, unknown> }[];
    expect(cells).toHaveLength(11);
    expect(cells[0]).toEqual({
      id: 'debian-bookworm_cc-gcc_opt-0',
      name: 'debian:bookworm [cc=gcc, opt=0]',
      image: 'debian:bookworm',
      values: { image: 'debian:bookworm', cc: 'gcc', opt: 0 },
    });
    expect(Object.keys(cells[10]!).sort()).toEqual(['id', 'image', 'name', 'values']);
  });

  it('github: one line of {"include": [...values, "nsmatrix-cell": id]}', async () => {
    const { out } = await stdoutOf(() => list({ ...base, format: 'github', filter: ['image=debian:sid'] }));
    expect(out.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(out)).toEqual({
      include: [{ image: 'debian:sid', cc: 'gcc', opt: 2, experimental: true, 'nsmatrix-cell': 'debian-sid_cc-gcc_opt-2_experimental-true' }],
    });
  });

  it('table: aligned columns, "-" where a cell lacks a key', async () => {
    const { out } = await stdoutOf(() => list({ ...base, format: 'table', filter: ['cc=clang'], shard: '1/2' }));
    expect(out).toBe(
      [
        'ID                                              IMAGE            CC     OPT  EXPERIMENTAL',
        'debian-bookworm_cc-clang_opt-0                  debian:bookworm  clang  0    -',
        'debian-trixie_cc-clang_opt-0_experimental-true  debian:trixie    clang  0    true',
        '',
      ].join('\n'),
    );
  });

  it('shards: the union of all shards is the whole list', async () => {
    const all = JSON.parse((await stdoutOf(() => list({ ...base, format: 'json' }))).out) as { id: string }[];
    const parts: { id: string }[] = [];
    for (const shard of ['1/3', '2/3', '3/3']) parts.push(...(JSON.parse((await stdoutOf(() => list({ ...base, format: 'json', shard }))).out) as { id: string }[]));
    expect(parts.map((c) => c.id).sort()).toEqual(all.map((c) => c.id).sort());
  });

  it('bad flags are UsageErrors naming the flag', async () => {
    await expect(list({ ...base, format: 'json', shard: '4/3' })).rejects.toThrow(/^--shard "4\/3"/);
    await expect(list({ ...base, format: 'json', filter: ['compiler=gcc'] })).rejects.toThrow(/^--filter "compiler"/);
    await expect(list({ ...base, format: 'json', file: join(FIXTURES, 'nope.yaml') })).rejects.toThrow(/nope\.yaml: matrix file not found/);
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { UsageError } from '../../src/errors.js';
import { expandMatrix, parseMatrix } from '../../src/matrix/index.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'matrices');
const SEEDS = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.yaml'))
  .map((name) => readFileSync(join(FIXTURES, name), 'utf8'));
const FILE = 'fuzz/m.yaml';
const LINE = /^fuzz\/m\.yaml:\d+:\d+: \S/;

/** Parse and expand; anything but success or a UsageError whose every line is positioned fails the property. */
function check(text: string): void {
  try {
    const model = parseMatrix(text, FILE);
    expandMatrix(model, { maxCells: 64 });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    expect(error.lines.length).toBeGreaterThan(0);
    for (const line of error.lines) {
      expect(line).toMatch(LINE);
      expect(line).not.toMatch(/[\n\r]/);
    }
  }
}

const token = fc.constantFrom(
  ':', '-', ' ', '\n', '  ', '[', ']', '{', '}', ',', '"', "'", '&a', '*a', '!!str', '#', '|', '>', '${{', '}}',
  'matrix', 'image', 'steps', 'include', 'exclude', 'name', 'run', 'timeout', 'env', 'null', 'true', '0', '1e3', '\t', '\u0000', 'é',
);

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(token, fc.string({ maxLength: 5 })) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('dup-line' as const), a: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(text: string, mutations: Mutation[]): string {
  let out = text;
  for (const m of mutations) {
    if (m.kind === 'insert') {
      const at = m.at % (out.length + 1);
      out = out.slice(0, at) + m.text + out.slice(at);
    } else if (m.kind === 'delete') {
      const at = m.at % (out.length + 1);
      out = out.slice(0, at) + out.slice(at + m.length);
    } else {
      const lines = out.split('\n');
      const a = m.a % lines.length;
      if (m.kind === 'dup-line') lines.splice(a, 0, lines[a]!);
      else {
        const b = m.b % lines.length;
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      }
      out = lines.join('\n');
    }
  }
  return out;
}

describe('matrix files that are mutated or random', () => {
  it('property: mutated fixtures only ever give a model or a positioned UsageError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SEEDS), fc.array(mutation, { minLength: 1, maxLength: 6 }), (seed, mutations) => {
        check(mutate(seed, mutations));
      }),
      { numRuns: 1500 },
    );
  });

  it('property: random documents built from the format\'s vocabulary, likewise', () => {
    const key = fc.constantFrom('name', 'matrix', 'image', 'cc', 'include', 'exclude', 'steps', 'run', 'env', 'timeout',
      'retries', 'continue-on-error', 'images', 'packages', 'bind', 'nspawn', 'boot', 'source', 'pull', 'url', 'sha256', 'x');
    const leaf = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('debian:sid', '30m', '${{ matrix.cc }}', '${{ matrix.nope }}', '/a:/b:ro', 'true', '../x'),
    );
    const { doc } = fc.letrec((tie) => ({
      doc: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('list'), tie('map')),
      list: fc.array(tie('doc'), { maxLength: 4 }),
      map: fc.dictionary(key, tie('doc'), { maxKeys: 6 }),
    }));
    fc.assert(
      fc.property(doc, (value) => {
        check(stringify(value));
      }),
      { numRuns: 1500 },
    );
  });

  it('property: random text likewise', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => check(text)),
      { numRuns: 1000 },
    );
  });

  it('the unmutated valid fixture really passes (the properties are not vacuous)', () => {
    expect(() => parseMatrix(SEEDS.find((s) => s.includes('full-example'))!, FILE)).not.toThrow();
  });
});

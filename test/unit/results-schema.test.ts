import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { expandMatrix, parseMatrix } from '../../src/matrix/index.js';

const HEAD = 'matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: test\n    run: make check\n';

function problems(text: string): string[] {
  try {
    parseMatrix(text, 'm.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode ?? 2).toBe(2);
    return (error as UsageError).lines;
  }
  throw new Error('expected a UsageError');
}

describe('results: on steps', () => {
  it('carries each entry into the model and into every cell step', () => {
    const model = parseMatrix(
      `${HEAD}    results:\n      - { format: automake, path: "/build/**/*.trs" }\n      - { format: junit, path: "reports/*.xml" }\n`,
      'm.yaml',
    );
    expect(model.steps[0]!.results).toEqual([
      { format: 'automake', path: '/build/**/*.trs' },
      { format: 'junit', path: 'reports/*.xml' },
    ]);
    const cells = expandMatrix(model);
    expect(cells[0]!.steps[0]!.results).toEqual(model.steps[0]!.results);
  });

  it('a step without results has none', () => {
    const cells = expandMatrix(parseMatrix(HEAD, 'm.yaml'));
    expect(cells[0]!.steps[0]!.results).toBeUndefined();
  });

  it('reports a bad format, a bad path and an unknown key, each with its position', () => {
    const lines = problems(
      `${HEAD}    results:\n      - { format: xunit, path: "a.xml" }\n      - { format: tap, path: "../x/*.tap" }\n      - { format: tap, path: "" }\n      - { format: junit, path: "a.xml", glob: true }\n      - { format: junit }\n`,
    );
    expect(lines.join('\n')).toMatch(/^m\.yaml:7:\d+: steps\[0\]\.results\[0\]\.format: expected one of junit, tap, automake, go-json, auto, got a string "xunit"/m);
    expect(lines.join('\n')).toMatch(/^m\.yaml:8:\d+: .*invalid results path "\.\.\/x\/\*\.tap": "\.\." is not allowed/m);
    expect(lines.join('\n')).toMatch(/^m\.yaml:9:\d+: .*empty path/m);
    expect(lines.join('\n')).toMatch(/^m\.yaml:10:\d+: .*glob/m);
    expect(lines.join('\n')).toMatch(/^m\.yaml:11:\d+: .*path/m);
  });

  it('refuses control characters and unclosed brackets in a path', () => {
    const lines = problems(`${HEAD}    results:\n      - { format: tap, path: "a\\tb" }\n      - { format: tap, path: "t/[ab.tap" }\n`);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/control characters/);
    expect(lines[1]).toMatch(/unclosed/);
  });

  it('results must be a list', () => {
    expect(problems(`${HEAD}    results: { format: tap, path: x }\n`)[0]).toMatch(/^m\.yaml:6:\d+: .*expected a list of \{ format, path \}/);
  });
});

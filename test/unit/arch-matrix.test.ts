/** The reserved `arch` axis: names checked with positions, cells carry their architecture, include/exclude on it. */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { hostArch } from '../../src/lib/arch.js';
import { cellEnvironment, expandMatrix, parseMatrix } from '../../src/matrix/index.js';

const problems = (text: string): string[] => {
  try {
    parseMatrix(text, 'm.yaml');
  } catch (error) {
    if (error instanceof UsageError) return error.lines;
    throw error;
  }
  return [];
};

const STEPS = `steps:\n  - name: "build on \${{ matrix.arch }}"\n    run: echo \${{ matrix.arch }} $MATRIX_ARCH\n`;

describe('arch axis', () => {
  it('expands like any axis, into ids, names, ${{ matrix.arch }} and MATRIX_ARCH; exclude and include work on it', () => {
    const model = parseMatrix(
      `matrix:\n  image: [debian:bookworm, debian:trixie]\n  arch: [amd64, i386, arm64]\n  exclude:\n    - { image: debian:trixie, arch: i386 }\n  include:\n    - { arch: arm64, slow: true }\n    - { image: debian:trixie, arch: riscv64 }\n${STEPS}`,
      'm.yaml',
    );
    const cells = expandMatrix(model);
    expect(cells.map((c) => [c.id, c.arch])).toEqual([
      ['debian-bookworm_arch-amd64', 'amd64'],
      ['debian-bookworm_arch-i386', 'i386'],
      ['debian-bookworm_arch-arm64_slow-true', 'arm64'],
      ['debian-trixie_arch-amd64', 'amd64'],
      ['debian-trixie_arch-arm64_slow-true', 'arm64'],
      ['debian-trixie_arch-riscv64', 'riscv64'],
    ]);
    expect(cells[2]!.name).toBe('debian:bookworm [arch=arm64, slow=true]');
    expect(cells[2]!.steps[0]!.name).toBe('build on arm64');
    expect(cells[2]!.steps[0]!.run).toBe('echo arm64 $MATRIX_ARCH');
    expect(cellEnvironment(cells[5]!, model).MATRIX_ARCH).toBe('riscv64');
  });

  it("defaults to the host's architecture without changing ids; ${{ matrix.arch }} is known without the axis", () => {
    const model = parseMatrix(`matrix:\n  image: [debian:bookworm]\n${STEPS}`, 'm.yaml');
    const [cell] = expandMatrix(model);
    expect(cell!.id).toBe('debian-bookworm');
    expect(cell!.arch).toBe(hostArch());
    expect(cell!.steps[0]!.name).toBe(`build on ${hostArch()}`);
    expect(cellEnvironment(cell!, model).MATRIX_ARCH).toBe(hostArch());
  });

  it('an unknown or non-string architecture is reported at its position with a did-you-mean', () => {
    expect(
      problems(`matrix:\n  image: [debian:bookworm]\n  arch: [amd64, arm46, 7]\n  include:\n    - { arch: risc-v }\n  exclude:\n    - { arch: i368 }\n${STEPS}`),
    ).toEqual([
      'm.yaml:3:17: matrix.arch[1]: unknown architecture "arm46" (did you mean "arm64"?)',
      "m.yaml:3:24: matrix.arch[2]: an architecture must be a string (Debian's name, e.g. amd64, arm64)",
      expect.stringMatching(/^m\.yaml:5:15: matrix\.include\[0\]\.arch: unknown architecture "risc-v" \((did you mean|known: amd64)/),
      'm.yaml:7:15: matrix.exclude[0].arch: unknown architecture "i368" (did you mean "i386"?)',
    ]);
  });
});

/**
 * The `arch` axis for real: bookworm cells for amd64, i386 (native on an amd64 kernel) and arm64 (qemu-user-static
 * through a binfmt_misc entry with the F flag) report their architecture and compile and run a C program. The cells
 * use matrices/multi-arch.yaml's images (same packages, setup and mirror), so the suite builds each image once.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { hostArch } from '../../src/lib/arch.js';
import { requireContainerHost } from '../helpers/host.js';
import { leftovers, runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
let work: string;
beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-arch-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** multi-arch.yaml up to its steps (images, packages, setup: the image keys), with these steps. */
function matrixWith(steps: string, extra = ''): string {
  const example = readFileSync('matrices/multi-arch.yaml', 'utf8');
  return `${example.slice(0, example.indexOf('\nsteps:\n'))}\n${extra}steps:\n${steps}`;
}

const PROGRAM = String.raw`#include <stdio.h>
int main(void) { printf("pointer bits %zu\n", sizeof(void *) * 8); return 0; }
`;

describe.skipIf(hostArch() !== 'amd64')('arch axis (amd64 host)', () => {
  it('amd64, i386 and arm64 cells print their architecture, compile and run a C program', { timeout: 2_400_000 }, () => {
    writeFileSync(join(work, 'prog.c'), PROGRAM);
    writeFileSync(
      join(work, 'arch.yaml'),
      matrixWith(
        [
          '  - name: architecture',
          '    run: echo "dpkg=$(dpkg --print-architecture) uname=$(uname -m) matrix=${{ matrix.arch }} env=$MATRIX_ARCH"',
          '  - name: c program',
          '    run: gcc -O2 -o /tmp/prog prog.c && /tmp/prog',
        ].join('\n') + '\n',
      ),
    );
    const out = join(work, 'out');
    const r = runCli(['run', join(work, 'arch.yaml'), '--state-dir', stateDir, '-o', out, '-r', 'json'], { timeoutMs: 2_300_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    const log = (id: string, step: string) => readFileSync(join(out, id, step), 'utf8');
    const seen = result.cells.map((cell) => [
      cell.id,
      /dpkg=(\S+) uname=(\S+) matrix=(\S+) env=(\S+)/.exec(log(cell.id, '01-architecture.log'))?.slice(1),
      /pointer bits (\d+)/.exec(log(cell.id, '02-c-program.log'))?.[1],
    ]);
    expect(seen).toEqual([
      ['debian-bookworm_arch-amd64_package-bzip2', ['amd64', 'x86_64', 'amd64', 'amd64'], '64'],
      ['debian-bookworm_arch-i386_package-bzip2', ['i386', 'i686', 'i386', 'i386'], '32'],
      ['debian-bookworm_arch-arm64_package-bzip2', ['arm64', 'aarch64', 'arm64', 'arm64'], '64'],
    ]);
    expect(leftovers([stateDir, out])).toEqual({ mounts: [], processes: [], cgroups: [] });

    // The images list shows each image's architecture.
    const list = runCli(['images', 'list', '--state-dir', stateDir, '--format', 'json']);
    const arches = (JSON.parse(list.stdout) as { name: string; arch?: string }[]).filter((m) => m.name === 'debian:bookworm').map((m) => m.arch);
    expect(new Set(arches)).toEqual(new Set(['amd64', 'i386', 'arm64']));
  });

  it('refused before anything starts: riscv64 on bookworm (exit 2, at its position), boot under emulation (exit 3)', () => {
    writeFileSync(join(work, 'riscv.yaml'), `matrix:\n  image: [debian:bookworm]\n  arch: [amd64, riscv64]\nsteps:\n  - name: x\n    run: "true"\n`);
    const riscv = runCli(['validate', join(work, 'riscv.yaml')]);
    expect(riscv.code).toBe(2);
    expect(riscv.stderr).toMatch(/riscv\.yaml:3:17: debian:bookworm is not published for riscv64 by \S+ \(its Release file lists .*arm64/);

    writeFileSync(join(work, 'boot.yaml'), matrixWith('  - name: x\n    run: "true"\n', 'boot: true\n'));
    const out = join(work, 'boot-out');
    const boot = runCli(['run', join(work, 'boot.yaml'), '--state-dir', stateDir, '-o', out]);
    expect(boot.code, boot.stderr).toBe(3);
    expect(boot.stderr).toMatch(/boot: true is not supported for arm64 on this amd64 host/);
    expect(leftovers([stateDir])).toEqual({ mounts: [], processes: [], cgroups: [] });
  });
});

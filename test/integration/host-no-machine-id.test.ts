/**
 * A host without a machine ID (an empty /etc/machine-id: CI containers, freshly debootstrapped roots, some VM
 * images). systemd-nspawn reads the host's ID only to link the container's journal into the host's
 * /var/log/journal, which nsmatrix never wants (boot mode binds the journal to the cell's own directory). Before
 * `--link-journal=no` every cell on such a host failed with "Failed to retrieve machine ID: No medium found".
 * The empty ID is made real for the CLI alone, in a private mount namespace (unshare -m).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI } from '../helpers/cli.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  work = mkdtempSync('/var/tmp/nsm-no-machine-id-');
  writeFileSync(join(work, 'empty-machine-id'), '');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the CLI where /etc/machine-id reads empty, as on a host that never set one. */
function runWithoutMachineId(args: string[]) {
  const script = 'mount --bind "$1" /etc/machine-id && test ! -s /etc/machine-id && shift && exec "$@"';
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', join(work, 'empty-machine-id'), process.execPath, CLI, ...args],
    { encoding: 'utf8', cwd: work, env: { ...process.env, NO_COLOR: '1' }, timeout: 600_000 },
  );
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

function matrix(name: string, boot: boolean): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    [`name: ${name}`, 'matrix:', '  image: [debian:bookworm]', `boot: ${boot}`, 'steps:', '  - name: hello', '    run: echo "hello from $(cat /etc/debian_version)" > /artifacts/hello.txt', ''].join('\n'),
  );
  return file;
}

describe('a host whose /etc/machine-id is empty', () => {
  for (const boot of [false, true]) {
    it(`runs a ${boot ? 'booted' : 'plain'} cell`, () => {
      const name = boot ? 'booted' : 'plain';
      const output = join(work, `out-${name}`);
      const r = runWithoutMachineId(['run', matrix(name, boot), '--plain', '--state-dir', stateDir, '--output', output]);
      expect(r.out).not.toMatch(/machine ID/i);
      expect(r.code, r.out).toBe(0);
      expect(readFileSync(join(output, 'debian-bookworm', 'artifacts', 'hello.txt'), 'utf8')).toMatch(/^hello from 12\./);
    }, 900_000);
  }
});

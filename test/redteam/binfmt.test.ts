/**
 * Red team: binfmt_misc. A container's root keeps CAP_SYS_ADMIN (without private users), and binfmt_misc is one
 * filesystem for the whole kernel: a step that mounts it sees the host's handlers and can write its `register`
 * file, installing a handler whose interpreter is a container binary (F flag) that the host's root then runs for
 * every matching file it executes, or write -1 to `status` and switch off every handler of the host. The hostile
 * step here only mounts and lists (it never registers or disables anything): the mount is the whole door. Seen
 * before the filter: the mount worked and listed the host's qemu handlers. With private users a kernel >= 6.7
 * gives the container a binfmt_misc of its own (harmless); the filter refuses that mount as well.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { project } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-binfmt-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const hostHandlers = () => readdirSync('/proc/sys/fs/binfmt_misc').sort();

const STEP = [
  'mkdir -p /tmp/b',
  'if mount -t binfmt_misc binfmt_misc /tmp/b 2>/tmp/err; then',
  '  { echo mounted; ls /tmp/b; } > /artifacts/binfmt',
  '  umount /tmp/b',
  'else',
  '  echo "denied: $(cat /tmp/err)" > /artifacts/binfmt',
  'fi',
];

describe('binfmt_misc', () => {
  for (const privateUsers of [false, true]) {
    it(`a step cannot mount binfmt_misc to reach the host's handlers${privateUsers ? ' (private users)' : ''}`, () => {
      const name = privateUsers ? 'userns' : 'root';
      const text = [
        'matrix:',
        '  image: [debian:bookworm]',
        `private-users: ${privateUsers}`,
        'timeout: 2m',
        'steps:',
        '  - name: mount binfmt_misc',
        '    run: |',
        ...STEP.map((l) => `      ${l}`),
        '',
      ].join('\n');
      const file = project(join(work, name), text);
      const out = join(work, `${name}-out`);
      const before = hostHandlers();
      const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '--plain']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const seen = readFileSync(join(out, 'debian-bookworm', 'artifacts', 'binfmt'), 'utf8');
      expect(seen).toMatch(/^denied: /);
      expect(hostHandlers()).toEqual(before);
    }, 600_000);
  }
});

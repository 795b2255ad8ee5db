/**
 * Red team: binfmt_misc. A container's root keeps CAP_SYS_ADMIN (without private users), and binfmt_misc is one
 * filesystem for the whole kernel: a step that mounts it sees the host's handlers and can write its `register`
 * file, installing a handler whose interpreter is a container binary (F flag) that the host's root then runs for
 * every matching file it executes, or write -1 to `status` and switch off every handler of the host. The hostile
 * code here only mounts and lists (it never registers or disables anything): the mount is the whole door.
 * Exec-mode steps and image builds (the matrix's `setup:` script) run under a mount syscall filter; a booted
 * container has no CAP_SYS_ADMIN (its systemd needs mount syscalls, not the capability), so neither a step nor a
 * unit it starts can mount. Seen before each fix: exec steps, a booted cell's step and a unit it started, and an
 * image's setup script all mounted binfmt_misc and listed the host's qemu handlers. With private users a kernel
 * >= 6.7 gives the container a binfmt_misc of its own (harmless); the filter refuses that mount as well. A step may
 * still make a user namespace of its own: what it can mount there must not show the host's handlers.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
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

/**
 * /tmp/try.sh ROUTE OUT: tries to mount binfmt_misc, appending "ROUTE: denied <error>" or "ROUTE: mounted <entries>"
 * to OUT. Written by the hostile code itself, so every route (step, unit, user namespace, setup) runs the same.
 */
const TRY = [
  "cat > /tmp/try.sh <<'EOS'",
  'mkdir -p /tmp/b-$1',
  'if mount -t binfmt_misc binfmt_misc /tmp/b-$1 2>/tmp/err-$1; then',
  '  echo "$1: mounted $(ls /tmp/b-$1 | tr "\\n" " ")" >> "$2"',
  '  umount /tmp/b-$1 || true',
  'else',
  '  echo "$1: denied $(head -c 200 /tmp/err-$1)" >> "$2"',
  'fi',
  'EOS',
];

function matrix(lines: string[], step: string[]): string {
  return ['matrix:', '  image: [debian:bookworm]', 'timeout: 3m', ...lines, 'steps:', '  - name: mount binfmt_misc', '    run: |', ...step.map((l) => `      ${l}`), ''].join('\n');
}

/** Runs the matrix; returns the lines its cell wrote to /artifacts/binfmt. The host's handlers must not change. */
function runHostile(name: string, text: string): Map<string, string> {
  const file = project(join(work, name), text);
  const out = join(work, `${name}-out`);
  const before = hostHandlers();
  const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '--plain']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(hostHandlers()).toEqual(before);
  const lines = readFileSync(join(out, 'debian-bookworm', 'artifacts', 'binfmt'), 'utf8').trim().split('\n');
  return new Map(lines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
}

/** A mount that worked must not be the host's binfmt_misc (a user namespace's own instance lists no handler). */
function notTheHosts(result: string | undefined): void {
  expect(result).toBeDefined();
  if (result!.startsWith('denied')) return;
  const entries = result!.replace(/^mounted /, '').trim().split(/\s+/);
  const handlers = hostHandlers().filter((h) => h !== 'register' && h !== 'status');
  expect(handlers.length, 'the host has binfmt handlers to leak (qemu-user-static registered)').toBeGreaterThan(0);
  expect(entries.filter((e) => handlers.includes(e))).toEqual([]);
}

describe('binfmt_misc', () => {
  for (const privateUsers of [false, true]) {
    it(`an exec-mode step cannot mount binfmt_misc to reach the host's handlers${privateUsers ? ' (private users)' : ''}`, () => {
      const seen = runHostile(privateUsers ? 'userns' : 'root', matrix([`private-users: ${privateUsers}`], [...TRY, 'sh /tmp/try.sh step /artifacts/binfmt']));
      expect(seen.get('step')).toMatch(/^denied /);
    }, 600_000);
  }

  it("a booted cell's step, and a unit it starts, cannot mount binfmt_misc; a user namespace of its own shows no host handler", () => {
    const seen = runHostile(
      'boot',
      matrix(['boot: true'], [
        ...TRY,
        'sh /tmp/try.sh step /artifacts/binfmt',
        'systemd-run --quiet --wait --pipe sh /tmp/try.sh unit /artifacts/binfmt',
        'unshare --user --map-root-user --mount sh /tmp/try.sh userns /artifacts/binfmt',
      ]),
    );
    expect(seen.get('step')).toMatch(/^denied /);
    expect(seen.get('unit')).toMatch(/^denied /);
    notTheHosts(seen.get('userns'));
  }, 900_000);

  it("an image's setup script cannot mount binfmt_misc while the layer is built", () => {
    const seen = runHostile(
      'build',
      // A setup no earlier run built (a cached layer would not run it again).
      matrix(['setup: |', `  # ${randomUUID()}`, ...TRY.map((l) => `  ${l}`), '  sh /tmp/try.sh setup /binfmt-seen'], ['cat /binfmt-seen > /artifacts/binfmt']),
    );
    expect(seen.get('setup')).toMatch(/^denied /);
  }, 900_000);
});

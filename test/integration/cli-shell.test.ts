/**
 * `nsmatrix shell` as users run it, with real containers: the banner says what becomes of /src, `-p PKG -- CMD` runs
 * one command and returns its status, `--cell ID` is that cell's environment, `--source rw` writes the project as
 * the user behind sudo (root without sudo, and says so), and every usage error is one line, exit 2.
 * The interactive session (a pseudo-terminal, kept sandboxes, gc): cli-shell-session.test.ts.
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
const work = mkdtempSync('/var/tmp/nsm-cli-shell-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** As root itself (the suite may run under sudo: its SUDO_* would make the shell run as that user). */
const AS_ROOT = { SUDO_UID: '', SUDO_GID: '', SUDO_USER: '' };
const AS_1234 = { SUDO_UID: '1234', SUDO_GID: '1234', SUDO_USER: 'tester' };

function project(name: string, matrix: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nsmatrix.yaml'), matrix);
  return dir;
}

const MATRIX = 'matrix:\n  image: [debian:bookworm]\n  cc: [gcc, clang]\nenv: { FLAVOUR: "${{ matrix.cc }}-O2" }\nsteps:\n  - name: s\n    run: "true"\n';

/** Exactly one line on stderr, exit 2, the line matching `pattern`. */
function expectOneLineUsage(r: ReturnType<typeof runCli>, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

describe('nsmatrix shell banner', () => {
  it('warns that files written under /src vanish (overlay), and they do', () => {
    const r = runCli(['shell', 'debian:bookworm', '--state-dir', stateDir, '--', 'sh', '-c', 'echo kept > /src/written && cat /src/written'], { cwd: work, env: AS_ROOT });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('kept\n');
    expect(r.stderr).toMatch(/nsmatrix: debian:bookworm, .* at \/src \(an overlay: files written under \/src vanish when the shell exits\)\n/);
    expect(r.stderr).toMatch(/nsmatrix: as root \(nsmatrix was not run through sudo: what you write to \/src belongs to root\); home \/root kept for this project; everything else is discarded at exit\n/);
    expect(existsSync(join(work, 'written'))).toBe(false);
  }, 300_000);
});

describe('nsmatrix shell in a project', () => {
  it('-p hello -- hello runs one command with one more package and returns its status (like nix-shell -p hello --run hello)', () => {
    const dir = project('hello', MATRIX);
    const r = runCli(['shell', '-p', 'hello', '--state-dir', stateDir, '--', 'hello'], { cwd: dir, env: AS_1234 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Hello, world!\n');
    const failing = runCli(['shell', '-p', 'hello', '--state-dir', stateDir, '--', 'sh', '-c', 'hello >/dev/null && exit 7'], { cwd: dir, env: AS_1234 });
    expect(failing.code, failing.stderr).toBe(7);
  }, 600_000);

  it("--cell ID enters that cell's environment: its env and MATRIX_ values, NSMATRIX_CELL, the project at /src", () => {
    const dir = project('cells', MATRIX);
    writeFileSync(join(dir, 'marker'), 'from the project\n');
    const r = runCli(['shell', '--cell', 'debian-bookworm_cc-clang', '--state-dir', stateDir, '--', 'sh', '-c', 'echo "$FLAVOUR $MATRIX_CC $NSMATRIX_CELL $CI"; cat /src/marker'], { cwd: dir, env: AS_1234 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('clang-O2 clang debian-bookworm_cc-clang true\nfrom the project\n');
    expect(r.stderr).toMatch(/nsmatrix: cell debian-bookworm_cc-clang \(debian:bookworm \[cc=clang\]\), /);
  }, 300_000);

  it('--cell of a boot: true cell boots it and runs a command there (output relayed, status returned); with no terminal it needs a command', () => {
    const dir = project('boot', 'matrix:\n  image: [debian:bookworm]\nboot: true\nenv: { X: booted }\nsteps:\n  - name: s\n    run: "true"\n');
    const r = runCli(['shell', '--cell', 'debian-bookworm', '--state-dir', stateDir, '--', 'sh', '-c', 'echo "$X $(id -u) $(cat /proc/1/comm) $(pwd)"; exit 3'], { cwd: dir, env: AS_1234 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toBe('booted 1234 systemd /src\n');
    expectOneLineUsage(runCli(['shell', '--cell', 'debian-bookworm', '--state-dir', stateDir], { cwd: dir }), /^nsmatrix: --cell debian-bookworm boots systemd \(boot: true\): its shell needs a terminal; without one, run a command after --$/);
  }, 600_000);

  it('--source rw: files made in /src belong to the user behind sudo on the host; without sudo to root, as the banner says', () => {
    const dir = project('rw', MATRIX);
    const as1234 = runCli(['shell', '--source', 'rw', '--state-dir', stateDir, '--', 'sh', '-c', 'id -u; echo hi > /src/by-tester; mkdir /src/dir-by-tester'], { cwd: dir, env: AS_1234 });
    // The project is root's: uid 1234 may not write it, and nothing is written.
    expect(as1234.code).not.toBe(0);
    expect(existsSync(join(dir, 'by-tester'))).toBe(false);
    // Once it is the user's, what the shell makes is theirs.
    chownTree(dir, 1234);
    const ok = runCli(['shell', '--source', 'rw', '--state-dir', stateDir, '--', 'sh', '-c', 'id -u; echo hi > /src/by-tester; mkdir /src/dir-by-tester'], { cwd: dir, env: AS_1234 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('1234\n');
    expect(ok.stderr).toContain('(read-write: files written under /src stay in the project, owned by tester (uid 1234))');
    for (const name of ['by-tester', 'dir-by-tester']) expect([statSync(join(dir, name)).uid, statSync(join(dir, name)).gid], name).toEqual([1234, 1234]);
    const root = runCli(['shell', '--source', 'rw', '--state-dir', stateDir, '--', 'sh', '-c', 'echo hi > /src/by-root'], { cwd: dir, env: AS_ROOT });
    expect(root.code, root.stderr).toBe(0);
    expect(root.stderr).toContain('as root (nsmatrix was not run through sudo');
    expect(statSync(join(dir, 'by-root')).uid).toBe(0);
  }, 300_000);

  it('an overlay /src is writable by the user, and what they write vanishes', () => {
    const dir = project('overlay-user', MATRIX);
    chownTree(dir, 1234);
    const r = runCli(['shell', '--state-dir', stateDir, '--', 'sh', '-c', 'echo x > /src/scratch && cat /src/scratch && touch /src/nsmatrix.yaml'], { cwd: dir, env: AS_1234 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('x\n');
    expect(existsSync(join(dir, 'scratch'))).toBe(false);
  }, 300_000);
});

describe('what shells keep is hostile data', () => {
  it('links planted in a kept sandbox and a home are never followed: --rm and --rm-home remove the links, not their targets', () => {
    const dir = project('hostile-keep', MATRIX);
    const victim = join(work, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'precious'), 'keep me\n');
    const plant = `ln -s ${victim} ~/to-victim; ln -s ${victim} /var/tmp/to-victim; ln -s / ~/to-root; mkdir -p /var/tmp/d && ln -s ${victim}/precious /var/tmp/d/file`;
    const r = runCli(['shell', '--keep', 'hostile', '--state-dir', stateDir, '--', 'sh', '-c', plant], { cwd: dir, env: AS_ROOT });
    expect(r.code, r.stderr).toBe(0);
    const list = runCli(['shell', '--list', '--state-dir', stateDir], { cwd: dir });
    expect(list.code, list.stderr).toBe(0);
    expect(runCli(['gc', '--state-dir', stateDir]).stdout).toMatch(/^kept sandbox hostile /m);
    expect(runCli(['shell', '--rm', 'hostile', '--state-dir', stateDir], { cwd: dir }).code).toBe(0);
    expect(runCli(['shell', '--rm-home', '--state-dir', stateDir], { cwd: dir, env: AS_ROOT }).stdout).toMatch(/^removed home [0-9a-f]{24} \(.*hostile-keep, uid 0\)\n$/);
    expect(readFileSync(join(victim, 'precious'), 'utf8')).toBe('keep me\n');
    expect(existsSync('/etc/hostname') || existsSync('/etc/os-release')).toBe(true);
  }, 300_000);
});

describe('nsmatrix shell usage errors: one line, exit 2, nothing started', () => {
  it('an unknown cell, with a did-you-mean', () => {
    const dir = project('unknown-cell', MATRIX);
    expectOneLineUsage(runCli(['shell', '--cell', 'debian-bookworm_cc-clagn', '--state-dir', stateDir], { cwd: dir }), /^nsmatrix: --cell debian-bookworm_cc-clagn: no such cell in nsmatrix\.yaml \(did you mean "debian-bookworm_cc-clang"\?\)$/);
  });

  it('no matrix file and no image', () => {
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    expectOneLineUsage(runCli(['shell', '--state-dir', stateDir, '--', 'true'], { cwd: empty }), /^nsmatrix: no image given, and no matrix file here \(nsmatrix\.yaml or nsmatrix\.yml\): name an image/);
    expectOneLineUsage(runCli(['shell', '--cell', 'x', '--state-dir', stateDir], { cwd: empty }), /^nsmatrix: --cell x needs a matrix file, and no matrix file here/);
  });

  it('a --keep or --rm name that is no safe name (never a path), or a sandbox that is not kept', () => {
    const dir = project('bad-names', MATRIX);
    for (const name of ['../escape', '/tmp/x', '.hidden', '', 'a/b']) {
      expectOneLineUsage(runCli(['shell', '--keep', name, '--state-dir', stateDir, '--', 'true'], { cwd: dir }), /^nsmatrix: --keep .*: a sandbox name is 1 to 64 letters, digits/);
      expectOneLineUsage(runCli(['shell', '--rm', name, '--state-dir', stateDir], { cwd: dir }), /^nsmatrix: --rm .*: a sandbox name is 1 to 64 letters, digits/);
    }
    expect(existsSync(join(stateDir, 'escape'))).toBe(false);
    expect(existsSync(join(stateDir, 'shell', 'escape'))).toBe(false);
    expectOneLineUsage(runCli(['shell', '--rm', 'never-kept', '--state-dir', stateDir], { cwd: dir }), /^nsmatrix: --rm never-kept: no kept sandbox of that name/);
  });

  it('contradictory options', () => {
    const dir = project('contradictions', MATRIX);
    expectOneLineUsage(runCli(['shell', 'debian:bookworm', '--cell', 'x', '--state-dir', stateDir], { cwd: dir }), /give an image or --cell, not both/);
    expectOneLineUsage(runCli(['shell', '--list', '--keep', 'x', '--state-dir', stateDir], { cwd: dir }), /^nsmatrix: --list enters no shell/);
  });
});

/** The project becomes the user's own, as a project in their home is. */
function chownTree(dir: string, id: number): void {
  for (const entry of [dir, ...readdirSync(dir).map((n) => join(dir, n))]) chownSync(entry, id, id);
}

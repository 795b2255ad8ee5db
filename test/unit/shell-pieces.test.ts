/**
 * `nsmatrix shell`'s pure parts: the `shell:` section of a matrix file, what a shell enters (planShell: image,
 * project, --cell), who it runs as (SUDO_UID/SUDO_GID), the script that switches user inside, sandbox names, and
 * the banner. The containers themselves: test/integration/cli-shell*.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shellBanner } from '../../src/cli/commands/shell.js';
import { UsageError } from '../../src/errors.js';
import { parseMatrix } from '../../src/matrix/index.js';
import { planShell } from '../../src/shell/plan.js';
import { checkSandboxName, homeId } from '../../src/shell/state.js';
import { shellUser, userScript } from '../../src/shell/user.js';

const tmp = mkdtempSync(join(tmpdir(), 'nsm-shell-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const stateDir = join(tmp, 'state');
const STEPS = 'steps:\n  - name: s\n    run: "true"\n';

function problems(text: string): string[] {
  try {
    parseMatrix(text, 'm.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).lines;
  }
  throw new Error('expected a UsageError');
}

function project(name: string, text: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nsmatrix.yaml'), text);
  return dir;
}

const request = (extra: Partial<Parameters<typeof planShell>[0]> = {}) => ({ packages: [] as string[], bind: [] as string[], ...extra });

describe('the shell: section of a matrix file', () => {
  it('reads image, packages, env, setup and source into the model', () => {
    const model = parseMatrix(`matrix:\n  image: [debian:bookworm]\nshell:\n  image: debian:trixie\n  packages: [gdb]\n  env: { CC: gcc, N: 3 }\n  setup: echo hi\n  source: rw\n${STEPS}`, 'm.yaml');
    expect(model.shell).toEqual({ image: 'debian:trixie', packages: ['gdb'], env: { CC: 'gcc', N: '3' }, setup: 'echo hi', source: 'rw' });
    expect(parseMatrix(`matrix:\n  image: [debian:bookworm]\n${STEPS}`, 'm.yaml').shell).toBeUndefined();
  });

  it('reports every problem at its FILE:LINE:COL, with a did-you-mean for a misspelt key', () => {
    const lines = problems(`matrix:\n  image: [debian:bookworm]\nshell:\n  image: mine\n  pakages: [gcc]\n  env: { MATRIX_X: 1, Y: "\${{ matrix.image }}" }\n  source: rwx\n${STEPS}`);
    expect(lines).toEqual([
      'm.yaml:4:10: shell.image: image "mine" is not defined under images: (or use distro:suite)',
      'm.yaml:5:3: shell: unknown key "pakages" (did you mean "packages"?)',
      'm.yaml:6:10: shell.env: "MATRIX_X" is set by nsmatrix itself',
      'm.yaml:6:26: shell.env.Y: the shell is no cell: ${{ matrix.KEY }} cannot be used here',
      'm.yaml:7:11: shell.source: expected one of overlay, ro, rw, got a string "rwx"',
    ]);
    expect(problems(`matrix:\n  image: [debian:bookworm]\nshell:\n  packages: ["-rf"]\n${STEPS}`)[0]).toMatch(/^m\.yaml:4:\d+: shell\.packages\[0\]: invalid package name "-rf"/);
    expect(problems(`matrix:\n  image: [debian:bookworm]\nshell: [a]\n${STEPS}`)[0]).toMatch(/^m\.yaml:3:\d+: shell: expected a mapping/);
  });
});

describe('planShell: what a shell enters', () => {
  it('shell IMAGE: that image, the current directory at /src, no matrix file read', async () => {
    const dir = project('image-mode', 'this is not a matrix file: [');
    const plan = await planShell(request({ image: 'debian:trixie', packages: ['gcc', 'gcc'] }), dir, stateDir);
    expect(plan).toMatchObject({ title: 'debian:trixie', sourceDir: dir, sourceMode: 'overlay', env: {}, boot: false, cellId: 'shell', network: 'host' });
    expect(plan.request).toMatchObject({ name: 'debian:trixie', packages: ['gcc'] });
  });

  it("the project's shell: shell: on top of the matrix's packages, setup, env and binds, on the first cell's image", async () => {
    const dir = project(
      'project-mode',
      `matrix:\n  image: [debian:bookworm, debian:trixie]\n  cc: [gcc]\npackages: [make]\nsetup: echo matrix\nenv: { CFLAGS: "-O2", WHICH: "\${{ matrix.cc }}" }\nnetwork: private\nshell:\n  packages: [gdb]\n  env: { CC: clang }\n  setup: echo shell\n${STEPS}`,
    );
    const plan = await planShell(request({ packages: ['hello'] }), dir, stateDir);
    expect(plan.request).toMatchObject({ name: 'debian:bookworm', packages: ['make', 'gdb', 'hello'], setup: 'echo matrix\necho shell' });
    expect(plan.env).toEqual({ CFLAGS: '-O2', WHICH: 'gcc', CC: 'clang' });
    expect(plan).toMatchObject({ sourceDir: dir, sourceMode: 'overlay', network: 'private', boot: false, cellId: 'shell' });
    expect(plan.title).toBe(`the project's shell (debian:bookworm; ${join(dir, 'nsmatrix.yaml')})`);
    // shell: image and source; --source and an explicit image win.
    const named = project('project-named', `matrix:\n  image: [debian:bookworm]\nshell:\n  image: debian:trixie\n  source: rw\n${STEPS}`);
    expect(await planShell(request(), named, stateDir)).toMatchObject({ request: { name: 'debian:trixie' }, sourceMode: 'rw' });
    expect(await planShell(request({ source: 'ro', image: 'debian:sid', matrix: named }), tmp, stateDir)).toMatchObject({ request: { name: 'debian:sid' }, sourceMode: 'ro', sourceDir: named });
  });

  it('--cell ID: exactly that cell: its image, env, boot mode; an unknown id is one line with a did-you-mean', async () => {
    const dir = project('cell-mode', `matrix:\n  image: [debian:bookworm]\n  cc: [gcc, clang]\nboot: true\nsource: ro\nenv: { X: "\${{ matrix.cc }}" }\n${STEPS}`);
    const plan = await planShell(request({ cell: 'debian-bookworm_cc-clang' }), dir, stateDir);
    expect(plan).toMatchObject({ cellId: 'debian-bookworm_cc-clang', boot: true, sourceMode: 'ro', request: { name: 'debian:bookworm', boot: true } });
    expect(plan.env).toMatchObject({ CI: 'true', X: 'clang', MATRIX_CC: 'clang', NSMATRIX_CELL: 'debian-bookworm_cc-clang' });
    expect((await planShell(request({ cell: 'debian-bookworm_cc-clang', noBoot: true }), dir, stateDir)).boot).toBe(false);
    const unknown = planShell(request({ cell: 'debian-bookworm_cc-clnag' }), dir, stateDir);
    await expect(unknown).rejects.toThrow(UsageError);
    await expect(unknown).rejects.toThrow(/^nsmatrix: --cell debian-bookworm_cc-clnag: no such cell in \/.*\/cell-mode\/nsmatrix\.yaml \(did you mean "debian-bookworm_cc-clang"\?\)$/);
    await expect(planShell(request({ cell: 'x', image: 'debian:sid' }), dir, stateDir)).rejects.toThrow(/give an image or --cell, not both/);
  });

  it('no image and no matrix file: one line naming both ways out', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    await expect(planShell(request(), empty, stateDir)).rejects.toThrow(/^nsmatrix: no image given, and no matrix file here \(nsmatrix\.yaml or nsmatrix\.yml\): name an image \(nsmatrix shell debian:trixie\) or a matrix file \(--matrix FILE\)$/);
    await expect(planShell(request({ cell: 'a' }), empty, stateDir)).rejects.toThrow(/^nsmatrix: --cell a needs a matrix file, and no matrix file here/);
    await expect(planShell(request({ matrix: 'nope.yaml' }), empty, stateDir)).rejects.toThrow(/nope\.yaml: matrix file not found/);
  });

  it('an unknown suite in shell: image is reported at its position', async () => {
    const dir = project('bad-suite', `matrix:\n  image: [debian:bookworm]\nshell:\n  image: debian:bookwrom\n${STEPS}`);
    await expect(planShell(request(), dir, stateDir)).rejects.toThrow(/^\/.*\/bad-suite\/nsmatrix\.yaml:4:3: image "debian:bookwrom": unknown debian suite "bookwrom" \(did you mean "bookworm"\?\)/);
  });
});

describe('who the shell runs as', () => {
  it('the user sudo names (uid, gid, name), root without sudo or with --root', () => {
    expect(shellUser({ SUDO_UID: '1234', SUDO_GID: '2345', SUDO_USER: 'ada' })).toEqual({ uid: 1234, gid: 2345, name: 'ada', home: '/home/ada', via: 'sudo' });
    expect(shellUser({ SUDO_UID: '1234' })).toMatchObject({ uid: 1234, gid: 1234, name: 'user' });
    expect(shellUser({ SUDO_UID: '1234', SUDO_USER: '../etc' })).toMatchObject({ name: 'user', home: '/home/user' });
    for (const env of [{}, { SUDO_UID: '0' }, { SUDO_UID: 'x' }, { SUDO_UID: '-1' }, { SUDO_UID: '4294967295' }, { SUDO_UID: '' }]) {
      expect(shellUser(env)).toEqual({ uid: 0, gid: 0, name: 'root', home: '/root', via: 'root' });
    }
    expect(shellUser({ SUDO_UID: '1234' }, { root: true })).toMatchObject({ uid: 0, via: 'flag' });
  });

  it('the script adds the user inside when missing, then drops to it with setpriv (perl where there is none)', () => {
    const script = userScript(shellUser({ SUDO_UID: '1234', SUDO_GID: '1234', SUDO_USER: 'ada' }), ['printf', '%s\n', "it's"]);
    expect(script).toContain("set -- 'printf' '%s\n' 'it'\\''s'");
    expect(script).toContain('u=1234 g=1234 name=\'ada\'');
    expect(script).toMatch(/exec setpriv --reuid="\$u" --regid="\$g" --clear-groups -- "\$@"/);
    expect(script).toMatch(/exec perl -e .* "\$u" "\$g" "\$@"/);
    const root = userScript(shellUser({}), []);
    expect(root).not.toContain('setpriv');
    expect(root).toContain("exec bash -l");
  });

  it('a project home per project directory and uid', () => {
    expect(homeId('/a', 1)).not.toBe(homeId('/a', 2));
    expect(homeId('/a', 1)).not.toBe(homeId('/b', 1));
    expect(homeId('/a', 1)).toMatch(/^[0-9a-f]{24}$/);
  });
});

describe('sandbox names and the banner', () => {
  it('accepts safe names only, in one line', () => {
    for (const name of ['work', 'a', 'Feature-1.2_x', 'x'.repeat(64)]) expect(checkSandboxName(name, '--keep')).toBe(name);
    for (const name of ['', '../x', '/abs', '.hidden', '-rf', 'a/b', 'a b', 'x'.repeat(65), 'é', 'a\nb']) {
      expect(() => checkSandboxName(name, '--keep')).toThrow(UsageError);
      expect(() => checkSandboxName(name, '--keep')).toThrow(/^nsmatrix: --keep .*: a sandbox name is 1 to 64 letters/);
    }
  });

  it('says which mode /src is in, who you are, and what is discarded', () => {
    const ada = shellUser({ SUDO_UID: '1000', SUDO_USER: 'ada' });
    expect(shellBanner('debian:trixie', '/p', 'overlay', { user: ada, home: '/home/ada' })).toBe(
      'nsmatrix: debian:trixie, /p at /src (an overlay: files written under /src vanish when the shell exits)\n' +
        'nsmatrix: as ada (uid 1000, gid 1000); home /home/ada kept for this project; everything else is discarded at exit',
    );
    expect(shellBanner('x', '/p', 'rw', { user: ada })).toContain('(read-write: files written under /src stay in the project, owned by ada (uid 1000))');
    expect(shellBanner('x', '/p', 'ro')).toContain('(read-only)');
    expect(shellBanner('x', '/p', 'rw', { user: shellUser({}) })).toContain('as root (nsmatrix was not run through sudo');
    expect(shellBanner('x', '/p', 'overlay', { sandbox: { name: 'w', isNew: true } })).toMatch(/stay in sandbox w, never in \/p\)\n.*everything else is kept in sandbox w \(new\)/);
  });
});

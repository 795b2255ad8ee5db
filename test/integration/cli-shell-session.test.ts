/**
 * `nsmatrix shell` as a person uses it, in a real pseudo-terminal (tmux) with real containers: from a project whose
 * nsmatrix.yaml has a `shell:` section, with SUDO_UID/SUDO_GID as sudo sets them. The shell has the section's
 * packages, env and setup; a file made in /src (read-write) belongs to the invoking uid on the host; a kept
 * sandbox comes back with its state, the project's home with its files; `gc` lists kept sandboxes and leaves them;
 * `--rm` removes one. Every wait polls the screen for text, with generous deadlines: no timing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
const work = mkdtempSync('/var/tmp/nsm-shell-session-');
const session = `nsm-shell-${process.pid}`;
const USER = { SUDO_UID: '1234', SUDO_GID: '1234', SUDO_USER: 'tester' };
const SANDBOX = 'kept-one';
afterAll(() => {
  spawnSync('tmux', ['kill-session', '-t', session]);
  runCli(['shell', '--rm', SANDBOX, '--state-dir', stateDir]);
  rmSync(work, { recursive: true, force: true });
});

const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
/** The pane as a user sees it, scrollback included. */
const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-2000', '-t', session).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, test: (text: string) => boolean, timeoutMs = 300_000): Promise<string> {
  for (const started = Date.now(); ; await sleep(250)) {
    const text = screen();
    if (test(text)) return text;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; screen:\n${text}`);
  }
}
/** Types a line as a person would, and presses Enter. */
function type(line: string): void {
  expect(tmux('send-keys', '-t', session, '-l', line).status).toBe(0);
  expect(tmux('send-keys', '-t', session, 'Enter').status).toBe(0);
}
/** The screen after the last occurrence of `marker` (so that earlier shells' output never satisfies a later wait). */
const after = (text: string, marker: string) => text.slice(text.lastIndexOf(marker));
/** The prompt of the shell inside: Debian's skeleton .bashrc, the user, the machine, /src. */
const INSIDE = /tester@nsm-[0-9a-f]+-\d+:\/src\$ *$/m;

/** A host shell in a fresh tmux session, as the person behind sudo has it. */
async function openTerminal(): Promise<void> {
  tmux('kill-session', '-t', session);
  const env = Object.entries({ ...USER, NO_COLOR: '1', TERM: 'xterm-256color', PS1: 'host$ ' }).map(([k, v]) => `${k}=${v}`);
  expect(tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', 'env', ...env, 'bash', '--norc', '--noprofile').status).toBe(0);
  await until('the host shell', (t) => /host\$ $/m.test(t), 60_000);
}

describe('nsmatrix shell in a pseudo-terminal', () => {
  it("enters the project's shell as the invoking user, keeps a sandbox and a home, and gc leaves the sandbox", async () => {
    const dir = join(work, 'project');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'nsmatrix.yaml'),
      [
        'matrix:',
        '  image: [debian:bookworm]',
        'shell:',
        '  packages: [hello]',
        '  env: { GREETING: from-the-shell }',
        '  setup: echo baked-in > /etc/nsmatrix-baked',
        '  source: rw',
        'steps:',
        '  - name: s',
        '    run: "true"',
        '',
      ].join('\n'),
    );
    // The project belongs to the person behind sudo, as a checkout in their home does.
    for (const path of [dir, join(dir, 'nsmatrix.yaml')]) chownSync(path, 1234, 1234);
    await openTerminal();
    const nsmatrix = `${process.execPath} ${CLI} shell --state-dir ${stateDir}`;

    // 1. In: the section's packages, env and setup; a file in /src; state in the sandbox and the home.
    type(`cd ${dir} && ${nsmatrix} --keep ${SANDBOX}; echo "first-exit-$?"`);
    // The shell's layer (hello, the setup script) may be built now: a first shell can take minutes on a busy host.
    const entered = await until('the shell inside', (t) => INSIDE.test(after(t, 'first-exit')), 900_000);
    expect(entered).toMatch(/nsmatrix: the project's shell \(debian:bookworm; nsmatrix\.yaml\), .* at \/src \(read-write: files written under \/src stay in the project, owned by tester \(uid 1234\)\)/);
    expect(entered).toMatch(/nsmatrix: as tester \(uid 1234, gid 1234\); home \/home\/tester kept for this project; everything else is kept in sandbox kept-one \(new\)/);
    type('echo "greeting=$GREETING"; hello; cat /etc/nsmatrix-baked; echo "who=$(id -u):$(id -g):$HOME"; echo made > /src/made-here; echo remembered > /var/tmp/sandbox-state; echo noted > ~/note; echo "step-$((20+1))"');
    const inside = after(await until('the commands inside', (t) => /^step-21$/m.test(t)), 'greeting=');
    expect(inside).toMatch(/^greeting=from-the-shell$/m);
    expect(inside).toMatch(/^Hello, world!$/m);
    expect(inside).toMatch(/^baked-in$/m);
    expect(inside).toMatch(/^who=1234:1234:\/home\/tester$/m);
    type('exit');
    await until('the shell to exit', (t) => /^first-exit-0$/m.test(t));
    // The host sees the file the shell made in /src as the invoking user's.
    const made = statSync(join(dir, 'made-here'));
    expect([made.uid, made.gid]).toEqual([1234, 1234]);
    expect(readFileSync(join(dir, 'made-here'), 'utf8')).toBe('made\n');

    // 2. Again: the kept sandbox comes back with its state, the home with its files.
    type(`${nsmatrix} --keep ${SANDBOX}; echo "second-exit-$?"`);
    const again = await until('the kept sandbox', (t) => INSIDE.test(after(t, 'second-exit')), 300_000);
    expect(after(again, 'second-exit')).toContain('everything else is kept in sandbox kept-one (entered again)');
    type('cat /var/tmp/sandbox-state ~/note; echo "back-$((1+1))"');
    const back = after(await until('the state of the sandbox', (t) => /^back-2$/m.test(t)), 'cat /var/tmp/sandbox-state');
    expect(back).toMatch(/^remembered$/m);
    expect(back).toMatch(/^noted$/m);
    type('exit');
    await until('the second shell to exit', (t) => /^second-exit-0$/m.test(t));

    // 3. A shell that is not kept starts from the image again; the project's home is still there.
    const fresh = runCli(['shell', '--state-dir', stateDir, '--', 'sh', '-c', 'cat ~/note; test -e /var/tmp/sandbox-state || echo fresh'], { cwd: dir, env: USER });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toBe('noted\nfresh\n');

    // A kept sandbox is entered only over its image and from its project: one line, exit 2, before anything is built.
    const otherImage = runCli(['shell', 'debian:sid', '--keep', SANDBOX, '--state-dir', stateDir, '--', 'true'], { cwd: dir, env: USER });
    expect(otherImage.code, otherImage.stderr).toBe(2);
    expect(otherImage.stderr).toBe(`nsmatrix: --keep ${SANDBOX}: this sandbox was made over debian:bookworm, not debian:sid: enter it with the options it was made with, or remove it with nsmatrix shell --rm ${SANDBOX}\n`);
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const otherProject = runCli(['shell', 'debian:bookworm', '--keep', SANDBOX, '--state-dir', stateDir, '--', 'true'], { cwd: elsewhere, env: USER });
    expect(otherProject.code, otherProject.stderr).toBe(2);
    expect(otherProject.stderr).toMatch(/^nsmatrix: --keep kept-one: this sandbox belongs to .*\/project, not to .*\/elsewhere .*\n$/);

    // 4. gc lists the kept sandbox and leaves it; --list shows it; --rm removes it.
    const gc = runCli(['gc', '--state-dir', stateDir]);
    expect(gc.code, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/^kept sandbox kept-one \(debian:bookworm, .*\): not removed \(nsmatrix shell --rm kept-one removes it\)$/m);
    expect(existsSync(join(stateDir, 'shell', 'sandboxes', SANDBOX, 'root', 'var', 'tmp', 'sandbox-state'))).toBe(true);
    const list = runCli(['shell', '--list', '--state-dir', stateDir]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^\\s+kept-one\\s+debian:bookworm\\s+${dir}\\s`, 'm'));
    const removed = runCli(['shell', '--rm', SANDBOX, '--state-dir', stateDir]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toBe(`removed sandbox ${SANDBOX}\n`);
    expect(runCli(['shell', '--list', '--state-dir', stateDir]).stdout).not.toMatch(/kept-one/);
    expect(existsSync(join(stateDir, 'shell', 'sandboxes', SANDBOX))).toBe(false);
  }, 1_500_000);

  it('enters a booted cell (boot: true) on its console: systemd runs, the user is switched, the exit status comes back', async () => {
    const dir = join(work, 'booted');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'nsmatrix.yaml'),
      ['matrix:', '  image: [debian:bookworm]', 'boot: true', 'steps:', '  - name: s', '    run: systemctl is-system-running', ''].join('\n'),
    );
    chownSync(dir, 1234, 1234);
    await openTerminal();
    type(`cd ${dir} && ${process.execPath} ${CLI} shell --cell debian-bookworm --source rw --state-dir ${stateDir}; echo "booted-exit-$?"`);
    const entered = await until('the booted shell', (t) => INSIDE.test(after(t, 'booted-exit')), 900_000);
    expect(entered).toMatch(/nsmatrix: cell debian-bookworm \(debian:bookworm\)/);
    type('echo "state=$(systemctl is-system-running) pid1=$(cat /proc/1/comm) who=$(id -u):$(id -g)"; echo booted > /src/booted-here; echo "done-$((2+3))"');
    const inside = after(await until('the commands inside', (t) => /^done-5$/m.test(t)), 'state=');
    expect(inside).toMatch(/^state=running pid1=systemd who=1234:1234$/m);
    type('exit 5');
    await until('the booted shell to exit with its status', (t) => /^booted-exit-5$/m.test(t), 120_000);
    const made = statSync(join(dir, 'booted-here'));
    expect([made.uid, made.gid]).toEqual([1234, 1234]);
    expect(spawnSync('pgrep', ['-f', `systemd-nspawn.*${stateDir}`]).status, 'no container left running').toBe(1);
  }, 1_200_000);
});

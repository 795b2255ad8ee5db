/**
 * The live view in a real pseudo-terminal (tmux), with real containers: what it shows while a run goes on, and
 * Ctrl-C: exit 130, every report written, nothing left behind (scratch, nspawn processes, cgroups, mounts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { CLI, leftovers } from '../helpers/cli.js';

const stateDir = inject('stateDir');
const work = mkdtempSync('/var/tmp/nsm-live-');
const session = `nsm-live-${process.pid}`;
afterAll(() => {
  spawnSync('tmux', ['kill-session', '-t', session]);
  rmSync(work, { recursive: true, force: true });
});

const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
/** The pane as a user sees it, scrollback included. */
const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session).stdout;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, test: () => boolean, timeoutMs = 240_000): Promise<void> {
  for (const started = Date.now(); !test(); await sleep(200)) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}; screen:\n${screen()}`);
  }
}

/** nsmatrix's cgroups of the containers `cli` runs now (named after their machines): this run's, not those of runs beside it. */
function cgroupsOf(cli: number): string[] {
  const children = spawnSync('ps', ['-o', 'args=', '--ppid', String(cli)], { encoding: 'utf8' }).stdout;
  const machines = [...children.matchAll(/systemd-nspawn .*?--machine=(\S+)/g)].map((m) => m[1]!);
  return leftovers().cgroups.filter((dir) => machines.some((machine) => dir.endsWith(`/${machine}`)));
}

describe('live view in a pseudo-terminal', () => {
  it('shows queued, running and finished cells truthfully, announces a failure once, and Ctrl-C exits 130 with reports and nothing left', async () => {
    const dir = join(work, 'p');
    const out = join(work, 'out');
    spawnSync('mkdir', ['-p', dir]);
    writeFileSync(
      join(dir, 'nsmatrix.yaml'),
      'matrix:\n  image: [debian:bookworm]\n  n: [1, 2, 3]\nfail-fast: false\nsteps:\n  - name: work\n    run: \'if [ "$MATRIX_N" = 1 ]; then echo broken; exit 3; fi; sleep 300\'\n',
    );
    const exitFile = join(work, 'exit');
    // A person's terminal: not CI (CI=true, as CI itself sets it, would choose the plain view).
    const command = `cd ${dir} && env -u CI -u GITHUB_ACTIONS -u GITLAB_CI TERM=xterm-256color NO_COLOR=1 ${process.execPath} ${CLI} run --state-dir ${stateDir} -o ${out} -j 2; echo $? > ${exitFile}; sleep 600`;
    expect(tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '40', command).status).toBe(0);

    await until('the failing cell to finish and the others to run', () => /✖ debian:bookworm \[n=1\] — failed/.test(screen()) && /sleep|work \d/.test(screen()));
    await until('a cell to be running its step', () => /⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏/.test(screen()) && /\[n=2\] — work/.test(screen()));
    const during = screen();
    // The image was cached (or built) and its row stopped; the third cell waits for a job slot and says so.
    expect(during).toMatch(/✔ image debian:bookworm — (cached|built)/);
    expect(during).toMatch(/◦ debian:bookworm \[n=3\] — queued/);
    expect(during).toMatch(/1 of 3 cells done, 1 failed/);
    // A finished row keeps its text and its time while the view redraws.
    const finishedRow = () => screen().split('\n').find((l) => l.includes('[n=1] — failed'));
    const first = finishedRow();
    await sleep(1500);
    expect(finishedRow()).toBe(first);
    const cli = Number(spawnSync('pgrep', ['-n', '-f', `main.js run --state-dir ${stateDir} -o ${out}`], { encoding: 'utf8' }).stdout.trim().split('\n')[0]);
    const ours = cgroupsOf(cli);
    expect(ours.length, 'the running cells\' cgroups').toBeGreaterThan(0);

    tmux('send-keys', '-t', session, 'C-c');
    await until('the run to exit', () => existsSync(exitFile), 120_000);
    const after = screen();
    expect(readFileSync(exitFile, 'utf8').trim(), after).toBe('130');
    for (const report of ['junit.xml', 'results.json']) expect(existsSync(join(out, report)), after).toBe(true);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { interrupted: boolean; cells: { outcome: string }[] };
    expect(result.interrupted).toBe(true);
    expect(result.cells.map((c) => c.outcome)).toEqual(['failed', 'cancelled', 'cancelled']);
    // The failure's details are printed once, not once per view and again by the renderer.
    expect(after.match(/✖ debian:bookworm \[n=1\]: failed/g)?.length, after).toBe(1);
    expect(after.match(/rerun: /g)?.length, after).toBe(1);
    expect(after).not.toMatch(/Interrupted\.|internal error/);
    // Nothing left: this run's scratch, containers, cgroups and mounts.
    const scratch = join(stateDir, 'run');
    expect(existsSync(scratch) ? readdirSync(scratch) : []).toEqual([]);
    const left = leftovers([stateDir, out]);
    expect(left.mounts).toEqual([]);
    expect(left.processes).toEqual([]);
    for (const cgroup of ours) expect(existsSync(cgroup), cgroup).toBe(false);
  }, 600_000);
});

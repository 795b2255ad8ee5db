/** The built binary, as users run it: output, exit codes, and no stack traces on bad input. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = resolve('dist/src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'nsm-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function nsmatrix(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: options.cwd ?? process.cwd(), env: { ...process.env, NO_COLOR: '1', ...options.env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectNoStack(text: string) {
  expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?/);
}

describe('nsmatrix CLI', () => {
  it('--version prints the package version', () => {
    const { version } = JSON.parse(execFileSync('cat', ['package.json'], { encoding: 'utf8' })) as { version: string };
    expect(nsmatrix(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('--help lists every command, and each command has help with examples', () => {
    const help = nsmatrix(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['validate', 'list', 'run', 'shell', 'images', 'doctor', 'gc', 'merge', 'completion']) expect(help.stdout).toContain(command);
    for (const command of ['validate', 'list', 'run', 'shell', 'merge']) {
      const sub = nsmatrix([command, '--help']);
      expect(sub.code, command).toBe(0);
      expect(sub.stdout, command).toContain('Examples:');
    }
  });

  it('refuses an unknown --ephemeral-strategy, naming the flag and the strategies the runtime has', () => {
    const r = nsmatrix(['run', '--ephemeral-strategy', 'snapshot']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ephemeral-strategy/);
    for (const name of ['auto', 'overlay', 'btrfs-snapshot', 'volatile', 'copy']) expect(r.stderr).toContain(name);
    expectNoStack(r.stderr);
  });

  it('prints a completion script', () => {
    const r = nsmatrix(['completion']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/complete|compdef/);
  });

  it.each([
    [['run', '--bogus']],
    [['list', 'matrices/smoke.yaml', '--format', 'xml']],
    [['frobnicate']],
    [[]],
    [['list', 'matrices/smoke.yaml', '--shard', '3/2']],
    [['list', 'matrices/smoke.yaml', '--filter', 'nope']],
    [['list', 'matrices/smoke.yaml', '--filter', 'colour=red']],
    [['run', 'matrices/smoke.yaml', '--jobs', '0']],
    [['run', 'matrices/smoke.yaml', '--reporter', 'pdf']],
    [['validate', 'no/such/file.yaml']],
  ])('bad usage %j exits 2 with a one-line reason and no stack trace', (args) => {
    const r = nsmatrix(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().length).toBeGreaterThan(0);
    expect(r.stderr.split('\n')[0]).toMatch(/^nsmatrix|^[^\s]+:\d+:\d+: |--|no\/such/);
    expectNoStack(r.stderr);
  });

  it('validate reports every problem as FILE:LINE:COL and exits 2', () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, 'matrix:\n  image: [debian:bookworm]\nstpes:\n  - name: a\n    run: true\ntimeout: soon\n');
    const r = nsmatrix(['validate', file]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).toMatch(new RegExp(`^${file}:\\d+:\\d+: `));
    expect(r.stderr).toMatch(/:3:1: .*stpes.*steps/);
    expect(r.stderr).toMatch(/:6:10: .*duration/);
    expectNoStack(r.stderr);
  });

  it('finds nsmatrix.yaml in the current directory', () => {
    const dir = mkdtempSync(join(tmp, 'cwd-'));
    writeFileSync(join(dir, 'nsmatrix.yaml'), 'matrix:\n  image: [debian:bookworm, debian:trixie]\nsteps:\n  - run: echo hi\n    name: hi\n');
    const r = nsmatrix(['validate'], { cwd: dir });
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain('2 cells');
  });

  it('list --format json prints the expanded cells, github a strategy.matrix', () => {
    const json = JSON.parse(nsmatrix(['list', 'matrices/smoke.yaml', '--format', 'json']).stdout) as { id: string; image: string }[];
    expect(json.map((c) => c.image)).toEqual(['debian:bullseye', 'debian:bookworm', 'debian:trixie', 'debian:sid']);
    for (const cell of json) expect(cell.id).toMatch(/^[a-z0-9][a-z0-9._-]*$/);
    const github = JSON.parse(nsmatrix(['list', 'matrices/smoke.yaml', '--format', 'github']).stdout) as { include: Record<string, string>[] };
    expect(github.include).toHaveLength(4);
    expect(github.include[0]).toMatchObject({ image: 'debian:bullseye', 'nsmatrix-cell': json[0]!.id });
  });

  it('shards of list cover every cell exactly once', () => {
    const all = (JSON.parse(nsmatrix(['list', 'matrices/smoke.yaml', '--format', 'json']).stdout) as { id: string }[]).map((c) => c.id);
    const shards = [1, 2, 3].flatMap((i) => (JSON.parse(nsmatrix(['list', 'matrices/smoke.yaml', '--format', 'json', '--shard', `${i}/3`]).stdout) as { id: string }[]).map((c) => c.id));
    expect([...shards].sort()).toEqual([...all].sort());
  });
});

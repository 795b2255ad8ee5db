/**
 * The README's two first commands work as they are for root without sudo and for a user with sudo: the root part
 * of scripts/setup-host.sh, the nsmatrix wrapper it installs and scripts/as-root go through sudo only when not
 * root. The user case runs as `nobody` with a stand-in sudo that records what it was asked to run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repo = resolve('.');
const tmp = mkdtempSync('/tmp/nsm-setup-');
chmodSync(tmp, 0o777);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const readme = readFileSync('README.md', 'utf8');
const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
const commands = firstBlock.trim().split('\n').map((line) => line.replace(/\s+#.*$/, '').trim());

/** A sudo that logs its arguments (one call per line) and runs nothing. */
function fakeSudo(): { dir: string; log: string } {
  const dir = mkdtempSync(join(tmp, 'sudo-'));
  chmodSync(dir, 0o755);
  const log = join(dir, 'log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  writeFileSync(join(dir, 'sudo'), `#!/bin/sh\necho "$*" >> ${log}\n`);
  chmodSync(join(dir, 'sudo'), 0o755);
  return { dir, log };
}

/**
 * A world-readable copy of the scripts, with a stand-in for the built CLI that prints its arguments: `nobody` can
 * run them wherever the checkout sits (CI's clone may be below a directory only root may enter).
 */
function userCopy(): string {
  const copy = mkdtempSync(join(tmp, 'repo-'));
  chmodSync(copy, 0o755);
  mkdirSync(join(copy, 'scripts'));
  mkdirSync(join(copy, 'dist', 'src', 'cli'), { recursive: true });
  for (const script of ['setup-host.sh', 'as-root']) {
    copyFileSync(join(repo, 'scripts', script), join(copy, 'scripts', script));
    chmodSync(join(copy, 'scripts', script), 0o755);
  }
  writeFileSync(join(copy, 'dist', 'src', 'cli', 'main.js'), "console.log('nsmatrix', process.argv.slice(2).join(' '));\n");
  spawnSync('chmod', ['-R', 'a+rX', copy]);
  return copy;
}

const asNobody = (args: string[], env: Record<string, string>, cwd: string) =>
  spawnSync('runuser', ['-u', 'nobody', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args], { encoding: 'utf8', cwd });

describe("the README's first commands", () => {
  it('start with no sudo: setup-host.sh then nsmatrix, and scripts/as-root npm test', () => {
    expect(commands).toEqual(['bash scripts/setup-host.sh && nsmatrix run matrices/smoke.yaml', 'scripts/as-root npm test']);
    for (const line of commands) expect(line).not.toMatch(/(^|&& )sudo /);
  });

  it('as root: setup-host.sh installs nsmatrix on PATH without sudo; the wrapper and as-root run directly', () => {
    const bin = mkdtempSync(join(tmp, 'bin-'));
    const { dir, log } = fakeSudo();
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' };
    const setup = spawnSync('bash', ['scripts/setup-host.sh'], { encoding: 'utf8', env });
    expect(setup.status, setup.stderr).toBe(0);
    const version = spawnSync('sh', ['-c', 'nsmatrix --version'], { encoding: 'utf8', env: { ...env, PATH: `${bin}:${env.PATH}` } });
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(spawnSync('scripts/as-root', ['id', '-u'], { encoding: 'utf8', env }).stdout).toBe('0\n');
    expect(readFileSync(log, 'utf8')).toBe('');
  });

  it('as a user with sudo: the root part, the commands that start containers and as-root go through sudo', () => {
    const copy = userCopy();
    const bin = mkdtempSync(join(tmp, 'bin-'));
    chmodSync(bin, 0o755);
    const { dir, log } = fakeSudo();
    const PATH = `${dir}:${bin}:/usr/local/bin:/usr/bin:/bin`;
    const setup = asNobody(['bash', 'scripts/setup-host.sh'], { PATH, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' }, copy);
    expect(setup.status, setup.stderr).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(new RegExp(`^env NSMATRIX_NODE=\\S+ NSMATRIX_BIN_DIR=${bin} NSMATRIX_SKIP_APT=1 NSMATRIX_SKIP_BUILD=1 bash ${copy}/scripts/setup-host.sh\\n$`));
    // The wrapper, installed here by root (the stand-in sudo ran nothing).
    expect(spawnSync('bash', ['scripts/setup-host.sh'], { cwd: copy, env: { ...process.env, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' } }).status).toBe(0);
    writeFileSync(log, '');
    const list = asNobody(['nsmatrix', 'list', 'matrices/smoke.yaml'], { PATH }, copy);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toBe('nsmatrix list matrices/smoke.yaml\n');
    expect(asNobody(['nsmatrix', 'run', 'matrices/smoke.yaml'], { PATH }, copy).status).toBe(0);
    expect(asNobody(['scripts/as-root', 'npm', 'test'], { PATH }, copy).status).toBe(0);
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    expect(calls[0]).toMatch(new RegExp(`^/\\S*node ${copy}/dist/src/cli/main.js run matrices/smoke.yaml$`));
    expect(calls[1]).toBe(`env PATH=${PATH} npm test`);
    expect(calls).toHaveLength(2);
  });

  it('run again after the checkout changed, setup-host.sh rebuilds dist/ even though the dependencies are current', () => {
    const copy = userCopy();
    const bin = mkdtempSync(join(tmp, 'bin-'));
    writeFileSync(join(copy, 'package-lock.json'), '{}\n');
    mkdirSync(join(copy, 'node_modules'));
    writeFileSync(join(copy, 'node_modules', '.package-lock.json'), '{}\n');
    spawnSync('touch', ['-d', '1 hour ago', join(copy, 'package-lock.json')]);
    // An npm that records what it was asked to do.
    const npmDir = mkdtempSync(join(tmp, 'npm-'));
    const npmLog = join(npmDir, 'log');
    writeFileSync(join(npmDir, 'npm'), `#!/bin/sh\necho "$*" >> ${npmLog}\n`);
    chmodSync(join(npmDir, 'npm'), 0o755);
    const env = { ...process.env, PATH: `${npmDir}:${process.env.PATH}`, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1' };
    const setup = spawnSync('bash', ['scripts/setup-host.sh'], { cwd: copy, encoding: 'utf8', env });
    expect(setup.status, setup.stderr).toBe(0);
    expect(existsSync(npmLog) ? readFileSync(npmLog, 'utf8') : '(npm not run)').toBe('run --silent build\n');
  });

  it('without root and without sudo: setup-host.sh says to run it as root', () => {
    const r = asNobody(['bash', 'scripts/setup-host.sh'], { PATH: '/usr/bin:/bin' }, userCopy());
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/run as root/);
    expect(existsSync('/nonexistent/nsmatrix')).toBe(false);
  });
});

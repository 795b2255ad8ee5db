/** Runs the built CLI as a user would, and checks the host for anything a run left behind. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { validateJunit } from '../fixtures/results/xmllint.js';

export const CLI = resolve('dist/src/cli/main.js');
export const SCHEMAS = resolve('../shared/schemas');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    timeout: options.timeoutMs ?? 600_000,
    maxBuffer: 64 * 2 ** 20,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI and resolves once `ready` matches its output; the caller signals and awaits `done`. */
export function startCli(args: string[], ready: RegExp, options: { cwd?: string } = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? process.cwd(), env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const done = new Promise<CliResult>((resolveDone) =>
    child.on('close', (code, signal) => resolveDone({ code, signal, stdout, stderr })),
  );
  const isReady = new Promise<void>((resolveReady, reject) => {
    const check = () => {
      if (ready.test(stdout) || ready.test(stderr)) resolveReady();
    };
    child.stdout.on('data', (c: Buffer) => ((stdout += c.toString()), check()));
    child.stderr.on('data', (c: Buffer) => ((stderr += c.toString()), check()));
    void done.then((r) => reject(new Error(`CLI exited (${r.code}) before ${ready}:\n${stdout}\n${stderr}`)));
  });
  return { child, ready: isReady, done };
}

/** Validates a JUnit report against a schema in ../shared/schemas; returns xmllint's complaint, or '' when valid. */
export function schemaErrors(report: string, schema = 'project-junit-profile.xsd'): string {
  const r = spawnSync('xmllint', ['--noout', '--schema', join(SCHEMAS, schema), report], { encoding: 'utf8' });
  if (r.error) throw new Error(`xmllint is missing (apt-get install libxml2-utils): ${r.error.message}`);
  return r.status === 0 ? '' : r.stderr;
}

/**
 * Validates a JUnit report against every consumer schema in ../shared/schemas (the whole file against the project
 * profile, Jenkins xUnit junit-10 and dtkit junit-4; each testsuite alone against Surefire): '' when valid, else
 * xmllint's complaints, each naming its schema. The one implementation is validateJunit in test/fixtures/results/xmllint.ts.
 */
export function junitSchemaErrors(report: string): string {
  return validateJunit(report).errors.join('\n');
}

/** `text` names `path` itself or something below it (not merely a path that starts the same, like `/a/b-2` for `/a/b`). */
export function mentionsPath(text: string, path: string): boolean {
  for (let at = text.indexOf(path); at >= 0; at = text.indexOf(path, at + 1)) {
    const next = text[at + path.length];
    if (next === undefined || next === '/' || next === ':' || /\s/.test(next)) return true;
  }
  return false;
}

/** Mounts, nspawn processes and cgroups that mention nsmatrix or the given paths. */
export function leftovers(paths: string[] = []): { mounts: string[]; processes: string[]; cgroups: string[] } {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const mounts = mountinfo.filter((l) => /nsmatrix|nsm-/.test(l) || paths.some((p) => mentionsPath(l, p)));
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout.split('\n');
  const processes = ps.filter((l) => /systemd-nspawn/.test(l) && (paths.length === 0 || paths.some((p) => mentionsPath(l, p))));
  const cgroups: string[] = [];
  for (const root of ['/sys/fs/cgroup/unified/nsmatrix', '/sys/fs/cgroup/systemd/nsmatrix', '/sys/fs/cgroup/nsmatrix']) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (entry.isDirectory() && !isOthersContainer(join(root, entry.name), paths)) cgroups.push(join(root, entry.name));
    }
  }
  return { mounts, processes, cgroups };
}

/**
 * On a host shared with other people's runs (NSMATRIX_TEST_SHARED_HOST=1, never in CI), a container cgroup that
 * holds processes none of which names the given paths (a run's systemd-nspawn, in its cgroup, names the state and
 * output dirs) is theirs. Otherwise every cgroup counts: a payload that outlived its nspawn names no path either.
 */
function isOthersContainer(dir: string, paths: string[]): boolean {
  if (process.env.NSMATRIX_TEST_SHARED_HOST !== '1' || paths.length === 0) return false;
  const pids = cgroupTreePids(dir);
  if (pids.length === 0) return false;
  return !pids.some((pid) => {
    try {
      return paths.some((p) => mentionsPath(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '), p));
    } catch {
      return false;
    }
  });
}

function cgroupTreePids(dir: string): string[] {
  try {
    const own = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    const below = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => cgroupTreePids(join(dir, e.name)));
    return [...own, ...below];
  } catch {
    return [];
  }
}

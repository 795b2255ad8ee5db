/**
 * Shared pieces of the hardening suite: a seeded random source (failures reproduce from the printed seed), throwaway
 * projects, the CLI started as a child we can signal at a chosen moment, and one `damage` check listing everything a
 * run may have left behind: mounts, processes, cgroups, scratch directories, half-written reports, half-published images.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CLI, leftovers, mentionsPath, schemaErrors, type CliResult } from '../helpers/cli.js';

/** mulberry32: small, fast and good enough to pick trial parameters reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedFromEnv(name = 'NSMATRIX_SEED'): number {
  const given = process.env[name];
  return given !== undefined && /^\d+$/.test(given) ? Number(given) : Math.floor(Math.random() * 2 ** 31);
}

export const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** A directory holding `nsmatrix.yaml` (and optional files); returns the matrix file's path. */
export function project(dir: string, matrix: string, files: Record<string, string> = {}): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries({ 'nsmatrix.yaml': matrix, ...files })) writeFileSync(join(dir, file), text);
  return join(dir, 'nsmatrix.yaml');
}

export interface Started {
  child: ReturnType<typeof spawn>;
  /** Resolves when `pattern` shows up in stdout or stderr; false if the CLI exited first. */
  seen(pattern: RegExp): Promise<boolean>;
  /** What the CLI has printed so far (both streams). */
  output(): string;
  done: Promise<CliResult>;
}

/** Starts the built CLI; output is collected so the caller can wait for a phase marker before signalling. */
export function start(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Started {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (seen: boolean) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pattern.test(stdout) || w.pattern.test(stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(true);
      }
    }
  };
  child.stdout!.on('data', (c: Buffer) => ((stdout += c.toString()), check()));
  child.stderr!.on('data', (c: Buffer) => ((stderr += c.toString()), check()));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => {
      for (const w of waiters.splice(0)) w.resolve(false);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return {
    child,
    done,
    output: () => `${stdout}\n${stderr}`,
    seen: (pattern) =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(pattern.test(stdout) || pattern.test(stderr));
        waiters.push({ pattern, resolve });
        check();
      }),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Command lines of live processes that mention any of `needles` (other than this test process). */
export function processesMentioning(needles: string[]): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args', '--no-headers'], { encoding: 'utf8' }).stdout.split('\n');
  return ps.filter((l) => l.trim() && !l.includes(' ps -eo') && needles.some((n) => l.includes(n)));
}

/** When this test file started: what existed before is not its doing. */
const LOADED_AT = Date.now();

const REPORTS = ['junit.xml', 'results.json', 'summary.md', 'report.html'];

/** A report is either absent or whole: JUnit valid against the profile, JSON parseable, Markdown/HTML finished. */
export function reportProblems(outputDir: string): string[] {
  const problems: string[] = [];
  for (const name of REPORTS) {
    const path = join(outputDir, name);
    if (!existsSync(path)) continue;
    const text = readFileSync(path, 'utf8');
    if (name === 'junit.xml') {
      const errors = schemaErrors(path);
      if (errors) problems.push(`${name} invalid: ${errors.slice(0, 300)}`);
    } else if (name === 'results.json') {
      try {
        const parsed = JSON.parse(text) as { version?: unknown; cells?: unknown };
        if (parsed.version === undefined || !Array.isArray(parsed.cells)) problems.push(`${name} lacks version or cells`);
      } catch (error) {
        problems.push(`${name} is not JSON: ${(error as Error).message}`);
      }
    } else if (name === 'report.html' && !text.trimEnd().endsWith('</html>')) problems.push(`${name} is cut short`);
    else if (name === 'summary.md' && !text.endsWith('\n')) problems.push(`${name} is cut short`);
  }
  return problems;
}

/** Published images are whole: every `images/<key>` has a manifest whose root exists. */
export function imageProblems(stateDir: string): string[] {
  const problems: string[] = [];
  const images = join(stateDir, 'images');
  for (const key of existsSync(images) ? readdirSync(images) : []) {
    const manifest = join(images, key, 'manifest.json');
    if (!existsSync(manifest)) {
      problems.push(`images/${key} has no manifest (half-published)`);
      continue;
    }
    const root = (JSON.parse(readFileSync(manifest, 'utf8')) as { root: string }).root;
    if (!existsSync(join(root, 'usr'))) problems.push(`images/${key}: root ${root} is missing or empty`);
  }
  return problems;
}

/** Every pid in a cgroup and the cgroups below it: nspawn puts a container's processes in `payload`/`supervisor`. */
function cgroupTreePids(cgroup: string): string[] {
  const pids = readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  for (const entry of readdirSync(cgroup, { withFileTypes: true })) if (entry.isDirectory()) pids.push(...cgroupTreePids(join(cgroup, entry.name)));
  return pids;
}

/**
 * An nsmatrix cgroup left by this test's runs: empty (nothing may keep an empty one), or holding a process that names
 * our state or output directory or payload, or that lives in a container whose root is in our state directory (a
 * booted container's init names nothing). Cgroups of other nsmatrix users of the host hold their own processes.
 */
function cgroupIsOurs(cgroup: string, stateDir: string, names: (text: string) => boolean, sinceMs: number, machines?: readonly string[]): boolean {
  let pids: string[];
  let createdMs: number;
  try {
    pids = cgroupTreePids(cgroup);
    createdMs = statSync(cgroup).ctimeMs;
  } catch {
    return false; // removed meanwhile
  }
  // An empty one is ours if it appeared since `sinceMs` (older ones belong to whoever used the host before) and, when
  // the checked runs' machines are known, is named after one of them.
  if (pids.length === 0) return createdMs >= sinceMs && (machines?.includes(basename(cgroup)) ?? true);
  return pids.some((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (names(cmdline)) return true;
      // The process's own root mount (mount point "/"): an overlay or bind whose source lies in our state directory.
      const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/');
      return root?.includes(`${stateDir}/`) ?? false;
    } catch {
      return false;
    }
  });
}

const listDir = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/**
 * Everything a finished (or repaired) run must not leave behind. `payloadMarker` is a word that only the steps'
 * own processes carry in their command lines; `sinceMs` is when the runs being checked started; `machines`, when
 * known (results.json names each cell's), are the only names an empty cgroup of theirs can have.
 */
export function damage(stateDir: string, outputDir: string, payloadMarker: string, sinceMs = LOADED_AT, machines?: readonly string[]): string[] {
  const left = leftovers([stateDir, outputDir]);
  // Paths as paths: /var/tmp/x-B (another user's state directory) is not /var/tmp/x.
  const inOurDirs = (text: string) => mentionsPath(text, stateDir) || mentionsPath(text, outputDir);
  return [
    // Only mounts of this state or output directory: other nsmatrix users of the host are none of this test's business.
    ...left.mounts.filter(inOurDirs).map((m) => `mount: ${m}`),
    ...left.processes.map((p) => `nspawn process: ${p}`),
    ...left.cgroups.filter((c) => cgroupIsOurs(c, stateDir, (t) => inOurDirs(t) || t.includes(payloadMarker), sinceMs, machines)).map((c) => `cgroup: ${c}`),
    ...processesMentioning([stateDir, outputDir, payloadMarker]).filter((p) => inOurDirs(p) || p.includes(payloadMarker)).map((p) => `process: ${p}`),
    ...listDir(join(stateDir, 'run')).map((d) => `scratch: run/${d}`),
    ...listDir(join(stateDir, 'tmp')).map((d) => `image build dir: tmp/${d}`),
    ...reportProblems(outputDir),
    ...imageProblems(stateDir),
  ];
}

/**
 * Waits until `probe` returns an empty list (processes take a moment to be reaped), or returns what it kept finding:
 * after `ms`, only what every probe of the last `persistMs` found. A leftover stays; what other nsmatrix users of the
 * host create and remove meanwhile does not (their cgroup is empty for a moment between its mkdir and nspawn joining
 * it, or while it is torn down), and must not fail this test.
 */
export async function settle(probe: () => string[], ms = 5_000, persistMs = 2_000): Promise<string[]> {
  const until = Date.now() + ms;
  const since = new Map<string, number>(); // item -> when the current unbroken run of sightings began
  for (;;) {
    const now = Date.now();
    const last = probe();
    if (last.length === 0) return [];
    for (const item of [...since.keys()]) if (!last.includes(item)) since.delete(item);
    for (const item of last) if (!since.has(item)) since.set(item, now);
    const persistent = last.filter((item) => now - since.get(item)! >= persistMs);
    if (now >= until && (persistent.length === last.length || now >= until + persistMs)) return persistent;
    await sleep(200);
  }
}

/**
 * The runtime stage with real systemd-nspawn containers over an image built by the images stage: exit statuses,
 * persistence, the source overlay, artifacts, timeouts, aborts and cleanup.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, lstatSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { resources } from '../../src/lib/resources.js';
import { destroyCgroupDir } from '../../src/runtime/cgroup.js';
import { createRunScratch, gcRuntime, openContainer } from '../../src/runtime/index.js';
import type { Container, ContainerOptions, ExecRequest } from '../../src/runtime/types.js';
import { requireContainerHost } from '../helpers/host.js';
import { testImage } from '../helpers/images.js';

requireContainerHost();
const stateDir = inject('stateDir');
const work = mkdtempSync(join('/var/tmp', 'nsm-runtime-test-'));
const outputDir = join(work, 'out');
const sourceDir = join(work, 'src');
let imageRoot: string;
let scratch: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  imageRoot = (await testImage()).root;
  scratch = await createRunScratch(stateDir);
  mkdirSync(join(sourceDir, 'sub'), { recursive: true });
  writeFileSync(join(sourceDir, 'README'), 'original\n');
  writeFileSync(join(sourceDir, 'sub', 'data.bin'), Buffer.from([0, 1, 2, 255]));
  writeFileSync(join(sourceDir, 'script.sh'), '#!/bin/sh\necho from source\n', { mode: 0o755 });
});

afterAll(async () => {
  await scratch?.remove();
  rmSync(work, { recursive: true, force: true });
});

let cellCounter = 0;
function options(over: Partial<ContainerOptions> = {}): ContainerOptions {
  const cellId = over.cellId ?? `cell-${++cellCounter}`;
  return {
    cellId,
    root: imageRoot,
    cellOutputDir: join(outputDir, cellId),
    scratchDir: scratch.dir,
    sourceDir,
    sourceMode: 'overlay',
    network: 'host',
    privateUsers: false,
    boot: false,
    binds: [],
    nspawnExtra: [],
    env: {},
    ...over,
  };
}

function step(container: Container, index: number, script: string, over: Partial<ExecRequest> = {}) {
  return container.exec({
    index,
    name: `s${index}`,
    script,
    env: {},
    timeoutMs: 60_000,
    logPath: join(outputDir, container.machine, `${String(index + 1).padStart(2, '0')}-s${index}.log`),
    ...over,
  });
}

/** Path, type, mode, content (or link target) of every entry: equal hashes mean byte-for-byte equal trees. */
function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = join(dir, rel, name);
      const st = lstatSync(path);
      hash.update(`${join(rel, name)}\0${st.mode}\0${st.mtimeMs}\0`);
      if (st.isDirectory()) walk(join(rel, name));
      else if (st.isSymbolicLink()) hash.update(readlinkSync(path));
      else hash.update(readFileSync(path));
    }
  };
  walk('');
  return hash.digest('hex');
}

function processesMatching(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(marker) && !line.includes('ps -eo'));
}

function mountsMentioning(text: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(text));
}

const CGROUP_ROOTS = ['/sys/fs/cgroup/unified/nsmatrix', '/sys/fs/cgroup/systemd/nsmatrix', '/sys/fs/cgroup/nsmatrix'];

/** Holds no process, or one of this test process's children: a cgroup other nsmatrix users of the host hold is theirs. */
function cgroupMaybeOurs(cgroup: string): boolean {
  try {
    return readFileSync(join(cgroup, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .every((pid) => {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(process.pid); // "pid (comm) state ppid ..."
      });
  } catch {
    return false; // gone meanwhile
  }
}

/** What opening a container may create on the host: scratch entries, mounts, cgroups, cleanup entries, cell output. */
function hostState(cellOutputDir: string) {
  return {
    scratch: readdirSync(scratch.dir).sort(),
    mounts: mountsMentioning(scratch.dir).concat(mountsMentioning(work)),
    cgroups: CGROUP_ROOTS.flatMap((root) => (existsSync(root) ? readdirSync(root).map((name) => join(root, name)) : [])).sort(),
    resources: resources.labels(),
    cellOutput: existsSync(cellOutputDir),
  };
}

describe('exec mode', () => {
  it('records exit statuses exactly: 0, 1, 7, 77 and death by a signal', async () => {
    const c = await openContainer(options());
    try {
      expect(c.strategy).toBe('overlay');
      expect(await step(c, 0, 'echo ok')).toMatchObject({ exitCode: 0, signal: null, timedOut: false, tail: ['ok'] });
      expect(await step(c, 1, 'false')).toMatchObject({ exitCode: 1, signal: null });
      expect(await step(c, 2, 'exit 7')).toMatchObject({ exitCode: 7, signal: null });
      expect(await step(c, 3, 'echo skipping; exit 77')).toMatchObject({ exitCode: 77, signal: null });
      const killed = await step(c, 4, 'kill -9 $$');
      expect(killed).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
      expect(killed.infrastructureError).toBeUndefined();
      // A step may exit 137 without any signal: the two must not be confused.
      expect(await step(c, 5, 'exit 137')).toMatchObject({ exitCode: 137, signal: null });
    } finally {
      await c.close();
    }
  });

  it('streams timestamped stdout and stderr to the log, calls onOutput and sets the environment', async () => {
    const c = await openContainer(options({ cellId: 'env-cell', env: { MATRIX_CC: 'gcc', SPACED: 'a b  c' } }));
    const chunks: string[] = [];
    try {
      const logPath = join(outputDir, 'env-cell', '01-env.log');
      const r = await step(c, 0, 'echo "$CI $NSMATRIX_CELL $MATRIX_CC [$SPACED] $STEP_VAR $(pwd)"; echo oops >&2', {
        env: { STEP_VAR: 'x' },
        logPath,
        onOutput: (stream, chunk) => chunks.push(`${stream}:${chunk.toString()}`),
      });
      expect(r.exitCode).toBe(0);
      const log = readFileSync(logPath, 'utf8');
      expect(log).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z out\| true env-cell gcc \[a b {2}c\] x \/src$/m);
      expect(log).toMatch(/^\S+Z err\| oops$/m);
      expect(log).not.toContain('Attempted to remove');
      expect(chunks.join('')).toContain('stdout:true env-cell');
      expect(chunks.join('')).toContain('stderr:oops');
    } finally {
      await c.close();
    }
  });

  it('keeps files between the steps of a cell but not between cells', async () => {
    const a = await openContainer(options());
    try {
      expect((await step(a, 0, 'echo kept > /etc/nsm-marker; mkdir -p /opt/x && touch /opt/x/y')).exitCode).toBe(0);
      expect(await step(a, 1, 'cat /etc/nsm-marker && test -f /opt/x/y')).toMatchObject({ exitCode: 0, tail: ['kept'] });
    } finally {
      await a.close();
    }
    const b = await openContainer(options());
    try {
      expect((await step(b, 0, 'test ! -e /etc/nsm-marker && test ! -e /opt/x')).exitCode).toBe(0);
    } finally {
      await b.close();
    }
    expect(existsSync(join(imageRoot, 'etc', 'nsm-marker'))).toBe(false);
  });

  it('gives each cell a writable /src overlay and leaves the host tree byte-for-byte untouched', async () => {
    const before = treeHash(sourceDir);
    const c = await openContainer(options());
    try {
      const edit = './script.sh; echo changed > README; rm sub/data.bin; chmod 600 script.sh; mkdir new; echo n > new/file';
      expect(await step(c, 0, edit)).toMatchObject({ exitCode: 0, tail: ['from source'] });
      expect(await step(c, 1, 'cat README; test ! -e sub/data.bin; cat new/file')).toMatchObject({ exitCode: 0, tail: ['changed', 'n'] });
    } finally {
      await c.close();
    }
    expect(treeHash(sourceDir)).toBe(before);
  });

  it('mounts the source read-only on request', async () => {
    const c = await openContainer(options({ sourceMode: 'ro' }));
    try {
      const r = await step(c, 0, 'cat README; touch newfile');
      expect(r.exitCode).not.toBe(0);
      expect(r.tail.join('\n')).toMatch(/Read-only file system/);
    } finally {
      await c.close();
    }
    expect(existsSync(join(sourceDir, 'newfile'))).toBe(false);
  });

  it('delivers /artifacts to the host and honours extra binds', async () => {
    const shared = join(work, 'shared');
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, 'in.txt'), 'input\n');
    const c = await openContainer(options({ cellId: 'art-cell', binds: [{ host: shared, container: '/data', readOnly: true }] }));
    try {
      const r = await step(c, 0, 'cat /data/in.txt; echo result > /artifacts/out.txt; touch /data/nope');
      expect(r.tail[0]).toBe('input');
      expect(r.exitCode).not.toBe(0); // the bind is read-only
    } finally {
      await c.close();
    }
    expect(readFileSync(join(outputDir, 'art-cell', 'artifacts', 'out.txt'), 'utf8')).toBe('result\n');
  });

  it('refuses hostile binds before anything is created', async () => {
    const opts = options({ binds: [{ host: '/', container: '/host', readOnly: false }], stateDir, outputDir });
    const before = hostState(opts.cellOutputDir);
    expect(before.cellOutput).toBe(false);
    await expect(openContainer(opts)).rejects.toThrow(UsageError);
    await expect(openContainer({ ...opts, binds: [{ host: stateDir, container: '/s', readOnly: true }] })).rejects.toThrow(/state directory/);
    await expect(openContainer({ ...opts, binds: [{ host: work, container: '/w', readOnly: true }] })).rejects.toThrow(/output directory/);
    const after = hostState(opts.cellOutputDir);
    // Cgroups: only new ones count, and not those other nsmatrix users of the host hold meanwhile.
    expect(after.cgroups.filter((cg) => !before.cgroups.includes(cg) && cgroupMaybeOurs(cg))).toEqual([]);
    expect({ ...after, cgroups: [] }).toEqual({ ...before, cgroups: [] });
  });

  it('has no route out with a private network, and one with the host network', async () => {
    const routes = 'tail -n +2 /proc/net/route | wc -l';
    const priv = await openContainer(options({ network: 'private' }));
    try {
      expect(await step(priv, 0, routes)).toMatchObject({ exitCode: 0, tail: ['0'] });
      expect(await step(priv, 1, 'cat /sys/class/net/*/address >/dev/null; ls /sys/class/net')).toMatchObject({ tail: ['lo'] });
    } finally {
      await priv.close();
    }
    const hostNet = await openContainer(options({ network: 'host' }));
    try {
      const r = await step(hostNet, 0, routes);
      expect(Number(r.tail[0])).toBeGreaterThan(0);
    } finally {
      await hostNet.close();
    }
  });

  it('maps private-users cells to an unprivileged UID range on their own copy of the image', async () => {
    const c = await openContainer(options({ privateUsers: true }));
    try {
      // nspawn refuses --private-users with an overlay over "/", so such cells get a copy.
      expect(c.strategy).toBe('copy');
      const r = await step(c, 0, "id -u; awk '{print $2}' /proc/self/uid_map; touch /etc/kept; cat /src/README");
      expect(r.exitCode).toBe(0);
      expect(r.tail[0]).toBe('0');
      expect(Number(r.tail[1])).toBeGreaterThan(0);
      expect((await step(c, 1, 'test -f /etc/kept')).exitCode).toBe(0);
    } finally {
      await c.close();
    }
    expect(existsSync(join(scratch.dir, c.machine))).toBe(false);
  });

  it('supports the volatile strategy on request (a fresh tmpfs layer for every step)', async () => {
    const c = await openContainer(options({ strategy: 'volatile' }));
    try {
      expect(c.strategy).toBe('volatile');
      expect((await step(c, 0, 'touch /etc/gone && test -f /etc/gone')).exitCode).toBe(0);
      expect((await step(c, 1, 'test ! -e /etc/gone')).exitCode).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('reports a container that cannot start as an infrastructure error, not a step failure', async () => {
    const missing = join(work, 'no-such-root');
    mkdirSync(missing);
    const c = await openContainer(options({ root: missing }));
    try {
      const r = await step(c, 0, 'true');
      expect(r.exitCode).toBeNull();
      expect(r.infrastructureError).toMatch(/systemd-nspawn exited with status \d+ before the step ran/);
    } finally {
      await c.close();
    }
  });
});

describe('stopping containers', () => {
  it('stops a step at its timeout, even one that ignores SIGTERM, and leaves no process', async () => {
    const c = await openContainer(options());
    try {
      const slow = await step(c, 0, 'sleep 6001', { timeoutMs: 2000 });
      expect(slow).toMatchObject({ timedOut: true, exitCode: null });
      expect(slow.durationMs).toBeGreaterThanOrEqual(2000);
      expect(slow.durationMs).toBeLessThan(9000);
      const stubborn = await step(c, 1, "trap '' TERM; sleep 6002 & wait; sleep 6002", { timeoutMs: 2000 });
      expect(stubborn.timedOut).toBe(true);
      expect(stubborn.durationMs).toBeLessThan(9000);
      expect(readFileSync(join(outputDir, c.machine, '02-s1.log'), 'utf8')).toMatch(/\[nsmatrix\] timed out after 2000 ms/);
      // The container is usable again after a timeout (exec mode: a new nspawn per step).
      expect((await step(c, 2, 'true')).exitCode).toBe(0);
    } finally {
      await c.close();
    }
    expect(processesMatching('sleep 600')).toEqual([]);
  });

  it('kills what a step left running in the background', async () => {
    const c = await openContainer(options());
    try {
      expect((await step(c, 0, '(setsid sleep 6003 &) ; nohup sleep 6004 >/dev/null 2>&1 & echo started')).exitCode).toBe(0);
    } finally {
      await c.close();
    }
    expect(processesMatching('sleep 600')).toEqual([]);
  });

  it('leaves no payload process when systemd-nspawn itself is SIGKILLed', async () => {
    const c = await openContainer(options());
    try {
      const running = step(c, 0, 'sleep 6005 & sleep 6006');
      let nspawnPid: number | undefined;
      for (let i = 0; i < 100 && nspawnPid === undefined; i++) {
        await new Promise((r) => setTimeout(r, 50));
        if (processesMatching('sleep 6006').length === 0) continue;
        const line = processesMatching(`--machine=${c.machine}`).find((l) => /systemd-nspawn/.test(l));
        nspawnPid = line ? Number(line.trim().split(/\s+/)[0]) : undefined;
      }
      expect(nspawnPid).toBeGreaterThan(0);
      process.kill(nspawnPid!, 'SIGKILL');
      const r = await running;
      expect(r.exitCode).toBeNull();
      expect(r.infrastructureError).toMatch(/killed by SIGKILL/);
      expect(processesMatching('sleep 600')).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it('on abort stops the step and close() leaves no mount, process, cgroup or scratch directory', async () => {
    const c = await openContainer(options());
    const controller = new AbortController();
    const running = step(c, 0, 'sleep 6007', { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 1500));
    controller.abort();
    const r = await running;
    expect(r).toMatchObject({ aborted: true, timedOut: false, exitCode: null });
    expect(r.infrastructureError).toBeUndefined();
    await c.close();
    await c.close(); // idempotent
    expect(mountsMentioning(c.machine)).toEqual([]);
    expect(mountsMentioning(scratch.dir)).toEqual([]);
    expect(processesMatching('sleep 6007')).toEqual([]);
    expect(existsSync(join(scratch.dir, c.machine))).toBe(false);
    expect(existsSync(`/sys/fs/cgroup/unified/nsmatrix/${c.machine}`)).toBe(false);
    expect(existsSync(`/sys/fs/cgroup/systemd/nsmatrix/${c.machine}`)).toBe(false);
    expect(resources.labels().filter((l) => l.includes(c.machine))).toEqual([]);
  });
});

/** The pids in a cgroup and every cgroup below it (nspawn puts the container's payload in one of its own). */
function processesIn(cgroup: string): string[] {
  const own = readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  const below = readdirSync(cgroup, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...own, ...below.flatMap((e) => processesIn(join(cgroup, e.name)))];
}

describe('armed steps', () => {
  const request = (c: Container, script: string): ExecRequest => ({
    index: 0,
    name: 's0',
    script,
    env: {},
    timeoutMs: 60_000,
    logPath: join(outputDir, c.machine, '01-s0.log'),
  });

  it('an armed step sets its container up and waits inside it; run() lets the step start as exec() would', async () => {
    const opts = options();
    const c = await openContainer(opts);
    const commandOf = (pid: string) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    try {
      // A timeout shorter than the wait before run(): the step's clock starts at run(), not at arm().
      const armed = await c.arm!({ ...request(c, 'echo ran > /artifacts/ran; echo out; exit 3'), timeoutMs: 2_000 });
      await new Promise((r) => setTimeout(r, 3_000));
      // systemd-nspawn runs, and so does the container's payload: the step wrapper, waiting for the gate word.
      const commands = processesIn(`/sys/fs/cgroup/unified/nsmatrix/${c.machine}`).map(commandOf);
      expect(commands.map((argv) => argv[0])).toContain('/usr/bin/systemd-nspawn');
      expect(commands.some((argv) => argv[0] === '/usr/bin/perl' && argv.at(-2) === 'gated')).toBe(true);
      expect(existsSync(join(opts.cellOutputDir, 'artifacts', 'ran'))).toBe(false);
      const r = await armed.run();
      expect(readFileSync(join(opts.cellOutputDir, 'artifacts', 'ran'), 'utf8')).toBe('ran\n');
      expect(r).toMatchObject({ exitCode: 3, signal: null, timedOut: false });
      expect(r.durationMs).toBeLessThan(2_000);
      expect(r.tail).toContain('out');
      expect(readFileSync(join(outputDir, c.machine, '01-s0.log'), 'utf8')).toMatch(/out/);
    } finally {
      await c.close();
    }
  });

  it('an armed container that fails while it is set up, before its turn, is an infrastructure error at run()', async () => {
    const missing = join(work, 'no-such-root-armed');
    mkdirSync(missing);
    const c = await openContainer(options({ root: missing }));
    try {
      const armed = await c.arm!(request(c, 'true'));
      // nspawn has long given up by now: run() finds it gone, writes no word, and reports it as before.
      await new Promise((r) => setTimeout(r, 1_000));
      const r = await armed.run();
      expect(r.exitCode).toBeNull();
      expect(r.timedOut).toBe(false);
      expect(r.infrastructureError).toMatch(/systemd-nspawn exited with status \d+ before the step ran/);
    } finally {
      await c.close();
    }
  });

  it('close() discards a step armed and never run: nothing ran, no process, cgroup or log is left', async () => {
    const opts = options();
    const c = await openContainer(opts);
    await c.arm!(request(c, 'touch /artifacts/must-not-exist'));
    const armedLog = join(outputDir, c.machine, '01-s0.log');
    expect(existsSync(armedLog)).toBe(true);
    // Its container is set up (or being set up) by now: close() must stop it without the step starting.
    await new Promise((r) => setTimeout(r, 1_000));
    await c.close();
    expect(existsSync(join(opts.cellOutputDir, 'artifacts', 'must-not-exist'))).toBe(false);
    expect(existsSync(armedLog)).toBe(false);
    expect(processesMatching(c.machine)).toEqual([]);
    expect(existsSync(`/sys/fs/cgroup/unified/nsmatrix/${c.machine}`)).toBe(false);
    expect(existsSync(`/sys/fs/cgroup/systemd/nsmatrix/${c.machine}`)).toBe(false);
    expect(existsSync(join(scratch.dir, c.machine))).toBe(false);
    expect(resources.labels().filter((l) => l.includes(c.machine))).toEqual([]);
    await expect(c.arm!(request(c, 'true'))).rejects.toThrow(/closed/);
  });
});

describe('gcRuntime', () => {
  it('stops the containers of a run that was killed before removing its scratch', async () => {
    const dead = join(stateDir, 'run', '999999998-cafebabe');
    const machine = 'nsm-gcdead0000-1';
    mkdirSync(join(dead, machine, 'root-upper'), { recursive: true });
    writeFileSync(join(dead, 'owner.pid'), '999999998\n');
    const cgroups = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].map((h) => join(h, 'nsmatrix', machine));
    for (const cg of cgroups) mkdirSync(cg, { recursive: true });
    const procs = cgroups.map((cg) => join(cg, 'cgroup.procs')).join(' ');
    const orphan = spawn('sh', ['-c', `for f in ${procs}; do echo $$ > $f; done; exec sleep 6201`], { detached: true, stdio: 'ignore' });
    orphan.unref();
    for (let i = 0; i < 50 && processesMatching('sleep 6201').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesMatching('sleep 6201')).toHaveLength(1);
    const removed = await gcRuntime(stateDir);
    expect(removed).toEqual(expect.arrayContaining([dead, ...cgroups]));
    expect(processesMatching('sleep 6201')).toEqual([]);
    for (const cg of cgroups) expect(existsSync(cg)).toBe(false);
    expect(existsSync(dead)).toBe(false);
  });

  it('removes scratch of dead runs and empty nsmatrix cgroups, and keeps live ones', async () => {
    const dead = join(stateDir, 'run', '999999999-deadbeef');
    mkdirSync(join(dead, 'nsm-x-1', 'root-upper'), { recursive: true });
    writeFileSync(join(dead, 'owner.pid'), '999999999\n');
    const cgroup = '/sys/fs/cgroup/unified/nsmatrix/nsm-gc-test-1';
    mkdirSync(join(cgroup, 'payload'), { recursive: true });
    // A fresh empty cgroup may belong to a run about to start its container: kept by default.
    const first = await gcRuntime(stateDir);
    expect(first).toContain(dead);
    expect(first).not.toContain(cgroup);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(cgroup)).toBe(true);
    expect(await gcRuntime(stateDir, undefined, { cgroupMinAgeMs: 0 })).toContain(cgroup);
    expect(existsSync(cgroup)).toBe(false);
    expect(existsSync(scratch.dir)).toBe(true);
  });
});

describe('destroyCgroupDir', () => {
  it('waits for processes that take seconds to die after the kill, instead of failing after one', async () => {
    // A cgroup stays busy (rmdir: EBUSY) until its killed processes have exited, which on a loaded host outlasted
    // the second of retries this used to allow (CI, during the emulated builds). Made repeatable with the v1
    // freezer: a frozen process cannot act on its SIGKILL until it is thawed, here after 6.5 s.
    const cgroup = '/sys/fs/cgroup/unified/nsmatrix/nsm-frozen0000-1';
    const freezer = '/sys/fs/cgroup/freezer/nsm-test-frozen';
    for (const dir of [cgroup, freezer]) mkdirSync(dir, { recursive: true });
    const join2 = [cgroup, freezer].map((dir) => `echo $$ > ${join(dir, 'cgroup.procs')}`).join('; ');
    const child = spawn('sh', ['-c', `${join2}; exec sleep 6401`], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let thaw: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 50 && processesMatching('sleep 6401').length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      writeFileSync(join(freezer, 'freezer.state'), 'FROZEN');
      for (let i = 0; i < 50 && readFileSync(join(freezer, 'freezer.state'), 'utf8').trim() !== 'FROZEN'; i++) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(join(freezer, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
      thaw = setTimeout(() => writeFileSync(join(freezer, 'freezer.state'), 'THAWED'), 6_500);
      await destroyCgroupDir(cgroup);
      expect(existsSync(cgroup)).toBe(false);
      await exited;
      expect(processesMatching('sleep 6401')).toEqual([]);
    } finally {
      clearTimeout(thaw);
      writeFileSync(join(freezer, 'freezer.state'), 'THAWED');
      child.kill('SIGKILL');
      await exited;
      for (const dir of [cgroup, freezer]) if (existsSync(dir)) rmdirSync(dir);
    }
  }, 30_000);
});

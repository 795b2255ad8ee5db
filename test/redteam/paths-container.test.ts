/**
 * Red team, paths, with real containers: a step that leaves setuid-root shells in its root and /tmp (overlay upper
 * directories under `<state>/run`) must not hand them to unprivileged host users, even when the state directory
 * and its run/ existed with mode 0755; a `source: rw` step must not reach the output directory through /src.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { hostArch } from '../../src/lib/arch.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { project, sleep, start } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-paths-ct-');
  chmodSync(work, 0o755); // the unprivileged user must be stopped by the state directory, not by this test's dir
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs argv as uid/gid 65534 (nobody) with no supplementary groups. */
function asNobody(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const mode = (path: string) => statSync(path).mode & 0o7777;

/** The root filesystem of a cached debian:bookworm base image (built once if this state directory has none). */
function cachedRootfs(): string {
  const find = () => {
    const images = join(stateDir, 'images');
    for (const key of existsSync(images) ? readdirSync(images) : []) {
      const manifest = join(images, key, 'manifest.json');
      if (!existsSync(manifest)) continue;
      const m = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; layer: string; root: string; keyInputs?: { arch?: string } };
      // The host's own architecture: a foreign base (the arch tests build arm64 and i386 ones) would need emulation.
      const native = (m.keyInputs?.arch ?? hostArch()) === hostArch();
      if (m.name === 'debian:bookworm' && m.layer === 'base' && native && existsSync(m.root)) return m.root;
    }
    return undefined;
  };
  let root = find();
  if (!root) {
    const r = runCli(['images', 'build', 'debian:bookworm', '--state-dir', stateDir]);
    expect(r.code, r.stderr).toBe(0);
    root = find();
  }
  return root!;
}

describe('the state directory is private', () => {
  it('a 0755 state dir and run dir are tightened before the first container: nobody cannot reach the setuid shells a step leaves', async () => {
    // Its own state directory, made world-readable like an older nsmatrix (or a user) left it. The image is the
    // shared cache's rootfs used in place (`path:`), so nothing is built here.
    const state = join(work, 'state');
    mkdirSync(join(state, 'run'), { recursive: true });
    chmodSync(state, 0o755);
    chmodSync(join(state, 'run'), 0o755);
    const file = project(
      join(work, 'suid'),
      [
        'matrix:',
        '  image: [local]',
        'images:',
        `  local: { path: ${JSON.stringify(cachedRootfs())} }`,
        'timeout: 2m',
        'steps:',
        '  - name: leave setuid shells',
        '    run: |',
        '      cp /bin/sh /rootsh && chmod 4755 /rootsh',
        '      cp /bin/sh /tmp/suidsh && chmod 4755 /tmp/suidsh',
        '      touch /artifacts/ready',
        '      for i in $(seq 1 600); do [ -e /artifacts/go ] && exit 0; sleep 0.1; done',
        '      exit 1',
      ].join('\n'),
    );
    const out = join(work, 'suid-out');
    const [cell] = JSON.parse(runCli(['list', file, '--format', 'json']).stdout) as { id: string }[];
    const artifacts = join(out, cell!.id, 'artifacts');
    const run = start(['run', file, '--state-dir', state, '-o', out, '--plain']);
    try {
      for (let i = 0; i < 600 && !existsSync(join(artifacts, 'ready')); i++) {
        if (run.child.exitCode !== null) break;
        await sleep(100);
      }
      expect(existsSync(join(artifacts, 'ready')), 'the step never got going').toBe(true);

      // During the run: the setuid shells exist (as root sees them) in the cell's upper directories...
      const found = spawnSync('find', [state, '-perm', '-4000', '(', '-name', 'rootsh', '-o', '-name', 'suidsh', ')'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
      expect(found.length, 'setuid shells in the scratch').toBeGreaterThanOrEqual(2);
      // ...and nobody can neither see nor run them, nor look into the state directory (only the directory itself,
      // in its 0755 parent, can be stat()ed).
      for (const shell of found) {
        // Through a shell running as nobody: setpriv itself resolves its command's path before its own
        // capabilities are gone, so `setpriv ... /path` would not tell what nobody can reach.
        const exec = asNobody(['/bin/sh', '-c', 'exec "$0" -c "id -u"', shell]);
        expect(exec.status, `nobody ran ${shell}: ${exec.stdout}`).not.toBe(0);
        expect(exec.stdout).not.toMatch(/^0$/m);
      }
      for (const path of [join(state, 'run'), join(state, 'images'), ...found]) {
        const stat = asNobody(['stat', path]);
        expect(stat.status, `nobody could stat ${path}`).not.toBe(0);
      }
      expect(asNobody(['ls', state]).status).not.toBe(0);
      expect(mode(state)).toBe(0o700);
      expect(mode(join(state, 'run'))).toBe(0o700);
    } finally {
      // Let the step finish (also when an assertion failed), so no container outlives the test.
      mkdirSync(artifacts, { recursive: true });
      writeFileSync(join(artifacts, 'go'), '');
      const timer = setTimeout(() => run.child.kill('SIGINT'), 60_000);
      await run.done;
      clearTimeout(timer);
    }
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // After the run: still private, every directory nsmatrix keeps there.
    for (const sub of ['', 'run', 'images', 'tmp', 'locks', 'logs']) expect(mode(join(state, sub)), sub).toBe(0o700);
    expect(asNobody(['stat', join(state, 'run')]).status).not.toBe(0);
    const doctor = runCli(['doctor', '--state-dir', state]);
    expect(doctor.stdout).toMatch(/ok\s+state dir modes/);
  });
});

describe('source: rw', () => {
  it('a step cannot rewrite the output directory through /src: a matrix directory containing it is refused, nothing runs', () => {
    const dir = join(work, 'rw-escape');
    const file = project(
      dir,
      [
        'matrix:',
        '  image: [debian:bookworm]',
        'source: rw',
        'steps:',
        '  - name: rewrite the results',
        '    run: |',
        '      touch /src/escaped',
        '      mkdir -p /src/results',
        '      echo forged > /src/results/forged.json',
        '      rm -rf /src/results/*',
      ].join('\n'),
      { 'keep.txt': 'kept\n' },
    );
    const out = join(dir, 'results');
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/nsmatrix\.yaml:3:\d+: source: rw: the source directory .*: refusing to expose the output directory/);
    expect(readdirSync(dir).sort()).toEqual(['keep.txt', 'nsmatrix.yaml']);
    expect(existsSync(out)).toBe(false);
  });
});

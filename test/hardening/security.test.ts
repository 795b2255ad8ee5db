/**
 * Security checks with real containers: dangerous binds refused; the source tree writable from a container only with
 * `source: rw`; `network: private` has no route out while `network: host` reaches the mirror.
 */
import { lookup } from 'node:dns/promises';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { runCli } from '../helpers/cli.js';
import { damage, project } from './harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-hard-sec-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;

describe('binds', () => {
  it('refuses /, the state dir (and what contains it), the output dir and its parents, also through a symlink', () => {
    const out = join(work, 'deep', 'results');
    mkdirSync(out, { recursive: true });
    const link = join(work, 'link-to-root');
    symlinkSync('/', link);
    const refused: [string, RegExp][] = [
      ['/', /host's root directory/],
      [link, /host's root directory/],
      [stateDir, /state directory/],
      [dirname(stateDir), /state directory/],
      [out, /output directory/],
      [dirname(out), /output directory/],
      [work, /output directory/],
    ];
    for (const [host, reason] of refused) {
      const file = project(join(work, 'bind'), `matrix:\n  image: [debian:bookworm]\nbind: [${JSON.stringify(`${host}:/mnt/x`)}]\nsteps:\n  - name: s\n    run: "true"\n`);
      const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
      expect(r.code, `${host}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), host).toHaveLength(1);
      expect(r.stderr, host).toMatch(reason);
      expect(existsSync(join(out, 'results.json')), host).toBe(false); // refused before anything ran
    }
    // A harmless bind still works (the check is not simply "no binds").
    const data = join(work, 'data');
    mkdirSync(data);
    const ok = project(join(work, 'bind-ok'), `matrix:\n  image: [debian:bookworm]\nbind: [${JSON.stringify(`${data}:/data:ro`)}]\nsteps:\n  - name: s\n    run: test -d /data && ! touch /data/x\n`);
    const r = runCli(['run', ok, '--state-dir', stateDir, '-o', out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readdirSync(data)).toEqual([]);
  });
});

describe('the source directory', () => {
  for (const mode of ['overlay', 'ro', 'rw'] as const) {
    it(`source: ${mode} ${mode === 'rw' ? 'is' : 'is never'} writable on the host`, () => {
      const dir = join(work, `src-${mode}`);
      const file = project(
        dir,
        [
          'matrix:\n  image: [debian:bookworm]',
          `source: ${mode}`,
          'steps:',
          // Every way a step might write through /src: new file, overwrite, append, delete, chmod, rename.
          '  - name: write through /src',
          '    run: |',
          '      set +e',
          '      echo new > /src/created',
          '      echo changed > /src/existing.txt',
          '      echo appended >> /src/keep.txt',
          '      rm -f /src/delete-me',
          '      chmod 777 /src/keep.txt',
          '      mv /src/rename-me /src/renamed',
          '      mkdir /src/newdir',
          '      true',
        ].join('\n'),
        { 'existing.txt': 'original\n', 'keep.txt': 'keep\n', 'delete-me': 'x\n', 'rename-me': 'y\n' },
      );
      const out = join(work, `src-out-${mode}`);
      const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const names = readdirSync(dir).sort();
      if (mode === 'rw') {
        expect(readFileSync(join(dir, 'created'), 'utf8')).toBe('new\n');
        expect(readFileSync(join(dir, 'existing.txt'), 'utf8')).toBe('changed\n');
        expect(names).not.toContain('delete-me');
      } else {
        expect(names).toEqual(['delete-me', 'existing.txt', 'keep.txt', 'nsmatrix.yaml', 'rename-me']);
        expect(readFileSync(join(dir, 'existing.txt'), 'utf8')).toBe('original\n');
        expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('keep\n');
      }
      expect(damage(stateDir, out, 'nsm-hard-src')).toEqual([]);
    });
  }

  it('source: ro refuses writes inside the container too (the step sees a read-only /src)', () => {
    const file = project(join(work, 'src-ro-fail'), 'matrix:\n  image: [debian:bookworm]\nsource: ro\nsteps:\n  - name: write\n    run: echo x > /src/x\n');
    const out = join(work, 'src-ro-fail-out');
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
    expect(r.code).toBe(1);
    const step = results(out).cells[0]!.steps[0]!;
    expect(step.outcome).toBe('failed');
    expect(readFileSync(join(out, step.attempts[0]!.logPath), 'utf8')).toMatch(/Read-only file system/);
  });
});

/** The first mirror host in the host's apt sources (deb822 .sources, or a one-line sources.list). */
function mirrorHost(): string {
  const dir = '/etc/apt/sources.list.d';
  const texts = [
    ...(existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.sources') || f.endsWith('.list')).map((f) => readFileSync(join(dir, f), 'utf8')) : []),
    existsSync('/etc/apt/sources.list') ? readFileSync('/etc/apt/sources.list', 'utf8') : '',
  ];
  for (const text of texts) {
    const match = /(?:^URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(https?):\/\/([^/\s:]+)/m.exec(text);
    if (match) return match[2]!;
  }
  throw new Error('no http(s) mirror in the host apt sources: the network test needs one');
}

describe('network', () => {
  it('network: private has no route out (by name or by address); network: host reaches the mirror', async () => {
    const host = mirrorHost();
    const { address } = await lookup(host, { family: 4 });
    // One HTTP HEAD through bash's /dev/tcp (minbase has no curl), to the name and to the address resolved on the host.
    const head = (target: string) =>
      `if timeout 10 bash -c 'exec 3<>/dev/tcp/${target}/80 && printf "HEAD / HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n" >&3 && head -1 <&3'; then echo REACHED; else echo UNREACHABLE; fi`;
    for (const network of ['private', 'host'] as const) {
      const file = project(
        join(work, `net-${network}`),
        [
          'matrix:\n  image: [debian:bookworm]',
          `network: ${network}`,
          'fail-fast: false',
          'steps:',
          '  - name: by name',
          `    run: ${JSON.stringify(head(host))}`,
          '  - name: by address',
          `    run: ${JSON.stringify(head(address))}`,
          '  - name: interfaces',
          '    run: cat /proc/net/dev',
        ].join('\n'),
      );
      const out = join(work, `net-out-${network}`);
      const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
      const steps = results(out).cells[0]!.steps;
      const log = (i: number) => readFileSync(join(out, steps[i]!.attempts[0]!.logPath), 'utf8');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      if (network === 'host') {
        for (const i of [0, 1]) expect(log(i)).toMatch(/HTTP\/1\.[01] \d{3}[\s\S]*REACHED/);
      } else {
        for (const i of [0, 1]) expect(log(i)).toMatch(/UNREACHABLE/);
        expect(log(0) + log(1)).not.toMatch(/HTTP\/1\.[01] \d{3}/);
        // Only the loopback interface exists.
        const interfaces = log(2)
          .split('\n')
          .map((l) => /\| \s*([^:\s]+):/.exec(l)?.[1])
          .filter(Boolean);
        expect(interfaces).toEqual(['lo']);
      }
    }
  });
});

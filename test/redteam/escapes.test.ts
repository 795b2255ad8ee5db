/**
 * Red team: hostile steps in real containers try to make nsmatrix's host-root process act for them. Each test
 * asserts on the host that the escape failed. Exec and boot mode, with and without private users.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { systemdIsPid1 } from '../../src/lib/host.js';
import { runCli } from '../helpers/cli.js';
import { requireContainerHost } from '../helpers/host.js';
import { damage, project } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-redteam-escapes-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const results = (out: string) => JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;

function matrix(lines: string[]): string {
  return ['matrix:', '  image: [debian:bookworm]', 'fail-fast: false', 'timeout: 2m', ...lines].join('\n') + '\n';
}

/** A YAML block scalar for a `run:` script. */
const block = (script: string) => `|\n${script.trim().split('\n').map((l) => `      ${l}`).join('\n')}`;

function runMatrix(name: string, text: string, files: Record<string, string> = {}) {
  const dir = join(work, name);
  const file = project(dir, text, files);
  const out = join(work, `${name}-out`);
  const r = runCli(['run', file, '--state-dir', stateDir, '-o', out]);
  return { r, out, dir, result: existsSync(join(out, 'results.json')) ? results(out) : undefined };
}

/** Every file below `dir`, not following symlinks, relative to it. */
function walk(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    found.push(path);
    if (entry.isDirectory()) found.push(...walk(path));
  }
  return found;
}

/** Without systemd as the host's PID 1 nothing delegates a cgroup to a private-users container's systemd: refused up front. */
function expectBootPrivateUsersRefused(r: { code: number | null; stdout: string; stderr: string }, result: RunResult | undefined) {
  expect(r.code, r.stdout + r.stderr).toBe(3);
  const cell = result!.cells[0]!;
  expect(cell.outcome).toBe('error');
  expect(cell.infrastructureError).toMatch(/private-users: true needs systemd as the host's PID 1/);
  expect(cell.steps.every((s) => s.attempts.length === 0)).toBe(true);
}

const modes = [
  { boot: false, privateUsers: false },
  { boot: false, privateUsers: true },
  { boot: true, privateUsers: false },
  { boot: true, privateUsers: true },
];
const label = (m: { boot: boolean; privateUsers: boolean }) => `${m.boot ? 'boot' : 'exec'} mode${m.privateUsers ? ', private users' : ''}`;

describe('the control directory', () => {
  for (const mode of modes) {
    it(`host root never writes through a symlink a step planted (${label(mode)})`, () => {
      const sentinel = join(work, `sentinel-${mode.boot}-${mode.privateUsers}`);
      mkdirSync(sentinel, { recursive: true });
      // The step replaces every file of the control directory it can find, and every name a later step's script,
      // status or output file could have, by a symlink to a host directory. Host root writing through one would
      // create a file in `sentinel`.
      // It spares only its own files (named after its script, $0), which it needs to report its own status.
      const hostile = `
        me=$(basename "$0" .sh)
        cd /run/nsmatrix
        for f in *; do case "$f" in "$me".*) ;; *) rm -rf "$f"; ln -s "${sentinel}/$f" "$f" ;; esac; done
        for n in 01 02 03 04 05 06; do
          [ "step-$n" = "$me" ] && continue
          for e in sh status env out err journal; do rm -rf "step-$n.$e"; ln -s "${sentinel}/step-$n.$e" "step-$n.$e"; done
        done
        ls -la /run/nsmatrix | head -40
      `;
      const { r, out, result } = runMatrix(
        `control-${mode.boot}-${mode.privateUsers}`,
        matrix([
          `boot: ${mode.boot}`,
          `private-users: ${mode.privateUsers}`,
          'steps:',
          '  - name: plant symlinks',
          `    run: ${block(hostile)}`,
          '  - name: second step',
          '    run: echo second-step-ran',
          '  - name: third step fails on purpose',
          '    run: exit 3',
        ]),
      );
      expect(readdirSync(sentinel), `host root wrote through a planted symlink\n${r.stdout}${r.stderr}`).toEqual([]);
      if (mode.boot && mode.privateUsers && !systemdIsPid1()) {
        expectBootPrivateUsersRefused(r, result);
        return;
      }
      // The run goes on: the planted links change nothing for later steps.
      const steps = result!.cells[0]!.steps;
      expect(steps.map((s) => s.outcome), r.stdout + r.stderr).toEqual(['passed', 'passed', 'failed']);
      expect(steps[2]!.attempts[0]!.exitCode).toBe(3);
      expect(r.code).toBe(1);
      expect(damage(stateDir, out, 'nsm-redteam-escapes')).toEqual([]);
    });
  }
});

/** Capability masks as bigints, from /proc/<pid>/status text. */
function statusField(text: string, field: string): string | undefined {
  return new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(text)?.[1];
}

describe('boot mode', () => {
  for (const privateUsers of [false, true]) {
    it(`never runs a container binary with more privilege than the step has (${privateUsers ? 'private users' : 'host users'})`, () => {
      // Step 1 replaces the systemd tools a host might call inside the container with recorders that save their
      // own /proc/self/status into /artifacts, then run the real tool. Later steps and the end of the cell give
      // the host every chance to call them.
      const hostile = `
        grep -E '^(CapBnd|CapEff|Seccomp):' /proc/self/status > /artifacts/payload-status
        for b in systemd-cat systemd-run systemctl journalctl; do
          p=$(command -v $b) || continue
          mv "$p" "$p.real"
          printf '#!/bin/sh\\ncat /proc/self/status > /artifacts/record-%s-$$\\nexec %s.real "$@"\\n' "$b" "$p" > "$p"
          chmod 755 "$p"
        done
      `;
      const { r, out, result } = runMatrix(
        `boot-binaries-${privateUsers}`,
        matrix([
          'boot: true',
          `private-users: ${privateUsers}`,
          'steps:',
          '  - name: replace the systemd tools',
          `    run: ${block(hostile)}`,
          '  - name: later step',
          '    run: echo later',
        ]),
      );
      if (privateUsers && !systemdIsPid1()) {
        expectBootPrivateUsersRefused(r, result);
        return;
      }
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const artifacts = join(out, result!.cells[0]!.artifactsDir);
      const payload = readFileSync(join(artifacts, 'payload-status'), 'utf8');
      const payloadBounding = BigInt(`0x${statusField(payload, 'CapBnd')}`);
      const records = readdirSync(artifacts).filter((n) => n.startsWith('record-'));
      // The agent itself starts the later step with the container's own systemd-run: the recorders did run.
      expect(records.some((n) => n.startsWith('record-systemd-run-')), records.join(' ')).toBe(true);
      for (const name of records) {
        const text = readFileSync(join(artifacts, name), 'utf8');
        const effective = BigInt(`0x${statusField(text, 'CapEff')}`);
        expect(effective & ~payloadBounding, `${name} ran with capabilities the step lacks: CapEff ${statusField(text, 'CapEff')}`).toBe(0n);
        expect(statusField(text, 'Seccomp'), `${name} ran without the container's seccomp filter`).toBe(statusField(payload, 'Seccomp'));
      }
      expect(damage(stateDir, out, 'nsm-redteam-escapes')).toEqual([]);
    });
  }
});

describe('what comes out of a cell', () => {
  it('no setuid/setgid bit or file capability survives in --output or a rw source tree; links are not followed', () => {
    // A host file the step links to: the host must not strip (or otherwise touch) it through the link.
    const hostSetuid = join(work, 'host-setuid-file');
    writeFileSync(hostSetuid, '#!/bin/sh\n');
    chmodSync(hostSetuid, 0o4755);
    const plant = (dir: string) => `
      mkdir -p ${dir}
      cp /bin/sh ${dir}/suid-sh && chmod 4755 ${dir}/suid-sh
      mkdir -p ${dir}/deep/er && chmod 2775 ${dir}/deep && cp /bin/sh ${dir}/deep/er/sgid-sh && chmod 2755 ${dir}/deep/er/sgid-sh
      cp /bin/sh ${dir}/capped-sh && /usr/local/sbin/setcap cap_setuid+ep ${dir}/capped-sh
      ln -s ${hostSetuid} ${dir}/link-to-host
      ls -l ${dir}
    `;
    const { r, out, dir, result } = runMatrix(
      'setuid-out',
      matrix([
        'source: rw',
        'bind: ["/usr/sbin/setcap:/usr/local/sbin/setcap:ro"]',
        'steps:',
        '  - name: plant setuid files',
        `    run: ${block(`${plant('/artifacts')}\n${plant('/src/planted')}`)}`,
      ]),
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const artifacts = join(out, result!.cells[0]!.artifactsDir);
    const planted = join(dir, 'planted');
    for (const root of [artifacts, planted]) {
      const files = walk(root);
      expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(['suid-sh', 'deep/er/sgid-sh', 'capped-sh', 'link-to-host']));
      for (const file of files) {
        const st = lstatSync(file);
        if (st.isSymbolicLink()) continue;
        expect(st.mode & 0o6000, `${file} kept mode ${(st.mode & 0o7777).toString(8)}`).toBe(0);
        if (st.isFile()) expect(execFileSync('getcap', [file], { encoding: 'utf8' }).trim(), `${file} kept a file capability`).toBe('');
      }
    }
    expect(statSync(hostSetuid).mode & 0o7777).toBe(0o4755);
    expect(damage(stateDir, out, 'nsm-redteam-escapes')).toEqual([]);
  });
});

describe('the journal of a booted cell', () => {
  it('is read without following links the container planted in it', () => {
    const marker = `host-secret-${Date.now()}`;
    const boot = (name: string, run: string) =>
      runMatrix(name, matrix(['boot: true', 'steps:', '  - name: s', `    run: ${block(run)}`]));
    // A real journal file holding a marker, kept on the host outside any container's reach.
    const first = boot('journal-secret', `logger ${marker}`);
    expect(first.r.code, first.r.stdout + first.r.stderr).toBe(0);
    const journals = walk(join(first.out, first.result!.cells[0]!.id, 'journal')).filter((f) => f.endsWith('.journal'));
    expect(journals.length).toBeGreaterThan(0);
    const secret = join(work, 'secret.journal');
    execFileSync('cp', [journals[0]!, secret]);
    rmSync(first.out, { recursive: true, force: true });
    // A hostile cell links to it from its own journal directory.
    const second = boot('journal-link', `ln -s ${secret} "/var/log/journal/$(cat /etc/machine-id)/evil.journal"; ln -s ${secret} /var/log/journal/evil2.journal`);
    expect(second.r.code, second.r.stdout + second.r.stderr).toBe(0);
    const cellDir = join(second.out, second.result!.cells[0]!.id);
    expect(readFileSync(join(cellDir, 'journal.txt'), 'utf8')).not.toContain(marker);
    expect(walk(join(cellDir, 'journal')).filter((f) => lstatSync(f).isSymbolicLink())).toEqual([]);
  });
});

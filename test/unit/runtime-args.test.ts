import { AGENT_INIT_ARGS } from '../../src/runtime/agent.js';
import { describe, expect, it } from 'vitest';
import { fakeHost } from '../helpers/host-info.js';
import { UsageError } from '../../src/errors.js';
import { machineName, nspawnEnvironment } from '../../src/lib/nspawn.js';
import { buildNspawnArgs, type NspawnPlan } from '../../src/runtime/args.js';

const host = fakeHost;

const plan = (over: Partial<NspawnPlan> = {}): NspawnPlan => ({
  host: host(),
  machine: 'nsm-0123456789-1',
  root: '/state/images/abc/root',
  strategy: 'overlay',
  rootUpperDir: '/state/run/1-x/m/root',
  sourceDir: '/home/u/project',
  sourceMode: 'overlay',
  sourceUpperDir: '/state/run/1-x/m/src',
  artifactsDir: '/out/cell/artifacts',
  controlDir: '/state/run/1-x/m/control',
  binds: [],
  network: 'host',
  privateUsers: false,
  boot: false,
  interactive: false,
  env: { CI: 'true' },
  nspawnExtra: [],
  command: ['/usr/bin/perl', '/run/nsmatrix/wrap.pl', 'a', 'b'],
  ...over,
});

describe('buildNspawnArgs', () => {
  it('builds the exec-mode argv of an overlay cell on a host without systemd as PID 1', () => {
    expect(buildNspawnArgs(plan())).toEqual([
      '--quiet',
      '--register=no',
      '--keep-unit',
      '--link-journal=no',
      '--machine=nsm-0123456789-1',
      '-D',
      '/state/images/abc/root',
      '--read-only',
      '--overlay=+/:/state/run/1-x/m/root:/',
      '--as-pid2',
      '--pipe',
      '--chdir=/src',
      '--setenv=CI=true',
      '--overlay=/home/u/project:/state/run/1-x/m/src:/src',
      '--bind=/out/cell/artifacts:/artifacts',
      '--bind=/state/run/1-x/m/control:/run/nsmatrix',
      '--system-call-filter=~@mount',
      '--suppress-sync=yes',
      '--',
      '/usr/bin/perl',
      '/run/nsmatrix/wrap.pl',
      'a',
      'b',
    ]);
  });

  it('denies mount syscalls to exec-mode steps (binfmt_misc), not to a booted systemd', () => {
    expect(buildNspawnArgs(plan())).toContain('--system-call-filter=~@mount');
    expect(buildNspawnArgs(plan({ boot: true, journalDir: '/out/cell/journal' }))).not.toContain('--system-call-filter=~@mount');
  });

  it('takes CAP_SYS_ADMIN from a booted container and gives its systemd the /run/lock it cannot mount', () => {
    const args = buildNspawnArgs(plan({ boot: true, journalDir: '/out/cell/journal' }));
    expect(args).toContain('--drop-capability=CAP_SYS_ADMIN');
    expect(args).toContain('--tmpfs=/run/lock:mode=1777,size=5242880,nosuid,nodev,noexec');
    expect(args.indexOf('--drop-capability=CAP_SYS_ADMIN')).toBeLessThan(args.indexOf('--'));
    expect(buildNspawnArgs(plan())).not.toContain('--drop-capability=CAP_SYS_ADMIN');
  });

  it('leaves CAP_SYS_ADMIN to a booted container with private users (its own user namespace)', () => {
    const args = buildNspawnArgs(plan({ boot: true, privateUsers: true, strategy: 'copy', sourceCopyDir: '/state/run/1-x/m/src-copy', journalDir: '/out/cell/journal' }));
    expect(args).not.toContain('--drop-capability=CAP_SYS_ADMIN');
    expect(args).not.toContain('--system-call-filter=~@mount');
  });

  it('keeps CAP_SYS_ADMIN when the matrix grants it through nspawn: (nspawn drops after it grants, in any order)', () => {
    for (const grant of ['--capability=CAP_SYS_ADMIN', '--capability=CAP_NET_ADMIN,CAP_SYS_ADMIN', '--capability=all']) {
      const args = buildNspawnArgs(plan({ boot: true, journalDir: '/out/cell/journal', nspawnExtra: [grant] }));
      expect(args).not.toContain('--drop-capability=CAP_SYS_ADMIN');
      expect(args).toContain(grant);
    }
    const other = buildNspawnArgs(plan({ boot: true, journalDir: '/out/cell/journal', nspawnExtra: ['--capability=CAP_NET_ADMIN'] }));
    expect(other).toContain('--drop-capability=CAP_SYS_ADMIN');
  });

  it('does not disable registration when systemd is PID 1', () => {
    const args = buildNspawnArgs(plan({ host: host({ systemdIsPid1: true }) }));
    expect(args).not.toContain('--register=no');
    expect(args).not.toContain('--keep-unit');
  });

  it('passes --suppress-sync only from systemd 250 on', () => {
    expect(buildNspawnArgs(plan({ host: host({ nspawnVersion: 249 }) }))).not.toContain('--suppress-sync=yes');
    expect(buildNspawnArgs(plan({ host: host({ nspawnVersion: 250 }) }))).toContain('--suppress-sync=yes');
  });

  it('maps each strategy to its options', () => {
    // Snapshots and copies are made once per cell by the runtime: nspawn runs on them directly.
    for (const strategy of ['btrfs-snapshot', 'copy'] as const) {
      const args = buildNspawnArgs(plan({ strategy, root: '/state/run/1-x/m/rootfs' }));
      expect(args).not.toContain('--ephemeral');
      expect(args).not.toContain('--read-only');
      expect(args.slice(5, 7)).toEqual(['-D', '/state/run/1-x/m/rootfs']);
    }
    const volatile = buildNspawnArgs(plan({ strategy: 'volatile' }));
    expect(volatile).toContain('--volatile=overlay');
    expect(volatile).not.toContain('--read-only');
    expect(() => buildNspawnArgs(plan({ rootUpperDir: undefined }))).toThrow(/rootUpperDir/);
  });

  it('mounts the source read-only or read-write on request', () => {
    expect(buildNspawnArgs(plan({ sourceMode: 'ro' }))).toContain('--bind-ro=/home/u/project:/src');
    expect(buildNspawnArgs(plan({ sourceMode: 'rw' }))).toContain('--bind=/home/u/project:/src');
    expect(buildNspawnArgs(plan({ sourceMode: 'rw' })).some((a) => a.startsWith('--overlay=/home'))).toBe(false);
  });

  it('adds binds (escaping colons), private network, boot and the journal', () => {
    const args = buildNspawnArgs(
      plan({
        binds: [
          { host: '/data/a:b', container: '/a', readOnly: true },
          { host: '/data/c', container: '/c', readOnly: false },
        ],
        network: 'private',
        boot: true,
        journalDir: '/out/cell/journal',
        command: [],
      }),
    );
    expect(args).toContain('--bind-ro=/data/a\\:b:/a');
    expect(args).toContain('--bind=/data/c:/c');
    expect(args).toContain('--private-network');
    expect(args).toContain('--boot');
    expect(args).not.toContain('--as-pid2');
    expect(args).toContain('--bind=/out/cell/journal:/var/log/journal');
    expect(args[args.length - 1]).toBe('--');
  });

  it('binds the boot agent unit read-only and asks init to start it; exec mode has neither', () => {
    const boot = buildNspawnArgs(plan({ boot: true, agentUnit: '/state/run/1-x/m/nsmatrix-agent.service', command: AGENT_INIT_ARGS }));
    expect(boot).toContain('--bind-ro=/state/run/1-x/m/nsmatrix-agent.service:/run/systemd/system/nsmatrix-agent.service');
    expect(boot.slice(boot.indexOf('--'))).toEqual(['--', 'systemd.wants=nsmatrix-agent.service']);
    const exec = buildNspawnArgs(plan({ agentUnit: '/state/run/1-x/m/nsmatrix-agent.service' }));
    expect(exec.some((a) => a.includes('nsmatrix-agent'))).toBe(false);
  });

  it('idmaps every bind for private users and binds a copy of the source instead of an overlay', () => {
    const args = buildNspawnArgs(
      plan({ privateUsers: true, strategy: 'copy', root: '/r', sourceCopyDir: '/state/run/1-x/m/src-copy', binds: [{ host: '/d', container: '/d', readOnly: true }] }),
    );
    expect(args).toContain('--private-users=pick');
    expect(args).toContain('--bind=/state/run/1-x/m/src-copy:/src:idmap');
    expect(args).toContain('--bind=/out/cell/artifacts:/artifacts:idmap');
    expect(args).toContain('--bind-ro=/d:/d:idmap');
    expect(args).toContain('--bind=/state/run/1-x/m/control:/run/nsmatrix:idmap');
    expect(args.some((a) => a.startsWith('--overlay='))).toBe(false);
    expect(() => buildNspawnArgs(plan({ privateUsers: true, strategy: 'copy' }))).toThrow(/sourceCopyDir/);
  });

  it('omits --pipe when interactive and puts passthrough options right before the command', () => {
    const args = buildNspawnArgs(plan({ interactive: true, nspawnExtra: ['--rlimit=RLIMIT_NOFILE=1024'] }));
    expect(args).not.toContain('--pipe');
    const dashdash = args.indexOf('--');
    expect(args[dashdash - 1]).toBe('--rlimit=RLIMIT_NOFILE=1024');
    expect(args.indexOf('--bind=/state/run/1-x/m/control:/run/nsmatrix')).toBeLessThan(dashdash - 1);
  });

  it("runs an i386 cell with nspawn's x86 personality on an amd64 host; amd64, arm64 and the host's own arch without one", () => {
    const i386 = buildNspawnArgs(plan({ arch: 'i386', hostArch: 'amd64' }));
    expect(i386).toContain('--personality=x86');
    // nsmatrix's own option, before the matrix's passthrough (which may still override it).
    expect(i386.indexOf('--personality=x86')).toBeLessThan(i386.indexOf('--'));
    for (const arch of ['amd64', 'arm64', undefined]) {
      expect(buildNspawnArgs(plan({ arch, hostArch: 'amd64' })).some((a) => a.startsWith('--personality')), String(arch)).toBe(false);
    }
    // Emulated i386 (an arm64 kernel under qemu-user) reports its own machine: no personality.
    expect(buildNspawnArgs(plan({ arch: 'i386', hostArch: 'arm64' })).some((a) => a.startsWith('--personality'))).toBe(false);
  });

  it("spells nsmatrix's own mounts (package cache overlay, cache: binds) as options, idmapped binds for private users", () => {
    const mounts = [
      { type: 'overlay' as const, lower: '/state/caches/packages/apt-debian-bookworm-amd64', upper: '/state/run/1-x/pkgcache-c/upper', container: '/var/cache/apt/archives' },
      { type: 'bind' as const, host: '/state/run/1-x/cache-c/0/data', container: '/root/.cache/ccache' },
    ];
    const args = buildNspawnArgs(plan({ mounts, nspawnExtra: ['--rlimit=RLIMIT_NOFILE=1024'] }));
    const overlay = '--overlay=/state/caches/packages/apt-debian-bookworm-amd64:/state/run/1-x/pkgcache-c/upper:/var/cache/apt/archives';
    const bind = '--bind=/state/run/1-x/cache-c/0/data:/root/.cache/ccache';
    expect(args).toContain(overlay);
    expect(args).toContain(bind);
    // Never in the passthrough: the matrix's own options stay last, right before the command.
    expect(args.indexOf(overlay)).toBeLessThan(args.indexOf('--rlimit=RLIMIT_NOFILE=1024'));
    expect(args[args.indexOf('--') - 1]).toBe('--rlimit=RLIMIT_NOFILE=1024');
    const privateArgs = buildNspawnArgs(plan({ privateUsers: true, strategy: 'copy', sourceCopyDir: '/c', mounts: [mounts[1]!] }));
    expect(privateArgs).toContain(`${bind}:idmap`);
  });

  it('refuses environment names nspawn would misparse', () => {
    expect(() => buildNspawnArgs(plan({ env: { 'A=B': 'x' } }))).toThrow(UsageError);
    expect(() => buildNspawnArgs(plan({ env: { '1X': 'x' } }))).toThrow(/invalid environment variable name/);
    expect(buildNspawnArgs(plan({ env: { MULTI: 'a\nb=c' } }))).toContain('--setenv=MULTI=a\nb=c');
  });
});

describe('machineName', () => {
  it('is a short valid hostname, unique per cell, token and counter', () => {
    const a = machineName('debian-bookworm-cc-gcc', 'tok', 1);
    expect(a).toMatch(/^nsm-[0-9a-f]{10}-1$/);
    expect(a.length).toBeLessThanOrEqual(64);
    expect(machineName('debian-bookworm-cc-gcc', 'tok', 2)).not.toBe(a);
    expect(machineName('debian-bookworm-cc-clang', 'tok', 1)).not.toBe(a);
    expect(machineName('debian-bookworm-cc-gcc', 'other', 1)).not.toBe(a);
    expect(machineName('x'.repeat(500), 'tok', 123456789).length).toBeLessThanOrEqual(64);
  });
});

describe('nspawnEnvironment', () => {
  const host = fakeHost({ systemdIsPid1: true, cgroupLayout: 'unified' });
  it('keeps /tmp on the cell root in exec mode only, and drops seccomp only when asked', () => {
    expect(nspawnEnvironment(host, { mode: 'exec', noSeccomp: false })).toEqual({ SYSTEMD_NSPAWN_TMPFS_TMP: '0' });
    expect(nspawnEnvironment(host, { mode: 'boot', noSeccomp: true })).toEqual({ SYSTEMD_SECCOMP: '0' });
    expect(nspawnEnvironment({ ...host, cgroupLayout: 'hybrid' }, { mode: 'boot', noSeccomp: false })).toEqual({ SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' });
  });
});

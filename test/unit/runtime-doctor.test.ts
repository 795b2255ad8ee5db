import { describe, expect, it } from 'vitest';
import { fakeHost } from '../helpers/host-info.js';
import { doctorChecks, formatChecks, type DoctorFacts } from '../../src/cli/commands/doctor.js';

const facts = (over: Partial<DoctorFacts> = {}): DoctorFacts => ({
  host: fakeHost(),
  btrfs: false,
  tools: { mmdebstrap: true, debootstrap: false, skopeo: true, umoci: true, xmllint: true },
  cgroupsWritable: true,
  stateDir: '/var/lib/nsmatrix',
  stateDirWritable: true,
  freeBytes: 50 * 1024 ** 3,
  ...over,
});

const level = (checks: ReturnType<typeof doctorChecks>, name: string) => checks.find((c) => c.name === name)?.level;

describe('doctor checks', () => {
  it('passes a capable host and explains the non-systemd PID 1 and hybrid cgroups', () => {
    const checks = doctorChecks(facts());
    expect(checks.filter((c) => c.level === 'FAIL')).toEqual([]);
    expect(checks.find((c) => c.name === 'PID 1')?.detail).toMatch(/--register=no --keep-unit/);
    expect(checks.find((c) => c.name === 'cgroups')?.detail).toMatch(/SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1/);
    expect(level(checks, 'btrfs')).toBe('warn');
  });

  it('fails without root, nspawn, a builder, a writable state dir or disk space, each with a fix', () => {
    const checks = doctorChecks(
      facts({
        host: { ...facts().host, isRoot: false, nspawnPath: null, nspawnVersion: null, nspawnVersionText: null },
        tools: {},
        stateDirWritable: false,
        freeBytes: 1024 ** 3,
        cgroupsWritable: false,
      }),
    );
    const failed = checks.filter((c) => c.level === 'FAIL');
    // As another user the cgroup probe says nothing about the host: it is not blamed; "run as root" is the fix.
    expect(failed.map((c) => c.name)).toEqual(['root', 'systemd-nspawn', 'mmdebstrap/debootstrap', 'state dir', 'free space']);
    for (const c of failed) expect(c.fix).toBeTruthy();
    expect(level(checks, 'cgroups')).toBe('warn');
    expect(formatChecks(checks)).toMatch(/^FAIL {2}root +not root.*\n +fix: run as root/m);
  });

  it('warns about an old nspawn, no overlayfs and no user namespaces', () => {
    const checks = doctorChecks(facts({ host: { ...facts().host, nspawnVersion: 247, nspawnVersionText: 'systemd 247', overlayfs: false, userNamespaces: false } }));
    expect(level(checks, 'systemd-nspawn')).toBe('warn');
    expect(level(checks, 'overlayfs')).toBe('warn');
    expect(level(checks, 'user namespaces')).toBe('warn');
  });
});

/** Architecture names and what a host runs natively, emulated (binfmt_misc entry with F) or not at all. */
import { describe, expect, it } from 'vitest';
import { InfraError, UsageError } from '../../src/errors.js';
import { archOverview, archSupport, checkArchFlag, parseBinfmtEntry, requireRunnable, type BinfmtEntry } from '../../src/lib/arch.js';
import { architecturesFromRelease } from '../../src/images/suites.js';
import { platformForArch } from '../../src/images/oci/reference.js';
import { bootstrapBuilder, debootstrapArgv, mmdebstrapArgv, type BootstrapPlan } from '../../src/images/builders/bootstrap.js';
import { deriveKey } from '../../src/images/key.js';

// As /proc/sys/fs/binfmt_misc/qemu-aarch64 reads once qemu-user-static registered it.
const AARCH64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`;
const entry = (name: string, over: Partial<BinfmtEntry> = {}): BinfmtEntry => ({ ...parseBinfmtEntry(name, AARCH64), name, ...over });

describe('host architecture support', () => {
  it('parses a binfmt_misc entry', () => {
    expect(parseBinfmtEntry('qemu-aarch64', AARCH64)).toEqual({
      name: 'qemu-aarch64',
      enabled: true,
      interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P',
      flags: 'POF',
    });
    expect(parseBinfmtEntry('x', 'disabled\ninterpreter /x\nflags: \n').enabled).toBe(false);
  });

  it('native: the host and what its kernel runs (i386 on amd64, armhf on arm64)', () => {
    expect(archSupport('amd64', 'amd64', []).how).toBe('native');
    expect(archSupport('i386', 'amd64', []).how).toBe('native');
    expect(archSupport('armhf', 'arm64', []).how).toBe('native');
    expect(archSupport('amd64', 'arm64', []).how).toBe('missing');
  });

  it('emulated only through an enabled entry with the F flag; otherwise missing, with the fix', () => {
    expect(archSupport('arm64', 'amd64', [entry('qemu-aarch64')])).toMatchObject({ how: 'emulated' });
    const none = archSupport('arm64', 'amd64', []);
    expect(none).toMatchObject({ how: 'missing', reason: expect.stringMatching(/no binfmt_misc entry for qemu-aarch64/) });
    expect(none.how === 'missing' && none.fix).toMatch(/apt-get install qemu-user-static binfmt-support/);
    const noF = archSupport('arm64', 'amd64', [entry('qemu-aarch64', { flags: 'P' })]);
    expect(noF).toMatchObject({ how: 'missing', reason: expect.stringMatching(/lacks the F \(fix-binary\) flag/) });
    const off = archSupport('arm64', 'amd64', [entry('qemu-aarch64', { enabled: false })]);
    expect(off).toMatchObject({ how: 'missing', fix: 'echo 1 > /proc/sys/fs/binfmt_misc/qemu-aarch64' });
  });

  it('doctor overview sorts every known architecture', () => {
    const overview = archOverview('amd64', [entry('qemu-aarch64'), entry('qemu-riscv64')]);
    expect(overview.native).toEqual(['amd64', 'i386']);
    expect(overview.emulated).toEqual(['arm64', 'riscv64']);
    expect(overview.missing).toContain('armhf');
  });

  it('refuses before anything starts: a missing architecture (exit 3), boot under emulation', () => {
    expect(() => requireRunnable(['amd64', 'i386'], { boot: true }, [], 'amd64')).not.toThrow();
    expect(() => requireRunnable(['arm64'], { boot: false }, [entry('qemu-aarch64')], 'amd64')).not.toThrow();
    const missing = (() => {
      try {
        requireRunnable(['s390x'], { boot: false }, [], 'amd64');
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(missing).toBeInstanceOf(InfraError);
    expect((missing as InfraError).exitCode).toBe(3);
    expect((missing as Error).message).toMatch(/cannot run s390x containers.*fix: apt-get install qemu-user-static binfmt-support/);
    expect(() => requireRunnable(['arm64'], { boot: true }, [entry('qemu-aarch64')], 'amd64')).toThrow(/boot: true is not supported for arm64/);
  });

  it('--arch names are checked with a did-you-mean', () => {
    expect(checkArchFlag(undefined)).toBeUndefined();
    expect(checkArchFlag('arm64')).toBe('arm64');
    expect(() => checkArchFlag('amd46')).toThrow(UsageError);
    expect(() => checkArchFlag('amd46')).toThrow(/did you mean "amd64"/);
  });
});

describe('images by architecture', () => {
  const plan: BootstrapPlan = {
    distro: 'debian',
    suite: 'bookworm',
    mirror: 'http://m/debian',
    components: ['main'],
    pockets: true,
    allowExpiredRelease: false,
    tool: 'mmdebstrap',
    arch: 'arm64',
  };

  it('mmdebstrap --architectures, debootstrap --arch; the arch is part of the base key', () => {
    expect(mmdebstrapArgv(plan, '/t')).toContain('--architectures=arm64');
    expect(debootstrapArgv({ ...plan, tool: 'debootstrap' }, '/t')).toContain('--arch=arm64');
    const arm64 = bootstrapBuilder(plan);
    const amd64 = bootstrapBuilder({ ...plan, arch: 'amd64' });
    expect(arm64.keyInputs).toMatchObject({ arch: 'arm64' });
    expect(deriveKey(arm64.keyInputs)).not.toBe(deriveKey(amd64.keyInputs));
    expect(arm64.madeFrom).toMatch(/bookworm arm64 from/);
  });

  it("reads the architectures a suite is published for from the mirror's Release file", () => {
    const release = 'Origin: Debian\nCodename: bookworm\nArchitectures: all amd64 arm64 armel armhf i386 mips64el mipsel ppc64el s390x\nComponents: main\n';
    expect(architecturesFromRelease(release)).toContain('arm64');
    expect(architecturesFromRelease(release)).not.toContain('riscv64');
    expect(architecturesFromRelease('Codename: x\n')).toBeUndefined();
  });

  it('OCI platforms of Debian names', () => {
    expect(platformForArch('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(platformForArch('i386')).toEqual({ os: 'linux', architecture: '386' });
    expect(platformForArch('armhf')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(platformForArch('ppc64el')).toEqual({ os: 'linux', architecture: 'ppc64le' });
  });
});

/**
 * The package-manager command lines. This machine reaches only Debian's mirror, so the other families' scripts
 * run here against recording stand-ins for dnf, microdnf, yum, zypper, pacman and apk: the test sees the exact
 * commands, in order, that the script would run inside such an image.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../src/errors.js';
import {
  describeOs,
  detectFamily,
  installScript,
  packagesForFamily,
  parseOsRelease,
  type PackageFamily,
} from '../../src/images/package-managers.js';
import { packageInstallScript } from '../../src/images/layer.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Runs `script` with only `tools` (recording stand-ins) and the shell's basics on PATH; returns the calls. */
function commandsRun(script: string, tools: string[], helpText = ''): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-pm-'));
  dirs.push(dir);
  const log = join(dir, 'calls');
  for (const tool of tools) {
    const stub = join(dir, tool);
    // pacman -S --help prints the help text the script looks into; every call is recorded either way.
    writeFileSync(stub, `#!/bin/sh\necho "${tool} $*" >> '${log}'\ncase "$*" in *--help*) printf '%s\\n' '${helpText}';; esac\nexit 0\n`);
    chmodSync(stub, 0o755);
  }
  for (const basic of ['grep', 'rm']) {
    writeFileSync(join(dir, basic), `#!/bin/sh\nexec /bin/${basic} "$@"\n`);
    chmodSync(join(dir, basic), 0o755);
  }
  execFileSync('/bin/sh', ['-c', script], { env: { PATH: dir } });
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
}

const OS_RELEASES: Record<string, [string, PackageFamily | undefined]> = {
  debian: ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', 'apt'],
  ubuntu: ['ID=ubuntu\nID_LIKE=debian\n', 'apt'],
  mint: ['ID=linuxmint\nID_LIKE="ubuntu debian"\n', 'apt'],
  fedora: ['NAME="Fedora Linux"\nID=fedora\nVERSION_ID=41\n', 'dnf'],
  rocky: ['ID="rocky"\nID_LIKE="rhel centos fedora"\n', 'dnf'],
  alma: ["ID='almalinux'\nID_LIKE='rhel centos fedora'\n", 'dnf'],
  tumbleweed: ['ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', 'zypper'],
  leapLike: ['ID="someday-linux"\nID_LIKE="suse opensuse"\n', 'zypper'],
  arch: ['NAME="Arch Linux"\nID=arch\n', 'pacman'],
  alpine: ['NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n', 'apk'],
  unknown: ['ID=plan9\n', undefined],
  empty: ['', undefined],
};

describe('detectFamily', () => {
  for (const [name, [text, family]] of Object.entries(OS_RELEASES)) {
    it(`${name} -> ${family ?? 'unknown'}`, () => expect(detectFamily(text)).toBe(family));
  }

  it('unquotes values as os-release(5) says, and names the OS', () => {
    expect(parseOsRelease('A="x \\"y\\""\n# comment\nB=\'z\'\nC=plain\n')).toEqual({ A: 'x "y"', B: 'z', C: 'plain' });
    expect(describeOs(OS_RELEASES.alpine![0])).toBe('Alpine Linux v3.20');
    expect(describeOs('ID=arch\n')).toBe('arch');
  });
});

describe('installScript: refresh, install without prompts, clean', () => {
  const pkgs = ['gcc', "it's"];

  it('apt: the Debian script, unchanged', () => {
    const script = installScript('apt', pkgs);
    expect(script).toBe(packageInstallScript(pkgs));
    expect(commandsRun(script, ['apt-get'])).toEqual([
      'apt-get -q -o Acquire::Languages=none -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0 update',
      "apt-get -q -o Acquire::Languages=none -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0 install -y --no-install-recommends gcc it's",
      'apt-get clean',
    ]);
  });

  it('dnf: dnf when present, else microdnf, else yum', () => {
    const dnf = 'dnf -y -q --setopt=install_weak_deps=False --setopt=tsflags=nodocs';
    expect(commandsRun(installScript('dnf', pkgs), ['dnf', 'microdnf', 'yum'])).toEqual([`${dnf} makecache`, `${dnf} install gcc it's`, 'dnf clean all']);
    expect(commandsRun(installScript('dnf', pkgs), ['microdnf'])).toEqual([
      'microdnf -y --setopt=install_weak_deps=0 makecache',
      "microdnf -y --setopt=install_weak_deps=0 install gcc it's",
      'microdnf clean all',
    ]);
    expect(commandsRun(installScript('dnf', ['make']), ['yum'])[1]).toBe('yum -y -q --setopt=install_weak_deps=False --setopt=tsflags=nodocs install make');
  });

  it('zypper: non-interactive, keys imported, no recommends', () => {
    expect(commandsRun(installScript('zypper', pkgs), ['zypper'])).toEqual([
      'zypper --non-interactive --gpg-auto-import-keys refresh',
      "zypper --non-interactive install --no-recommends gcc it's",
      'zypper --non-interactive clean --all',
    ]);
  });

  it('pacman: one -Syu transaction (no partial upgrades), sandbox off when pacman has one', () => {
    expect(commandsRun(installScript('pacman', pkgs), ['pacman'], '--disable-sandbox  disable the sandbox')).toEqual([
      'pacman -S --help',
      "pacman -Syu --noconfirm --needed --disable-sandbox gcc it's",
      'pacman -Scc --noconfirm',
    ]);
    expect(commandsRun(installScript('pacman', ['make']), ['pacman'], 'older pacman')[1]).toBe('pacman -Syu --noconfirm --needed make');
  });

  it('apk: update, add, cache removed', () => {
    expect(commandsRun(installScript('apk', pkgs), ['apk'])).toEqual(['apk update', "apk add --no-progress gcc it's"]);
  });

  it('stops at the first failing command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsm-pm-fail-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'zypper'), `#!/bin/sh\necho "$*" >> ${dir}/calls\ncase "$*" in *refresh*) exit 4;; esac\n`);
    chmodSync(join(dir, 'zypper'), 0o755);
    expect(() => execFileSync('/bin/sh', ['-c', installScript('zypper', ['x'])], { env: { PATH: dir }, stdio: 'ignore' })).toThrow();
    expect(readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n')).toHaveLength(1);
  });
});

describe('packagesForFamily: the boot set per family', () => {
  const asked = { packages: ['make'], boot: true };

  it("adds the family's boot set when the image boots", () => {
    expect(packagesForFamily(asked, 'apt', 'i')).toEqual(['make', 'systemd', 'systemd-sysv', 'dbus']);
    expect(packagesForFamily(asked, 'dnf', 'i')).toEqual(['make', 'systemd', 'dbus']);
    expect(packagesForFamily(asked, 'zypper', 'i')).toEqual(['make', 'systemd', 'systemd-sysvinit', 'dbus-1']);
    expect(packagesForFamily(asked, 'pacman', 'i')).toEqual(['make', 'systemd', 'systemd-sysvcompat', 'dbus']);
    expect(packagesForFamily({ packages: ['systemd', 'make'], boot: true }, 'apt', 'i')).toEqual(['systemd', 'make', 'systemd-sysv', 'dbus']);
  });

  it('adds nothing when the image does not boot, whatever the list holds', () => {
    expect(packagesForFamily({ packages: ['systemd', 'make'] }, 'dnf', 'i')).toEqual(['systemd', 'make']);
    expect(packagesForFamily({ packages: ['systemd', 'systemd-sysv', 'dbus'], boot: false }, 'dnf', 'i')).toEqual(['systemd', 'systemd-sysv', 'dbus']);
  });

  it('refuses to boot Alpine (no systemd), with exit 3 and a way out', () => {
    const error = (() => {
      try {
        packagesForFamily(asked, 'apk', 'oci:docker.io/library/alpine:3.20', 'Alpine Linux v3.20');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InfraError);
    expect((error as InfraError).exitCode).toBe(3);
    expect((error as Error).message).toBe(
      'image "oci:docker.io/library/alpine:3.20" (Alpine Linux v3.20) has no systemd to boot: set boot: false for it, or use an image with systemd (Debian, Ubuntu, Fedora, openSUSE, Arch)',
    );
    expect(packagesForFamily({ packages: ['make'] }, 'apk', 'alpine')).toEqual(['make']);
  });
});

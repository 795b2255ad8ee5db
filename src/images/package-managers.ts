/**
 * One `packages:` list for every package manager: the family from the tree's /etc/os-release (ID, ID_LIKE), the
 * non-interactive install script per family (refresh first, no prompts, no fsync where the tool can skip it,
 * caches cleaned after), and the packages boot mode needs. Pure.
 */
import { InfraError } from '../errors.js';
import { shellQuote } from '../lib/nspawn.js';

export type PackageFamily = 'apt' | 'dnf' | 'zypper' | 'pacman' | 'apk';

export const PACKAGE_FAMILIES: readonly PackageFamily[] = ['apt', 'dnf', 'zypper', 'pacman', 'apk'];

const FAMILY_OF_ID: Record<string, PackageFamily> = {
  debian: 'apt',
  ubuntu: 'apt',
  fedora: 'dnf',
  rhel: 'dnf',
  centos: 'dnf',
  rocky: 'dnf',
  almalinux: 'dnf',
  ol: 'dnf',
  amzn: 'dnf',
  mageia: 'dnf',
  suse: 'zypper',
  opensuse: 'zypper',
  'opensuse-leap': 'zypper',
  'opensuse-tumbleweed': 'zypper',
  sles: 'zypper',
  arch: 'pacman',
  archlinux: 'pacman',
  manjaro: 'pacman',
  alpine: 'apk',
  postmarketos: 'apk',
};

/** KEY=value lines, values unquoted as os-release(5) describes. */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2]!;
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1).replace(/\\(["\\`$])/g, '$1');
    fields[match[1]!] = value;
  }
  return fields;
}

/** ID first, then ID_LIKE in order (a derivative names its closest relative first). */
export function detectFamily(osRelease: string): PackageFamily | undefined {
  const fields = parseOsRelease(osRelease);
  const ids = [fields.ID ?? '', ...(fields.ID_LIKE ?? '').split(/\s+/)].map((id) => id.toLowerCase()).filter(Boolean);
  for (const id of ids) {
    const family = FAMILY_OF_ID[id];
    if (family) return family;
  }
  return undefined;
}

/** A one-line description of the tree's OS for messages: PRETTY_NAME, else ID. */
export function describeOs(osRelease: string): string {
  const fields = parseOsRelease(osRelease);
  return fields.PRETTY_NAME ?? fields.ID ?? 'unknown OS';
}


/**
 * The script run inside the image (by /bin/sh) to install `packages`. dnf, yum and microdnf are chosen inside
 * the image, since Fedora has dnf (dnf5 on new releases) and minimal RHEL-likes have only microdnf.
 */
export function installScript(family: PackageFamily, packages: string[], options: { keepDownloads?: boolean } = {}): string {
  const list = packages.map(shellQuote).join(' ');
  switch (family) {
    case 'apt': {
      // No translations: bases are bootstrapped without them, and they would add ~30 MB to every top layer.
      const apt = 'apt-get -q -o Acquire::Languages=none -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0';
      // With the shared package cache mounted on /var/cache/apt/archives, `apt-get clean` would throw away what the
      // host is about to harvest (and the image's own directory is hidden under the mount): only apt's binary
      // caches go.
      const clean = options.keepDownloads ? 'rm -f /var/cache/apt/*.bin' : 'apt-get clean';
      return ['set -e', `${apt} update`, `${apt} install -y --no-install-recommends ${list}`, clean].join('\n');
    }
    case 'dnf':
      return [
        'set -e',
        'if command -v dnf >/dev/null 2>&1; then pm=dnf; elif command -v microdnf >/dev/null 2>&1; then pm=microdnf; else pm=yum; fi',
        'if [ "$pm" = microdnf ]; then opts="-y --setopt=install_weak_deps=0"; else opts="-y -q --setopt=install_weak_deps=False --setopt=tsflags=nodocs"; fi',
        '$pm $opts makecache',
        `$pm $opts install ${list}`,
        '$pm clean all',
      ].join('\n');
    case 'zypper':
      return [
        'set -e',
        'zypper --non-interactive --gpg-auto-import-keys refresh',
        `zypper --non-interactive install --no-recommends ${list}`,
        'zypper --non-interactive clean --all',
      ].join('\n');
    case 'pacman':
      // DisableSandbox: pacman 7's download sandbox needs Landlock and a user that nspawn builds may not have.
      return [
        'set -e',
        "if pacman -S --help 2>/dev/null | grep -q -- '--disable-sandbox'; then sb=--disable-sandbox; else sb=; fi",
        `pacman -Syu --noconfirm --needed $sb ${list}`,
        'pacman -Scc --noconfirm',
      ].join('\n');
    case 'apk':
      return ['set -e', 'apk update', `apk add --no-progress ${list}`, 'rm -rf /var/cache/apk/*'].join('\n');
  }
}

/** What booting with systemd as PID 1 needs installed, per family. */
export const BOOT_PACKAGES_BY_FAMILY: Record<PackageFamily, string[] | null> = {
  apt: ['systemd', 'systemd-sysv', 'dbus'],
  dnf: ['systemd', 'dbus'],
  zypper: ['systemd', 'systemd-sysvinit', 'dbus-1'],
  pacman: ['systemd', 'systemd-sysvcompat', 'dbus'],
  // OpenRC, no systemd package: nothing to boot with.
  apk: null,
};

/**
 * What the top layer installs for `family`: the packages asked for, plus the family's boot set when the image must
 * boot. Refuses a boot on a family without systemd.
 */
export function packagesForFamily(request: { packages: string[]; boot?: boolean }, family: PackageFamily, imageName: string, osName: string = family): string[] {
  if (!request.boot) return request.packages;
  const boot = BOOT_PACKAGES_BY_FAMILY[family];
  if (!boot) {
    throw new InfraError(
      `image "${imageName}" (${osName}) has no systemd to boot: set boot: false for it, or use an image with systemd (Debian, Ubuntu, Fedora, openSUSE, Arch)`,
    );
  }
  return [...new Set([...request.packages, ...boot])];
}

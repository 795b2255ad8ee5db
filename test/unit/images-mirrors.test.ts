/** Which archive a Debian-family base is built from, per distribution and architecture (pure; no network). */
import { describe, expect, it } from 'vitest';
import { chooseMirrors, mmdebstrapArgv, type BootstrapPlan } from '../../src/images/builders/bootstrap.js';

const ARCHIVE = 'http://archive.ubuntu.com/ubuntu';
const PORTS = 'http://ports.ubuntu.com/ubuntu-ports';

describe('Ubuntu: archive for amd64 and i386, ports for the other architectures', () => {
  it.each([
    ['amd64', ARCHIVE],
    ['i386', ARCHIVE],
    ['arm64', PORTS],
    ['armhf', PORTS],
    ['ppc64el', PORTS],
    ['s390x', PORTS],
    ['riscv64', PORTS],
  ])('%s: %s, its security suite from the same archive', (arch, mirror) => {
    expect(chooseMirrors('ubuntu', undefined, arch)).toEqual({ mirror, securityMirror: mirror });
  });

  it('a mirror: given in the image spec wins for every architecture', () => {
    expect(chooseMirrors('ubuntu', 'http://mirror.example/ubuntu-ports/', 'arm64')).toEqual({ mirror: 'http://mirror.example/ubuntu-ports' });
  });

  it("an arm64 noble base's sources all name ports", () => {
    const plan: BootstrapPlan = {
      distro: 'ubuntu',
      suite: 'noble',
      ...chooseMirrors('ubuntu', undefined, 'arm64'),
      components: ['main', 'universe'],
      pockets: true,
      allowExpiredRelease: false,
      tool: 'mmdebstrap',
      arch: 'arm64',
    };
    expect(mmdebstrapArgv(plan, '/t').slice(-4)).toEqual([
      '/t',
      `deb ${PORTS} noble main universe`,
      `deb ${PORTS} noble-updates main universe`,
      `deb ${PORTS} noble-security main universe`,
    ]);
  });
});

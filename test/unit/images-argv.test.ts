import { describe, expect, it } from 'vitest';
import { fakeHost } from '../helpers/host-info.js';
import {
  bootstrapBuilder,
  debootstrapArgv,
  expiredReleaseHint,
  mmdebstrapArgv,
  sourceLines,
  type BootstrapPlan,
} from '../../src/images/builders/bootstrap.js';
import { layerNspawnArgv, packageInstallScript } from '../../src/images/layer.js';
import { guardedArgv } from '../../src/images/process.js';

const bookworm: BootstrapPlan = {
  distro: 'debian',
  suite: 'bookworm',
  mirror: 'http://m/debian',
  securityMirror: 'http://m/debian-security',
  components: ['main'],
  pockets: true,
  allowExpiredRelease: false,
  tool: 'mmdebstrap',
  arch: 'amd64',
};

describe('bootstrap argv', () => {
  it('mmdebstrap: minbase, root mode, the suite, updates and security pockets', () => {
    expect(mmdebstrapArgv(bookworm, '/t')).toEqual([
      'mmdebstrap',
      '--variant=minbase',
      '--mode=root',
      '--format=directory',
      '--skip=cleanup/apt/lists',
      '--architectures=amd64',
      'bookworm',
      '/t',
      'deb http://m/debian bookworm main',
      'deb http://m/debian bookworm-updates main',
      'deb http://m/debian-security bookworm-security main',
    ]);
  });

  it('bullseye security lives in bullseye-security; sid has no pockets; expired Release is allowed by an apt option', () => {
    expect(sourceLines({ ...bookworm, suite: 'bullseye' })).toContain('deb http://m/debian-security bullseye-security main');
    const sid = mmdebstrapArgv({ ...bookworm, suite: 'sid', pockets: false, allowExpiredRelease: true }, '/t');
    expect(sid).toContain('--aptopt=Acquire::Check-Valid-Until "false"');
    expect(sid.slice(-3)).toEqual(['sid', '/t', 'deb http://m/debian sid main']);
  });

  it('debootstrap: minbase with components and the mirror', () => {
    expect(debootstrapArgv({ ...bookworm, tool: 'debootstrap' }, '/t')).toEqual([
      'debootstrap',
      '--variant=minbase',
      '--arch=amd64',
      '--components=main',
      'bookworm',
      '/t',
      'http://m/debian',
    ]);
  });

  it('ubuntu: same builder, Ubuntu mirror and components', () => {
    const noble: BootstrapPlan = {
      ...bookworm,
      distro: 'ubuntu',
      suite: 'noble',
      mirror: 'http://archive.ubuntu.com/ubuntu',
      securityMirror: 'http://archive.ubuntu.com/ubuntu',
      components: ['main', 'universe'],
    };
    expect(mmdebstrapArgv(noble, '/t').slice(-3)).toEqual([
      'deb http://archive.ubuntu.com/ubuntu noble main universe',
      'deb http://archive.ubuntu.com/ubuntu noble-updates main universe',
      'deb http://archive.ubuntu.com/ubuntu noble-security main universe',
    ]);
    expect(bootstrapBuilder(noble).keyInputs).toMatchObject({ distro: 'ubuntu', suite: 'noble', tool: 'mmdebstrap' });
  });

  it('the base key inputs change with the mirror, the tool and the expired-Release option', () => {
    const inputs = (plan: BootstrapPlan) => JSON.stringify(bootstrapBuilder(plan).keyInputs);
    const reference = inputs(bookworm);
    expect(inputs({ ...bookworm, mirror: 'http://other/debian' })).not.toBe(reference);
    expect(inputs({ ...bookworm, tool: 'debootstrap' })).not.toBe(reference);
    expect(inputs({ ...bookworm, allowExpiredRelease: true })).not.toBe(reference);
  });

  it('recognises apt complaining about an expired Release file', () => {
    const log = 'E: Release file for http://m/debian/dists/sid/InRelease is expired (invalid since 3d 2h). Updates for this repository will not be applied.';
    expect(expiredReleaseHint(log)).toMatch(/allow-expired-release: true/);
    expect(expiredReleaseHint('E: Unable to locate package nope')).toBeUndefined();
  });
});

describe('top layer argv', () => {
  const host = fakeHost;

  it('without systemd as PID 1: no registration; suppress-sync from nspawn 250', () => {
    const argv = layerNspawnArgv(host({}), '/r', ['true']);
    expect(argv).toEqual(expect.arrayContaining(['--pipe', '-D', '/r', '--register=no', '--keep-unit', '--suppress-sync=yes']));
    expect(argv.slice(-2)).toEqual(['--', 'true']);
    expect(argv.find((a) => a.startsWith('--machine=nsmatrix-build-'))).toBeDefined();
  });

  it("denies mount syscalls to image builds: the setup script is the matrix's, as hostile as a step (binfmt_misc)", () => {
    const argv = layerNspawnArgv(host({}), '/r', ['true']);
    expect(argv).toContain('--system-call-filter=~@mount');
    expect(argv.indexOf('--system-call-filter=~@mount')).toBeLessThan(argv.indexOf('--'));
  });

  it('mounts the package pool it is given as an overlay before the command, and nothing without one', () => {
    const pool = { type: 'overlay' as const, lower: '/s/caches/packages/apt-debian-bookworm-amd64', upper: '/s/tmp/k.1.ab/pkgcache/upper', container: '/var/cache/apt/archives' };
    const argv = layerNspawnArgv(host({}), '/r', ['true'], [pool]);
    const option = '--overlay=/s/caches/packages/apt-debian-bookworm-amd64:/s/tmp/k.1.ab/pkgcache/upper:/var/cache/apt/archives';
    expect(argv).toContain(option);
    expect(argv.indexOf(option)).toBeLessThan(argv.indexOf('--'));
    expect(layerNspawnArgv(host({}), '/r', ['true']).some((a) => a.startsWith('--overlay'))).toBe(false);
  });

  it('with systemd as PID 1 and an old nspawn: registration kept, no suppress-sync', () => {
    const argv = layerNspawnArgv(host({ systemdIsPid1: true, nspawnVersion: 247 }), '/r', ['true']);
    expect(argv).not.toContain('--register=no');
    expect(argv).not.toContain('--suppress-sync=yes');
  });

  it('installs without recommends or fsync, then cleans', () => {
    const script = packageInstallScript(['gcc', "we'ird"]);
    expect(script).toContain("install -y --no-install-recommends 'gcc' 'we'\\''ird'");
    expect(script).toContain('Dpkg::Options::=--force-unsafe-io');
    expect(script.split('\n').at(-1)).toBe('apt-get clean');
  });

  it('build processes die with us: parent-death signal, private PID and mount namespaces', () => {
    expect(guardedArgv(['mmdebstrap', 'x'])).toEqual([
      'setpriv', '--pdeathsig', 'KILL', '--',
      'unshare', '--pid', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc', '--',
      'mmdebstrap', 'x',
    ]);
  });
});

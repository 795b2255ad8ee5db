import type { HostInfo } from '../../src/lib/host.js';

/** A HostInfo for pure tests: this project's machine kind (nspawn 252, PID 1 not systemd, hybrid cgroups). */
export function fakeHost(over: Partial<HostInfo> = {}): HostInfo {
  return {
    isRoot: true,
    nspawnPath: '/usr/bin/systemd-nspawn',
    nspawnVersion: 252,
    nspawnVersionText: 'systemd 252',
    systemdIsPid1: false,
    overlayfs: true,
    userNamespaces: true,
    cgroupLayout: 'hybrid',
    hostname: 'h',
    ...over,
  };
}

/** lib/host.ts: the systemd-nspawn version is asked once per binary and kept by root, keyed by the binary's identity. */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNspawnVersion } from '../../src/lib/host.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-nspawn-version-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in systemd-nspawn that counts how often it is asked. */
function fakeNspawn(name: string, version: string): { path: string; calls: () => number } {
  const path = join(dir, name);
  const counter = `${path}.calls`;
  writeFileSync(counter, '');
  writeFileSync(path, `#!/bin/sh\necho x >> ${counter}\necho "systemd ${version} (${version}.1-1)"\necho "+PAM +AUDIT"\n`);
  chmodSync(path, 0o755);
  return { path, calls: () => readFileSync(counter, 'utf8').split('\n').filter(Boolean).length };
}

describe.runIf(process.getuid?.() === 0)('readNspawnVersion (root)', () => {
  it('asks the binary once, then answers from the cache until the binary changes', () => {
    const cache = join(dir, 'cache-a');
    const nspawn = fakeNspawn('nspawn-a', '252');
    expect(readNspawnVersion(nspawn.path, cache)).toEqual({ major: 252, text: 'systemd 252 (252.1-1)' });
    expect(readNspawnVersion(nspawn.path, cache)).toEqual({ major: 252, text: 'systemd 252 (252.1-1)' });
    expect(nspawn.calls()).toBe(1);
    // An upgrade: another binary at the same path.
    writeFileSync(nspawn.path, `${readFileSync(nspawn.path, 'utf8').replaceAll('252', '257')}# upgraded\n`);
    expect(readNspawnVersion(nspawn.path, cache)).toEqual({ major: 257, text: 'systemd 257 (257.1-1)' });
    expect(readNspawnVersion(nspawn.path, cache)).toEqual({ major: 257, text: 'systemd 257 (257.1-1)' });
    expect(nspawn.calls()).toBe(2);
  });

  it('trusts no cache file that others could have written, and keeps nothing for a binary that failed', () => {
    const cache = join(dir, 'cache-b');
    const nspawn = fakeNspawn('nspawn-b', '252');
    readNspawnVersion(nspawn.path, cache);
    const file = join(cache, 'nspawn-version.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('252', '999'));
    chmodSync(file, 0o666);
    expect(readNspawnVersion(nspawn.path, cache).major).toBe(252);
    expect(nspawn.calls()).toBe(2);

    const broken = join(dir, 'nspawn-broken');
    writeFileSync(broken, '#!/bin/sh\nexit 1\n');
    chmodSync(broken, 0o755);
    expect(readNspawnVersion(broken, join(dir, 'cache-c'))).toEqual({ major: null, text: null });
    expect(() => readFileSync(join(dir, 'cache-c', 'nspawn-version.json'))).toThrow();
    expect(readNspawnVersion(null, cache)).toEqual({ major: null, text: null });
  });
});

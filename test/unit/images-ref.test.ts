import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseImageRef, validateImageName } from '../../src/images/ref.js';
import { codenameFromRelease, resolveSuite } from '../../src/images/suites.js';

const SHA = 'a'.repeat(64);

describe('parseImageRef', () => {
  it('parses catalogue references', () => {
    expect(parseImageRef('debian:bookworm')).toEqual({ kind: 'bootstrap', distro: 'debian', suite: 'bookworm', allowExpiredRelease: false });
    expect(parseImageRef('debian:stable', { allowExpiredRelease: true, mirror: 'http://m/debian' })).toEqual({
      kind: 'bootstrap',
      distro: 'debian',
      suite: 'stable',
      mirror: 'http://m/debian',
      allowExpiredRelease: true,
    });
    expect(parseImageRef('ubuntu:noble')).toMatchObject({ kind: 'bootstrap', distro: 'ubuntu', suite: 'noble' });
  });

  it('parses pull:, path: and machine: specs of plain names', () => {
    expect(parseImageRef('mine', { pull: { url: 'https://x/r.tar.zst', sha256: SHA.toUpperCase() } })).toEqual({
      kind: 'tarball',
      url: 'https://x/r.tar.zst',
      sha256: SHA,
    });
    expect(parseImageRef('local', { path: '/srv/root' })).toEqual({ kind: 'directory', path: '/srv/root' });
    expect(parseImageRef('m', { machine: 'fedora-40' })).toEqual({ kind: 'machine', machine: 'fedora-40' });
  });

  it.each([
    ['debian:jessie', /unknown debian suite "jessie"/],
    ['fedora:40', /unknown distribution "fedora"/],
    ['debian:bookwrom', /unknown debian suite "bookwrom" \(did you mean "bookworm"\?\)/],
    ['plain', /unknown image/],
    ['../../etc', /invalid name/],
    ['a/b', /invalid name/],
    ['debian:..', /invalid name/],
    ['', /invalid name/],
  ])('refuses %s with an exit-2 error (a bad image reference is the user\'s to fix)', (name, message) => {
    let caught: unknown;
    try {
      parseImageRef(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).exitCode).toBe(2);
    expect((caught as Error).message).toMatch(message);
  });

  it('refuses incomplete or conflicting specs', () => {
    expect(() => parseImageRef('x', { pull: { url: 'https://x/a.tar', sha256: 'abc' } })).toThrow(/sha256/);
    expect(() => parseImageRef('x', { pull: { url: 'ftp://x/a.tar', sha256: SHA } })).toThrow(/http/);
    expect(() => parseImageRef('x', { path: 'relative/dir' })).toThrow(/absolute/);
    expect(() => parseImageRef('x', { machine: '../evil' })).toThrow(/machine name/);
    expect(() => parseImageRef('x', { path: '/a', machine: 'b' })).toThrow(/only one/);
  });

  it('accepts ordinary names', () => {
    for (const name of ['debian:trixie', 'my-image', 'img_2.0', 'custom:v1+x']) expect(() => validateImageName(name)).not.toThrow();
  });
});

describe('suite aliases', () => {
  it('reads the code name from a Release file', () => {
    expect(codenameFromRelease('Origin: Debian\nSuite: stable\nCodename: trixie\nDate: x\n')).toBe('trixie');
    expect(codenameFromRelease('Origin: Debian\n')).toBeUndefined();
  });

  it('passes code names through and falls back to the built-in table without a reachable mirror', async () => {
    expect(await resolveSuite('debian', 'bookworm', 'http://127.0.0.1:9/debian')).toBe('bookworm');
    expect(await resolveSuite('debian', 'unstable', 'http://127.0.0.1:9/debian')).toBe('sid');
    expect(await resolveSuite('debian', 'stable', undefined)).toBe('trixie');
  });
});

import { describe, expect, it } from 'vitest';
import { compressionFlag } from '../../src/images/builders/tarball.js';
import { auditTarEntries, normaliseMember, parseTarListing } from '../../src/images/tar-audit.js';

const LISTING = `drwxr-xr-x 0/0               0 2026-11-22 03:24 "./"
drwxr-xr-x 0/0               0 2026-11-22 03:24 "./etc/"
-rw-r--r-- 0/0              12 2026-11-22 03:24 "./etc/with space \\"q\\"\\n"
lrwxrwxrwx 0/0               0 2026-11-22 03:24 "./bin" -> "usr/bin"
hrw-r--r-- 0/0               0 2026-11-22 03:24 "./etc/b" link to "./etc/a"
crw-r--r-- 0/0             1,3 2026-11-22 03:24 "./dev/null"
-rwsr-xr-x 0/0            1000 2026-11-22 03:24 "./usr/bin/su"`;

describe('tar listing', () => {
  it('parses names, quoting, symlinks and hard links', () => {
    const entries = parseTarListing(LISTING);
    expect(entries[2]).toEqual({ type: '-', name: './etc/with space "q"\n', hardLink: false });
    expect(entries[3]).toEqual({ type: 'l', name: './bin', linkTarget: 'usr/bin', hardLink: false });
    expect(entries[4]).toEqual({ type: 'h', name: './etc/b', linkTarget: './etc/a', hardLink: true });
    expect(entries[5]?.type).toBe('c');
  });

  it('a normal root filesystem passes; device nodes are listed for removal; setuid is kept', () => {
    expect(auditTarEntries(parseTarListing(LISTING))).toEqual({ refused: [], devices: ['dev/null'] });
  });

  it('refuses absolute paths, .. components, writes through symlinks and hard links out', () => {
    const hostile = parseTarListing(
      [
        '-rw-r--r-- 0/0 1 2026-11-22 03:24 "/etc/passwd"',
        '-rw-r--r-- 0/0 1 2026-11-22 03:24 "./a/../../escape"',
        'lrwxrwxrwx 0/0 0 2026-11-22 03:24 "./out" -> "/etc"',
        '-rw-r--r-- 0/0 1 2026-11-22 03:24 "./out/cron.d/evil"',
        'hrw-r--r-- 0/0 0 2026-11-22 03:24 "./h" link to "../../etc/shadow"',
        'hrw-r--r-- 0/0 0 2026-11-22 03:24 "./h2" link to "out/shadow"',
      ].join('\n'),
    );
    const { refused } = auditTarEntries(hostile);
    expect(refused).toEqual([
      '/etc/passwd: absolute path',
      './a/../../escape: ".." in the path',
      './out/cron.d/evil: written through the symlink out',
      './h: hard link to ../../etc/shadow outside the tree',
      './h2: hard link through the symlink out',
    ]);
  });

  it('normalises member names', () => {
    expect(normaliseMember('./a//b/./c/')).toBe('a/b/c');
    expect(normaliseMember('/x/./y')).toBe('/x/y');
  });

  it('detects compression from magic bytes', () => {
    expect(compressionFlag(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]))).toEqual(['--gzip']);
    expect(compressionFlag(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0]))).toEqual(['--xz']);
    expect(compressionFlag(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]))).toEqual(['--zstd']);
    expect(compressionFlag(Buffer.from('ustar\0\0\0'))).toEqual([]);
  });
});

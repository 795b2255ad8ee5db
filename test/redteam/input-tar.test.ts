/**
 * Red team, input: a root filesystem tarball (`pull:`) whose hard link names a symlink member. Extracting it makes
 * a second symlink under a name the audit does not know as one, so members written "through" that name leave the
 * target; only GNU tar's own checks stood in the way. Real archives, built here with tar, listed as the tarball
 * builder lists them, then audited.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditTarEntries, parseTarListing } from '../../src/images/tar-audit.js';

const work = mkdtempSync('/var/tmp/nsm-redteam-tar-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The audit of an archive, from the same listing the tarball builder reads. */
function audit(archive: string): string[] {
  const listing = execFileSync('tar', ['-tv', '--numeric-owner', '--quoting-style=c', '-f', archive], { encoding: 'utf8' });
  return auditTarEntries(parseTarListing(listing)).refused;
}

/** A tree with `s -> target` and `x`, a hard link to the symlink `s` itself (not to what it points at). */
function treeWithLinkedSymlink(name: string, target: string): string {
  const tree = join(work, name);
  mkdirSync(tree);
  symlinkSync(target, join(tree, 's'));
  linkSync(join(tree, 's'), join(tree, 'x'));
  return tree;
}

describe('hard links to symlink members', () => {
  it('a hard link to a symlink pointing out of the tree, then a member written through the link, is refused', () => {
    const tree = treeWithLinkedSymlink('out', '/etc');
    const payload = join(work, 'payload');
    mkdirSync(join(payload, 'cron.d'), { recursive: true });
    writeFileSync(join(payload, 'cron.d', 'evil'), '* * * * * root touch /pwned\n');
    const archive = join(work, 'out.tar');
    execFileSync('tar', ['-cf', archive, '-C', tree, './s', './x', '-C', payload, '--transform', 's,^\\./cron\\.d,./x/cron.d,', './cron.d', './cron.d/evil']);

    const listing = execFileSync('tar', ['-tvf', archive, '--quoting-style=c'], { encoding: 'utf8' });
    expect(listing).toMatch(/^h.* "\.\/x" link to "\.\/s"$/m);
    expect(listing).toMatch(/"\.\/x\/cron\.d\/evil"$/m);
    expect(audit(archive)).toContain('./x: hard link to the symlink ./s');
  });

  it('a hard link to a relative symlink is refused too, every name tar gives the same inode', () => {
    const tree = treeWithLinkedSymlink('chain', '../../../etc');
    linkSync(join(tree, 'x'), join(tree, 'y'));
    const archive = join(work, 'chain.tar');
    execFileSync('tar', ['-cf', archive, '-C', tree, 's', 'x', 'y']);
    const refused = audit(archive);
    expect(refused).toHaveLength(2);
    expect(refused.every((line) => / hard link to the symlink s$/.test(line))).toBe(true);
  });

  it('hard links between regular files, and symlinks inside the tree, still pass', () => {
    const tree = join(work, 'fine');
    mkdirSync(join(tree, 'usr/bin'), { recursive: true });
    writeFileSync(join(tree, 'usr/bin/a'), 'a');
    linkSync(join(tree, 'usr/bin/a'), join(tree, 'usr/bin/b'));
    symlinkSync('usr/bin', join(tree, 'bin'));
    const archive = join(work, 'fine.tar');
    execFileSync('tar', ['-cf', archive, '-C', tree, '.']);
    expect(audit(archive)).toEqual([]);
  });
});

/**
 * Safety audit of a root filesystem tarball, from `tar -tv --quoting-style=c` output, before anything is
 * unpacked. Pure. Policy:
 * - refused: absolute member names, `..` components, hard links whose target is absolute or climbs with `..`,
 *   any member (or hard-link target) whose path passes through a symlink member (the "symlink out, then write
 *   through it" attack), hard links to a symlink member (the same attack under a second name), member types
 *   other than file, directory, symlink, hard link, device, fifo;
 * - neutralised: character and block devices are deleted right after unpacking (nspawn provides /dev);
 * - kept: setuid/setgid bits (a root filesystem needs them; the store is 0700 so host users cannot reach them).
 */

export interface TarEntry {
  type: string;
  name: string;
  /** Symlink target, or hard-link target (`link to`). */
  linkTarget?: string;
  hardLink: boolean;
}

export interface TarAudit {
  refused: string[];
  devices: string[];
}

function unquoteC(text: string): string {
  return text.replace(/\\([0-7]{1,3}|.)/g, (_, esc: string) => {
    if (/^[0-7]+$/.test(esc)) return String.fromCharCode(parseInt(esc, 8));
    return ({ n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', b: '\b', a: '\x07', '\\': '\\', '"': '"' } as Record<string, string>)[esc] ?? esc;
  });
}

const QUOTED = '"((?:[^"\\\\]|\\\\.)*)"';
const LINE_RE = new RegExp(`^(\\S)\\S*\\s.*?\\s${QUOTED}(?:\\s+(->|link to)\\s+${QUOTED})?$`);

export function parseTarListing(text: string): TarEntry[] {
  const entries: TarEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const match = LINE_RE.exec(line);
    if (!match) throw new Error(`cannot parse tar listing line: ${line}`);
    const entry: TarEntry = { type: match[1]!, name: unquoteC(match[2]!), hardLink: match[3] === 'link to' };
    if (match[4] !== undefined) entry.linkTarget = unquoteC(match[4]);
    entries.push(entry);
  }
  return entries;
}

/** `./a//b/` -> `a/b`; keeps a leading `/` so absolute names stay visible. */
export function normaliseMember(name: string): string {
  const absolute = name.startsWith('/');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return (absolute ? '/' : '') + parts.join('/');
}

const climbs = (path: string) => path.split('/').includes('..');

export function auditTarEntries(entries: TarEntry[]): TarAudit {
  const refused: string[] = [];
  const devices: string[] = [];
  const symlinks = new Set(entries.filter((e) => e.type === 'l').map((e) => normaliseMember(e.name)));
  const throughSymlink = (path: string): string | undefined => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) return prefix;
    }
    return undefined;
  };
  for (const entry of entries) {
    const name = normaliseMember(entry.name);
    if (name.startsWith('/')) refused.push(`${entry.name}: absolute path`);
    else if (climbs(name)) refused.push(`${entry.name}: ".." in the path`);
    else if (throughSymlink(name)) refused.push(`${entry.name}: written through the symlink ${throughSymlink(name)}`);
    if (entry.hardLink && entry.linkTarget !== undefined) {
      const target = normaliseMember(entry.linkTarget);
      if (target.startsWith('/') || climbs(target)) refused.push(`${entry.name}: hard link to ${entry.linkTarget} outside the tree`);
      else if (throughSymlink(target)) refused.push(`${entry.name}: hard link through the symlink ${throughSymlink(target)}`);
      // A hard link to a symlink member is a second symlink under a name the checks above do not know: members
      // written through it would leave the tree.
      else if (symlinks.has(target)) refused.push(`${entry.name}: hard link to the symlink ${entry.linkTarget}`);
    }
    if (entry.type === 'c' || entry.type === 'b') devices.push(name);
    else if (!['-', 'd', 'l', 'h', 'p'].includes(entry.type)) refused.push(`${entry.name}: unsupported member type "${entry.type}"`);
  }
  return { refused, devices };
}

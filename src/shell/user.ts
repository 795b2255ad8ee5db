/**
 * Who the commands of `nsmatrix shell` run as, and the script that makes it so inside the container.
 *
 * nsmatrix runs as root (containers need it). The person behind it is the user sudo names (SUDO_UID/SUDO_GID,
 * SUDO_USER): commands run with that uid and gid, so that what they write to a read-write /src or to their home
 * belongs to that user on the host. Without sudo, a real root shell stays root (said in the banner), as does
 * `--root` (a cell's steps run as root: `--root` is the way to do exactly what they do).
 *
 * The switch happens inside the container, never on the host: a prelude, run by the container's own /bin/sh as
 * the container's root, adds the user and group to the container's /etc/passwd and /etc/group when the uid or gid
 * is not there yet, fills an empty home from /etc/skel, and then drops to the uid and gid with the container's
 * setpriv (util-linux), or with perl where there is no setpriv. Pure: no I/O.
 */
import { shellQuote } from '../lib/nspawn.js';

export interface ShellUser {
  uid: number;
  gid: number;
  /** The login name inside the container (a conflicting name there makes the prelude pick `nsmatrix-UID`). */
  name: string;
  /** The home directory inside the container: the project's home is mounted there. */
  home: string;
  /** sudo: named by SUDO_UID/SUDO_GID; root: nsmatrix was run by root itself; flag: `--root`. */
  via: 'sudo' | 'root' | 'flag';
}

/** Portable login names (useradd's default rule, without the trailing "$"). */
const NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const ID_RE = /^\d{1,10}$/;
/** Above this an id is not a real account's (65535 and 4294967295 mean "none" to the kernel). */
const MAX_ID = 2 ** 31 - 2;

const ROOT: Omit<ShellUser, 'via'> = { uid: 0, gid: 0, name: 'root', home: '/root' };

function id(text: string | undefined): number | undefined {
  if (text === undefined || !ID_RE.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_ID && value !== 65535 ? value : undefined;
}

/**
 * The user the shell's commands run as: `--root`, else the user sudo names (SUDO_UID, SUDO_GID: the gid defaults to
 * the uid when sudo left it out), else root. A SUDO_UID that is no plain number (or is 0) counts as no sudo at all.
 */
export function shellUser(env: NodeJS.ProcessEnv, options: { root?: boolean } = {}): ShellUser {
  if (options.root) return { ...ROOT, via: 'flag' };
  const uid = id(env.SUDO_UID);
  if (uid === undefined || uid === 0) return { ...ROOT, via: 'root' };
  const gid = id(env.SUDO_GID) ?? uid;
  const name = env.SUDO_USER !== undefined && NAME_RE.test(env.SUDO_USER) && env.SUDO_USER !== 'root' ? env.SUDO_USER : 'user';
  return { uid, gid, name, home: `/home/${name}`, via: 'sudo' };
}

/** What the banner says about the user. */
export function describeUser(user: ShellUser): string {
  if (user.via === 'flag') return 'as root (--root)';
  if (user.via === 'root') return 'as root (nsmatrix was not run through sudo: what you write to /src belongs to root)';
  return `as ${user.name} (uid ${user.uid}, gid ${user.gid})`;
}

/** The interactive shell: the image's bash when it has one, else sh; a login shell, so that ~/.profile is read. */
export const INTERACTIVE = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'];

/**
 * Drops root for uid and gid with perl (perl-base is in every Debian image), for images without setpriv: the
 * supplementary groups first, then gid, then uid (all three of each), checked, then exec.
 */
const PERL_DROP = [
  'use POSIX ();',
  'my ($u, $g, @cmd) = @ARGV;',
  '$) = "$g $g";',
  'POSIX::setgid($g) or die "nsmatrix: cannot change to gid $g: $!\\n";',
  'POSIX::setuid($u) or die "nsmatrix: cannot change to uid $u: $!\\n";',
  'die "nsmatrix: still uid $>\\n" if $< != $u || $> != $u;',
  'exec { $cmd[0] } @cmd or die "nsmatrix: $cmd[0]: $!\\n";',
].join(' ');

/**
 * The script the container runs (`/bin/sh -e`, as the container's root): `command` (or the interactive shell) as
 * `user`, HOME at the user's home, seeded from /etc/skel the first time. For root, only HOME and the seeding. Shell
 * builtins only up to the one exec that switches user: every process started here is start-up time.
 */
export function userScript(user: ShellUser, command: string[]): string {
  const argv = command.length > 0 ? command : INTERACTIVE;
  const lines = [
    `home=${shellQuote(user.home)}`,
    // A home nothing has been written to yet gets the image's skeleton (.bashrc, .profile).
    'empty=1',
    'for f in "$home"/* "$home"/.[!.]* "$home"/..?*; do if [ -e "$f" ] || [ -L "$f" ]; then empty=; break; fi; done',
    'if [ -n "$empty" ] && [ -d /etc/skel ]; then cp -a /etc/skel/. "$home"/ 2>/dev/null || true; fresh=1; fi',
    `set -- ${argv.map(shellQuote).join(' ')}`,
  ];
  if (user.uid === 0) return [...lines, 'export HOME="$home"', 'exec "$@"', ''].join('\n');
  return [
    ...lines,
    `u=${user.uid} g=${user.gid} name=${shellQuote(user.name)}`,
    'if [ -n "${fresh:-}" ]; then chown -R "$u:$g" "$home" 2>/dev/null || true; fi',
    // The uid and gid as the container knows them: added when missing, under another name when the name is taken.
    'found= taken=',
    'if [ -r /etc/group ]; then while IFS=: read -r gn _ gg _; do',
    '  if [ "$gg" = "$g" ]; then found=1; break; fi; if [ "$gn" = "$name" ]; then taken=1; fi',
    'done < /etc/group; fi',
    'if [ -z "$found" ]; then gname=$name; if [ -n "$taken" ]; then gname=nsmatrix-$g; fi; echo "$gname:x:$g:" >> /etc/group || true; fi',
    'n= taken=',
    'if [ -r /etc/passwd ]; then while IFS=: read -r pn _ pu _; do',
    '  if [ "$pu" = "$u" ]; then n=$pn; break; fi; if [ "$pn" = "$name" ]; then taken=1; fi',
    'done < /etc/passwd; fi',
    'if [ -z "$n" ]; then',
    '  n=$name; if [ -n "$taken" ]; then n=nsmatrix-$u; fi',
    '  login=/bin/sh; if [ -x /bin/bash ]; then login=/bin/bash; fi',
    '  echo "$n:x:$u:$g:nsmatrix shell:$home:$login" >> /etc/passwd || true',
    'fi',
    'export HOME="$home" USER="$n" LOGNAME="$n"',
    'if command -v setpriv >/dev/null 2>&1; then exec setpriv --reuid="$u" --regid="$g" --clear-groups -- "$@"; fi',
    `if command -v perl >/dev/null 2>&1; then exec perl -e ${shellQuote(PERL_DROP)} "$u" "$g" "$@"; fi`,
    'echo "nsmatrix: this image has neither setpriv nor perl to run commands as uid $u: use --root" >&2',
    'exit 126',
    '',
  ].join('\n');
}

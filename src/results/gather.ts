/**
 * Gathering result files from inside a cell, in two pure halves. `gatherScript` is a POSIX sh script run in the
 * container itself (its own root and namespaces, through the cell's `exec`): it expands each declared glob with
 * `find` and `grep -E`, keeps regular files only (never a symlink, FIFO, device or directory) and prints each one
 * framed by marker lines carrying a random token, at most `maxFileBytes + 1` bytes of it, at most `maxFiles + 1`
 * files per entry. `readGathered` splits what it printed back into files under strict bounds. The host never opens
 * a container path: a link to a host path can only reach the container's own view of that path.
 */
import { randomBytes } from 'node:crypto';
import type { ResultSpec } from '../matrix/types.js';

export interface GatherLimits {
  /** Files per results entry. */
  maxFiles: number;
  /** Bytes kept per file (the rest is cut, with a warning). */
  maxFileBytes: number;
  /** Bytes of the whole gathered stream kept in memory. */
  maxTotalBytes: number;
}

export const DEFAULT_GATHER_LIMITS: GatherLimits = { maxFiles: 5000, maxFileBytes: 16 * 1024 * 1024, maxTotalBytes: 96 * 1024 * 1024 };

/** The container path a results path names: relative ones are under /src; `./` and repeated slashes dropped. */
export function containerPattern(path: string): string {
  const absolute = path.startsWith('/') ? path : `/src/${path}`;
  return absolute.replace(/\/+/g, '/').replace(/\/(\.\/)+/g, '/').replace(/\/\.$/, '');
}

const GLOB_CHARS = /[*?[]/;

/** The directory `find` starts from: the pattern's leading segments without glob characters. */
export function globBase(pattern: string): string {
  const segments = pattern.split('/');
  const fixed: string[] = [];
  for (const segment of segments.slice(0, -1)) {
    if (GLOB_CHARS.test(segment)) break;
    fixed.push(segment);
  }
  if (!GLOB_CHARS.test(pattern)) return pattern;
  const base = fixed.join('/');
  return base === '' ? '/' : base;
}

/** A POSIX extended regular expression matching the whole path: `**` spans directories, `*` and `?` do not. */
export function globToEre(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      const slashAfter = pattern[i + 2] === '/';
      const atSegmentStart = i === 0 || pattern[i - 1] === '/';
      if (atSegmentStart && slashAfter) {
        out += '(.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else if (ch === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) out += '\\[';
      else {
        let body = pattern.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        out += `[${body.replace(/\\/g, '')}]`;
        i = close;
      }
    } else if ('.+()|{}^$\\'.includes(ch)) out += `\\${ch}`;
    else out += ch;
  }
  return `^${out}$`;
}

const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

export interface GatherPlan {
  script: string;
  token: string;
}

/** The script that prints every declared result file, framed; `token` is fresh for every gathering. */
export function gatherScript(specs: ResultSpec[], limits: GatherLimits = DEFAULT_GATHER_LIMITS, token = randomBytes(12).toString('hex')): GatherPlan {
  const lines = [
    'set +e',
    `T=${token}`,
    'emit() {',
    '  if [ -f "$2" ] && [ ! -L "$2" ]; then',
    '    printf \'\\n@@NSM %s FILE %s %s\\n\' "$T" "$1" "$2"',
    `    head -c ${limits.maxFileBytes + 1} < "$2" 2>/dev/null`,
    '    printf \'\\n@@NSM %s END\\n\' "$T"',
    '  fi',
    '}',
  ];
  specs.forEach((spec, index) => {
    const pattern = containerPattern(spec.path);
    const base = globBase(pattern);
    lines.push(
      `find -H ${shellQuote(base)} \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -print 2>/dev/null` +
        ` | grep -Ex -e ${shellQuote(globToEre(pattern))} | head -n ${limits.maxFiles + 1}` +
        ` | while IFS= read -r f; do emit ${index} "$f"; done`,
    );
  });
  lines.push('printf \'\\n@@NSM %s DONE\\n\' "$T"', 'exit 0');
  return { script: `${lines.join('\n')}\n`, token };
}

export interface GatheredFile {
  /** Index into the step's `results:` entries. */
  entry: number;
  path: string;
  bytes: Buffer;
  /** More than `maxFileBytes`: `bytes` holds the first `maxFileBytes`. */
  truncated: boolean;
}

export interface Gathered {
  files: GatheredFile[];
  warnings: string[];
  /** The script printed its last line: everything it found is here. */
  complete: boolean;
}

/** Collects the script's stdout, keeping at most `maxTotalBytes` (a bounded sink for `exec`'s onOutput). */
export class GatherSink {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflowed = false;
  constructor(private readonly limits: GatherLimits = DEFAULT_GATHER_LIMITS) {}
  write(chunk: Buffer): void {
    const room = this.limits.maxTotalBytes - this.size;
    if (room <= 0) {
      this.overflowed = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.overflowed = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** Splits the framed stream back into files, each held to the limits; what does not fit becomes a warning. */
export function readGathered(stream: Buffer, token: string, specs: ResultSpec[], limits: GatherLimits = DEFAULT_GATHER_LIMITS, overflowed = false): Gathered {
  const marker = Buffer.from(`\n@@NSM ${token} `);
  const files: GatheredFile[] = [];
  const warnings: string[] = [];
  const perEntry = new Map<number, number>();
  let complete = false;
  let at = stream.indexOf(marker);
  while (at !== -1) {
    const headStart = at + marker.length;
    const headEnd = stream.indexOf(0x0a, headStart);
    const head = stream.toString('utf8', headStart, headEnd === -1 ? stream.length : headEnd);
    if (head === 'DONE') {
      complete = true;
      break;
    }
    const file = /^FILE (\d+) (\/.*)$/.exec(head);
    const next = headEnd === -1 ? -1 : stream.indexOf(marker, headEnd);
    if (file && headEnd !== -1) {
      const entry = Number(file[1]);
      const path = file[2]!;
      const ended = next !== -1 && stream.toString('utf8', next + marker.length, next + marker.length + 4) === 'END\n';
      const body = stream.subarray(headEnd + 1, next === -1 ? stream.length : next);
      const count = (perEntry.get(entry) ?? 0) + 1;
      perEntry.set(entry, count);
      if (entry >= specs.length) warnings.push(`${path}: gathered for no declared entry (ignored)`);
      else if (count > limits.maxFiles) {
        if (count === limits.maxFiles + 1) warnings.push(`${specs[entry]!.path}: more than ${limits.maxFiles} files match; the first ${limits.maxFiles} are read`);
      } else {
        const truncated = body.length > limits.maxFileBytes || !ended;
        files.push({ entry, path, bytes: Buffer.from(body.subarray(0, limits.maxFileBytes)), truncated });
        if (body.length > limits.maxFileBytes) warnings.push(`${path}: larger than ${limits.maxFileBytes} bytes; only the first ${limits.maxFileBytes} are read`);
        else if (!ended) warnings.push(`${path}: cut short (gathering stopped while it was printed)`);
      }
    }
    at = next;
  }
  if (overflowed) warnings.push(`more than ${limits.maxTotalBytes} bytes of result files in one step; the rest is not read`);
  if (!complete && !overflowed) warnings.push('gathering did not finish: some result files may be missing');
  files.sort((a, b) => a.entry - b.entry || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  specs.forEach((spec, index) => {
    if (complete && !perEntry.has(index)) warnings.push(`${spec.path}: no regular file matches`);
  });
  return { files, warnings, complete };
}

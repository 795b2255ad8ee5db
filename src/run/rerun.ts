/** Copy-paste commands that rerun exactly one cell, with every option that changes its result. */
import { accessSync, closeSync, constants, openSync, readSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CELL_ID_KEY } from '../matrix/check.js';
import type { Cell } from '../matrix/types.js';

/** POSIX shell quoting: bare when safe, else single quotes with embedded quotes spliced. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface RerunContext {
  /** How to start nsmatrix: `nsmatrix` when that is on PATH (and is this nsmatrix), else `node /abs/main.js`. */
  command: string[];
  /** Absolute matrix file. */
  file: string;
  /** Options that change the result, as argv words (`--state-dir`, `--output`, `--reporter`, ...). */
  options: string[];
}

/** The program a `nsmatrix` wrapper (written by scripts/setup-host.sh) runs, from its second line. */
function wrapperTarget(path: string): string | undefined {
  const head = Buffer.alloc(1024);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const text = head.subarray(0, readSync(fd, head, 0, head.length, 0)).toString('utf8');
    return /^#!\/bin\/sh\n# nsmatrix-wrapper: (\/.*)\n/.exec(text)?.[1];
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The words that start this nsmatrix again: `nsmatrix` if the `nsmatrix` on PATH is this very program (the
 * wrapper scripts/setup-host.sh installs, or a symlink such as `npm link` makes), else node and the script, absolute.
 */
export function selfCommand(script: string, env: NodeJS.ProcessEnv = process.env, node = process.execPath): string[] {
  let self: string;
  try {
    self = realpathSync(script);
  } catch {
    return [node, script];
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'nsmatrix');
    try {
      accessSync(candidate, constants.X_OK);
      if (realpathSync(candidate) === self || wrapperTarget(candidate) === self) return ['nsmatrix'];
      break; // the first nsmatrix on PATH is another program: never name it
    } catch {
      // not in this directory
    }
  }
  return [node, self];
}

/**
 * `nsmatrix run FILE --filter nsmatrix-cell=<id> OPTIONS`: the cell id selects exactly this cell, also one added
 * by `include` whose values are a superset of another cell's. Without a context (library use, tests), the
 * values themselves: `nsmatrix run FILE --filter K=V...`.
 */
export function rerunCommand(fileArg: string | RerunContext, cell: Pick<Cell, 'values'> & Partial<Pick<Cell, 'id'>>): string {
  if (typeof fileArg === 'string' || cell.id === undefined) {
    const file = typeof fileArg === 'string' ? fileArg : fileArg.file;
    const filters = Object.entries(cell.values).map(([k, v]) => `--filter ${shellQuote(`${k}=${String(v)}`)}`);
    return ['nsmatrix run', shellQuote(file), ...filters].join(' ');
  }
  const { command, file, options } = fileArg;
  return [...command, 'run', file, '--filter', `${CELL_ID_KEY}=${cell.id}`, ...options].map(shellQuote).join(' ');
}

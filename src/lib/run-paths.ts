/**
 * `--output` and `--state-dir` as the run and shell commands use them: where each came from (for one-line
 * errors), the places an output directory must never be, and making the output directory.
 */
import { lstatSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { isWithin, pseudoFilesystemOf, realOrResolved } from './host-paths.js';
import { createExclusive, ensureDirectory } from './private-dir.js';

/** Written (exclusive create) into an output directory nsmatrix made itself. */
export const OUTPUT_MARKER = '.nsmatrix-output';

/** How the user named the state directory: `--state-dir X`, `NSMATRIX_STATE_DIR=X`, or the default. */
export function stateDirLabel(flag: string | undefined, resolved: string): string {
  if (flag !== undefined) return `--state-dir ${flag}`;
  if (process.env.NSMATRIX_STATE_DIR !== undefined) return `NSMATRIX_STATE_DIR=${process.env.NSMATRIX_STATE_DIR}`;
  return `state directory ${resolved}`;
}

/** Refuses a state directory that is `/` or in /proc, /sys or /dev (checked through symlinks). */
export function checkStateDir(stateDir: string, label: string): void {
  const real = realOrResolved(stateDir);
  if (real === '/') throw new UsageError(`nsmatrix: ${label}: refusing to use the host's root directory as the state directory`);
  const pseudo = pseudoFilesystemOf(real);
  if (pseudo) throw new UsageError(`nsmatrix: ${label}: ${real} is in ${pseudo} (the host kernel's interface), not a place for files`);
}

/**
 * The absolute output directory for `--output ARG`, or a UsageError naming `--output`: never `/`, the state
 * directory, a directory containing either, a directory inside the state directory, or anything in /proc, /sys
 * or /dev (checked through symlinks, also for parts that do not exist yet).
 */
export function checkOutputDir(arg: string, stateDir: string): string {
  const fail = (why: string): never => {
    throw new UsageError(`nsmatrix: --output ${arg}: ${why}`);
  };
  if (arg.trim() === '') fail('must not be empty');
  const output = resolve(arg);
  const real = realOrResolved(output);
  const state = realOrResolved(stateDir);
  if (real === '/') fail("refusing to write into the host's root directory");
  const pseudo = pseudoFilesystemOf(real);
  if (pseudo) fail(`${real} is in ${pseudo} (the host kernel's interface), not a place for results`);
  if (isWithin(state, real)) fail(`refusing to write into the state directory ${state} or a directory containing it`);
  if (isWithin(real, state)) fail(`refusing to write inside the state directory ${state}`);
  try {
    if (!statSync(output).isDirectory()) fail(`${output} exists and is not a directory`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') fail(`a component of ${output} is not a directory`);
    if (code !== 'ENOENT') fail(`cannot use ${output}: ${code ?? String(error)}`);
  }
  return output;
}

/**
 * Makes the output directory (0755: reports are for reading) and returns its real path; a directory nsmatrix
 * made itself gets OUTPUT_MARKER. Problems are one-line UsageErrors naming `--output`.
 */
export function prepareOutputDir(outputDir: string, arg: string): string {
  const existed = lstatSync(outputDir, { throwIfNoEntry: false }) !== undefined;
  const real = ensureDirectory(outputDir, { mode: 0o755, label: `--output ${arg}` });
  if (!existed) createExclusive(join(real, OUTPUT_MARKER));
  return real;
}

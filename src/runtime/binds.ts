/**
 * Extra `bind:` entries are user input that mounts host paths into a container running as root: refuse the
 * ones that would expose or let a step destroy the host, nsmatrix's own state, or the results being written.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, posix, relative } from 'node:path';
import { UsageError } from '../errors.js';
import type { BindSpec } from '../matrix/types.js';

/** `a` is `b` or lies below it. */
function isWithin(a: string, b: string): boolean {
  const rel = relative(b, a);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return posix.resolve(path);
  }
}

/** Parses `host:container[:ro|:rw]`. */
export function parseBind(text: string, where = 'bind'): BindSpec {
  const parts = text.split(':');
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1] || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new UsageError(`${where}: expected HOST:CONTAINER[:ro], got "${text}"`);
  }
  return { host: parts[0], container: parts[1], readOnly: mode === 'ro' };
}

/** Throws UsageError for a dangerous bind; returns the binds with host paths resolved through symlinks. */
export function validateBinds(binds: BindSpec[], dirs: { stateDir: string; outputDir: string }): BindSpec[] {
  const stateDir = realOrResolved(dirs.stateDir);
  const outputDir = realOrResolved(dirs.outputDir);
  return binds.map((bind) => {
    const label = `bind "${bind.host}:${bind.container}"`;
    if (!isAbsolute(bind.host)) throw new UsageError(`${label}: host path must be absolute`);
    if (!existsSync(bind.host)) throw new UsageError(`${label}: host path does not exist`);
    const host = realpathSync(bind.host);
    if (host === '/') throw new UsageError(`${label}: refusing to bind the host's root directory`);
    if (isWithin(stateDir, host) || isWithin(host, stateDir)) {
      throw new UsageError(`${label}: refusing to bind nsmatrix's state directory (${stateDir}) or a directory containing it`);
    }
    // The output dir itself and its ancestors would let a step rewrite the results being written.
    if (isWithin(outputDir, host)) {
      throw new UsageError(`${label}: refusing to bind the output directory (${outputDir}) or a directory containing it`);
    }
    if (!isAbsolute(bind.container)) throw new UsageError(`${label}: container path must be absolute`);
    if (bind.container.split('/').includes('..')) throw new UsageError(`${label}: container path must not contain ".."`);
    const container = posix.normalize(bind.container).replace(/\/+$/, '');
    if (container === '') throw new UsageError(`${label}: refusing to bind over the container's root directory`);
    return { host, container, readOnly: bind.readOnly };
  });
}

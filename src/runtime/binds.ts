/**
 * Every host path that reaches a container is user input mounted into a container running as root: the source
 * tree (in every `source:` mode), `bind:` entries, `images: X: path:`/`machine:` roots and the artifacts directory.
 * Refuse the ones that would expose or let a step destroy the host, nsmatrix's own state, or the results being
 * written (src/lib/host-paths.ts says which), after resolving symlinks.
 */
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import { UsageError } from '../errors.js';
import { exposureProblem, realOrResolved, type GuardedDirs } from '../lib/host-paths.js';
import { MACHINES_DIR } from '../images/builders/directory.js';
import type { BindSpec, MatrixModel, SourcePosition } from '../matrix/types.js';

/** Parses `host:container[:ro|:rw]`. */
export function parseBind(text: string, where = 'bind'): BindSpec {
  const parts = text.split(':');
  const mode = parts.length === 3 ? parts[2] : undefined;
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1] || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new UsageError(`${where}: expected HOST:CONTAINER[:ro], got "${text}"`);
  }
  return { host: parts[0], container: parts[1], readOnly: mode === 'ro' };
}

const guarded = (dirs: { stateDir: string; outputDir: string }): GuardedDirs => ({
  stateDir: realOrResolved(dirs.stateDir),
  outputDir: realOrResolved(dirs.outputDir),
});

/** The problem with one bind, or the bind with its host path resolved through symlinks. */
function checkBind(bind: BindSpec, dirs: GuardedDirs): { problem: string } | { bind: BindSpec } {
  const label = `bind "${bind.host}:${bind.container}"`;
  if (!isAbsolute(bind.host)) return { problem: `${label}: host path must be absolute` };
  if (!existsSync(bind.host)) return { problem: `${label}: host path does not exist` };
  const host = realpathSync(bind.host);
  // Binds are refused as a whole whether or not `:ro`: a read-only bind of the output's parent still shows a step
  // the other runs' logs, and nobody needs one.
  const problem = exposureProblem(host, dirs);
  if (problem) return { problem: `${label}: ${problem}` };
  if (!isAbsolute(bind.container)) return { problem: `${label}: container path must be absolute` };
  if (bind.container.split('/').includes('..')) return { problem: `${label}: container path must not contain ".."` };
  const container = posix.normalize(bind.container).replace(/\/+$/, '');
  if (container === '') return { problem: `${label}: refusing to bind over the container's root directory` };
  return { bind: { host, container, readOnly: bind.readOnly } };
}

/**
 * Throws UsageError for a dangerous bind; returns the binds with host paths resolved through symlinks.
 * `where(index)` prefixes each message (default `nsmatrix: `).
 */
export function validateBinds(binds: BindSpec[], dirs: { stateDir: string; outputDir: string }, where: (index: number) => string = () => 'nsmatrix: '): BindSpec[] {
  const resolved = guarded(dirs);
  return binds.map((bind, index) => {
    const checked = checkBind(bind, resolved);
    if ('problem' in checked) throw new UsageError(`${where(index)}${checked.problem}`);
    return checked.bind;
  });
}

/**
 * The source tree mounted at /src: refused like a bind. Overlay and ro sources are only read by the container,
 * so a source tree containing the output directory (the usual `nsmatrix run` in a project directory) is fine
 * there; `source: rw` would let a step rewrite the results, so it is refused.
 */
export function sourceProblem(sourceDir: string, mode: MatrixModel['source'], dirs: { stateDir: string; outputDir: string }): string | undefined {
  const problem = exposureProblem(realOrResolved(sourceDir), guarded(dirs), { readOnly: mode !== 'rw' });
  const hint = mode === 'rw' && problem?.includes('output directory') ? ' (choose an --output outside it, or source: overlay)' : '';
  return problem && `source: ${mode}: the source directory ${sourceDir}: ${problem}${hint}`;
}

/** A directory used as a container's root (`path:`, `machine:`): refused like a writable bind. */
export function imageRootProblem(root: string, dirs: { stateDir: string; outputDir: string }): string | undefined {
  return exposureProblem(realOrResolved(root), guarded(dirs));
}

/**
 * Checks every host path a matrix exposes to its containers before anything starts: the source directory,
 * `bind:` entries and `images:` roots. Throws one UsageError with a `FILE:LINE:COL: message` line per problem;
 * returns the model with binds and the source directory resolved through symlinks (what the containers get).
 */
export function checkMatrixHostPaths(model: MatrixModel, dirs: { stateDir: string; outputDir: string }): MatrixModel {
  const resolved = guarded(dirs);
  const file = model.origin?.displayFile ?? model.file;
  const positions = model.origin?.positions ?? {};
  const at = (...path: (string | number)[]): SourcePosition => {
    for (let length = path.length; length >= 0; length--) {
      const pos = positions[JSON.stringify(path.slice(0, length))];
      if (pos) return pos;
    }
    return { line: 1, col: 1 };
  };
  const problems: { pos: SourcePosition; message: string }[] = [];

  const source = sourceProblem(model.dir, model.source, resolved);
  if (source) problems.push({ pos: at('source'), message: source });

  const binds: BindSpec[] = [];
  model.bind.forEach((bind, index) => {
    const checked = checkBind(bind, resolved);
    if ('problem' in checked) problems.push({ pos: at('bind', index), message: checked.problem });
    else binds.push(checked.bind);
  });

  for (const [name, spec] of Object.entries(model.images)) {
    const roots: [string, string | undefined][] = [
      ['path', spec.path],
      ['machine', spec.machine === undefined ? undefined : join(MACHINES_DIR, spec.machine)],
    ];
    for (const [key, root] of roots) {
      if (root === undefined) continue;
      const problem = imageRootProblem(root, resolved);
      if (problem) problems.push({ pos: at('images', name, key), message: `images: ${name}: ${key}: ${root}: ${problem}` });
    }
  }

  if (problems.length > 0) {
    problems.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
    throw new UsageError(problems.map((p) => `${file}:${p.pos.line}:${p.pos.col}: ${p.message}`));
  }
  return { ...model, dir: realOrResolved(model.dir), bind: binds };
}

/**
 * Matrix file -> MatrixModel. Every problem (YAML syntax, duplicate keys, schema, cross-field, expansion) is
 * collected and thrown as one UsageError whose lines are `FILE:LINE:COL: message`.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { parseDuration } from '../lib/duration.js';
import { crossCheck, nulByteProblems } from './check.js';
import { diagnoseIssue, formatDiagnostics } from './diagnostics.js';
import { HARD_COMBINATION_LIMIT, planCells, productSize } from './expand.js';
import { cachedModel, keepModel } from './model-cache.js';
import { matrixSchemas, type MatrixFile } from './schema.js';
import { parseYaml, type Diagnostic, type SourceMap } from './source-map.js';
import type { BindSpec, CacheSpec, ImageSpec, MatrixModel, MatrixValue, ShellSpec, SourcePosition, StepSpec } from './types.js';

export const DEFAULT_MATRIX_FILES = ['nsmatrix.yaml', 'nsmatrix.yml'] as const;
const DEFAULT_TIMEOUT_MS = 30 * 60_000;
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * The matrix file to use: `explicit` (a file, or a directory holding a default-named file), else `nsmatrix.yaml`
 * or `nsmatrix.yml` in `cwd`. Returned as the user would write it (relative stays relative).
 */
export function findMatrixFile(cwd: string, explicit?: string): string {
  if (explicit !== undefined) {
    const full = resolve(cwd, explicit);
    if (!existsSync(full)) throw new UsageError(`${explicit}: matrix file not found`);
    if (!statSync(full).isDirectory()) return explicit;
    return defaultIn(full, explicit);
  }
  return defaultIn(resolve(cwd), resolve(cwd) === process.cwd() ? '' : cwd);
}

function defaultIn(dir: string, shown: string): string {
  const present = DEFAULT_MATRIX_FILES.filter((name) => existsSync(join(dir, name)));
  const show = (name: string) => (shown === '' ? name : join(shown, name));
  if (present.length === 0) {
    throw new UsageError(`${show(DEFAULT_MATRIX_FILES[0])}: matrix file not found (nor ${DEFAULT_MATRIX_FILES[1]}; pass a file)`);
  }
  if (present.length > 1) {
    throw new UsageError(`${show(present[0]!)}: both ${present.join(' and ')} exist; pass the one to use`);
  }
  return show(present[0]!);
}

export async function loadMatrix(file: string): Promise<MatrixModel> {
  let text: string;
  try {
    const buffer = await readFile(file);
    if (buffer.length > MAX_FILE_BYTES) throw new UsageError(`${file}: larger than ${MAX_FILE_BYTES} bytes; not a matrix file`);
    text = buffer.toString('utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'matrix file not found' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(error)})`;
    throw new UsageError(`${file}: ${reason}`);
  }
  const cached = cachedModel(text, file);
  if (cached) return cached;
  const model = parseMatrix(text, file);
  keepModel(text, file, model);
  return model;
}

/** Pure apart from resolving `file` to an absolute path. `file` is used as given in messages. */
export function parseMatrix(text: string, file: string): MatrixModel {
  const fail = (problems: Diagnostic[]): never => {
    throw new UsageError(formatDiagnostics(file, problems));
  };
  const parsed = parseYaml(text);
  if (parsed.fatal) fail(parsed.problems);
  const { data, map } = parsed;
  if (data === null || data === undefined) fail([...parsed.problems, { pos: { line: 1, col: 1 }, message: 'the matrix file is empty' }]);
  if (typeof data !== 'object' || Array.isArray(data)) {
    fail([...parsed.problems, { pos: map.valueAt([]), message: 'expected a mapping of keys (name, matrix, steps, ...)' }]);
  }

  const checked: Diagnostic[] = [];
  const result = matrixSchemas().fileSchema.safeParse(data);
  if (!result.success) for (const issue of result.error.issues) checked.push(...diagnoseIssue(issue, data, map));
  checked.push(...crossCheck(data, map));
  // A NUL byte breaks most checks of the value holding it: say it once, not again as an invalid name or bind.
  const nulBytes = nulByteProblems(data, map);
  const nulAt = new Set(nulBytes.map(({ pos }) => `${pos.line}:${pos.col}`));
  const problems = [...parsed.problems, ...nulBytes, ...checked.filter(({ pos }) => !nulAt.has(`${pos.line}:${pos.col}`))];
  if (!result.success || problems.length > 0) fail(problems);

  const model = toModel(result.data!, file, map);
  // Expanding now reports include entries without an image and bad interpolated image names with the rest;
  // the cell limit is applied later, where --max-cells is known. So is the size limit: a product too large to
  // expand is reported then (expanding it here, with no limit, would exhaust memory).
  if (productSize(model.axes) <= HARD_COMBINATION_LIMIT) {
    const { problems: expansionProblems } = planCells(model, Number.MAX_SAFE_INTEGER);
    if (expansionProblems.length > 0) fail(expansionProblems);
  }
  return model;
}

function toModel(raw: MatrixFile, file: string, map: SourceMap): MatrixModel {
  const absolute = resolve(file);
  const dir = dirname(absolute);
  const { include, exclude, ...axisMap } = raw.matrix;
  const stringEnv = (env: Record<string, MatrixValue> | undefined): Record<string, string> =>
    Object.fromEntries(Object.entries(env ?? {}).map(([name, value]) => [name, String(value)]));

  const positions: Record<string, SourcePosition> = {};
  for (const [key, place] of map.places) positions[key] = place.key ?? place.value;

  const model: MatrixModel = {
    origin: { displayFile: file, positions },
    file: absolute,
    dir,
    name: raw.name ?? basename(file, extname(file)),
    axes: Object.entries(axisMap).map(([key, values]) => ({ key, values: values as MatrixValue[] })),
    include: include ?? [],
    exclude: exclude ?? [],
    images: Object.fromEntries(Object.entries(raw.images ?? {}).map(([name, spec]) => [name, toImageSpec(spec)])),
    packages: raw.packages ?? [],
    source: raw.source ?? 'overlay',
    env: stringEnv(raw.env),
    boot: raw.boot ?? false,
    network: raw.network ?? 'host',
    privateUsers: raw['private-users'] ?? false,
    failFast: raw['fail-fast'] ?? true,
    timeoutMs: raw.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(raw.timeout)!,
    retries: raw.retries ?? 0,
    continueOnError: raw['continue-on-error'] ?? false,
    bind: (raw.bind ?? []).map((text) => toBind(text, dir)),
    nspawn: raw.nspawn ?? [],
    steps: raw.steps.map((step): StepSpec => {
      const spec: StepSpec = { name: step.name, run: step.run, env: stringEnv(step.env) };
      if (step.timeout !== undefined) spec.timeoutMs = parseDuration(step.timeout)!;
      if (step['continue-on-error'] !== undefined) spec.continueOnError = step['continue-on-error'];
      if (step.retries !== undefined) spec.retries = step.retries;
      if (step.results !== undefined && step.results.length > 0) spec.results = step.results.map((r) => ({ format: r.format, path: r.path }));
      if (step.cache !== undefined && step.cache.length > 0) spec.cache = step.cache.map(toCacheSpec);
      return spec;
    }),
  };
  if (raw.setup !== undefined) model.setup = raw.setup;
  if (raw['max-parallel'] !== undefined) model.maxParallel = raw['max-parallel'];
  if (raw.cache !== undefined && raw.cache.length > 0) model.cache = raw.cache.map(toCacheSpec);
  if (raw['cache-packages'] !== undefined) model.cachePackages = raw['cache-packages'];
  if (raw.shell !== undefined) model.shell = toShellSpec(raw.shell, stringEnv);
  return model;
}

function toShellSpec(raw: NonNullable<MatrixFile['shell']>, stringEnv: (env: Record<string, MatrixValue> | undefined) => Record<string, string>): ShellSpec {
  const spec: ShellSpec = { packages: raw.packages ?? [], env: stringEnv(raw.env) };
  if (raw.image !== undefined) spec.image = raw.image;
  if (raw.setup !== undefined) spec.setup = raw.setup;
  if (raw.source !== undefined) spec.source = raw.source;
  return spec;
}

function toCacheSpec(raw: NonNullable<MatrixFile['cache']>[number]): CacheSpec {
  if (typeof raw === 'string') return { path: raw };
  return raw.key === undefined ? { path: raw.path } : { path: raw.path, key: raw.key };
}

function toImageSpec(raw: NonNullable<MatrixFile['images']>[string]): ImageSpec {
  const spec: ImageSpec = { packages: raw.packages ?? [] };
  if (raw.setup !== undefined) spec.setup = raw.setup;
  if (raw.mirror !== undefined) spec.mirror = raw.mirror;
  if (raw.pull !== undefined) spec.pull = { url: raw.pull.url, sha256: raw.pull.sha256.toLowerCase() };
  if (raw.path !== undefined) spec.path = raw.path;
  if (raw.machine !== undefined) spec.machine = raw.machine;
  if (raw['allow-expired-release'] !== undefined) spec.allowExpiredRelease = raw['allow-expired-release'];
  if (raw.oci !== undefined) spec.oci = raw.oci;
  if (raw.insecure !== undefined) spec.insecure = raw.insecure;
  return spec;
}

/** A relative host path is relative to the matrix file's directory, like `source`. */
function toBind(text: string, dir: string): BindSpec {
  const [host, container, option] = text.split(':') as [string, string, string | undefined];
  return { host: isAbsolute(host) ? host : resolve(dir, host), container, readOnly: option === 'ro' };
}

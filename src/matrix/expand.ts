/**
 * Matrix expansion, following GitHub Actions' documented `strategy.matrix` algorithm: the Cartesian product of the
 * axes in declaration order (first axis slowest), minus every combination an `exclude` entry partially matches,
 * then each `include` entry in order. Pure.
 */
import { UsageError } from '../errors.js';
import { cellIds } from './cell-id.js';
import { matrixEnvName } from './check.js';
import { interpolate, resolveFlag } from './expressions.js';
import { imageNameProblem } from './schema.js';
import { pathKey, type Diagnostic, type PathSegment } from './source-map.js';
import { formatDiagnostics } from './diagnostics.js';
import type { Axis, Cell, CellStep, MatrixModel, MatrixValue, SourcePosition } from './types.js';

export const DEFAULT_MAX_CELLS = 256;
/** Above this many raw combinations expansion is refused before it is attempted (memory, not policy). */
const HARD_COMBINATION_LIMIT = 100_000;

export type Values = Record<string, MatrixValue>;

export interface Combination {
  values: Values;
  /** The `include` entry that created this combination, when it was not one of the product's. */
  fromInclude?: number;
}

export function productSize(axes: readonly Axis[]): number {
  return axes.length === 0 ? 0 : axes.reduce((size, axis) => size * axis.values.length, 1);
}

const matches = (values: Values, partial: Values): boolean =>
  Object.entries(partial).every(([key, value]) => Object.hasOwn(values, key) && values[key] === value);

/** Values compare strictly (`16` and `"16"` differ), as YAML typed them. */
export function expandCombinations(axes: readonly Axis[], exclude: readonly Values[], include: readonly Values[]): Combination[] {
  let product: Values[] = axes.length === 0 ? [] : [{}];
  for (const axis of axes) {
    product = product.flatMap((partial) => axis.values.map((value) => ({ ...partial, [axis.key]: value })));
  }
  const originals = product
    .filter((values) => !exclude.some((entry) => matches(values, entry)))
    .map((values) => ({ values, originalKeys: new Set(Object.keys(values)) }));

  const added: Combination[] = [];
  include.forEach((entry, index) => {
    let extended = false;
    for (const original of originals) {
      // An entry extends a combination when it overwrites none of its original values; values added by earlier
      // entries may be overwritten.
      const overwritesOriginal = Object.entries(entry).some(
        ([key, value]) => original.originalKeys.has(key) && original.values[key] !== value,
      );
      if (overwritesOriginal) continue;
      Object.assign(original.values, entry);
      extended = true;
    }
    if (!extended) added.push({ values: { ...entry }, fromInclude: index });
  });
  return [...originals.map(({ values }) => ({ values })), ...added];
}

/** `debian:trixie [cc=gcc, experimental=true]`: non-image values in axis order, then keys added by include. */
export function cellLabel(image: string, values: Readonly<Values>): string {
  const rest = Object.entries(values).filter(([key]) => key !== 'image');
  return rest.length === 0 ? image : `${image} [${rest.map(([key, value]) => `${key}=${String(value)}`).join(', ')}]`;
}

export interface Expansion {
  cells: Cell[];
  problems: Diagnostic[];
}

/** Expansion that reports instead of throwing: the loader uses it to validate, `expandMatrix` to run. */
export function planCells(model: MatrixModel, maxCells = DEFAULT_MAX_CELLS): Expansion {
  const problems: Diagnostic[] = [];
  const positionOf = (path: PathSegment[]): SourcePosition => findPosition(model, path);
  const size = productSize(model.axes);
  const hardLimit = Math.max(HARD_COMBINATION_LIMIT, maxCells);
  if (size > hardLimit) {
    problems.push({
      pos: positionOf(['matrix']),
      message: `matrix: the axes multiply to ${size} combinations, more than ${hardLimit} (remove values or axes)`,
    });
    return { cells: [], problems };
  }
  const combinations = expandCombinations(model.axes, model.exclude, model.include);
  if (combinations.length === 0) {
    problems.push({ pos: positionOf(['matrix']), message: 'matrix: expands to no cells (every combination is excluded)' });
  } else if (combinations.length > maxCells) {
    problems.push({
      pos: positionOf(['matrix']),
      message: `matrix: expands to ${combinations.length} cells, more than the limit of ${maxCells} (raise it with --max-cells)`,
    });
  }

  const prepared: { values: Values; image: string }[] = [];
  for (const combination of combinations) {
    const where = combination.fromInclude === undefined ? ['matrix'] : ['matrix', 'include', combination.fromInclude];
    const raw = combination.values.image;
    if (raw === undefined) {
      problems.push({
        pos: positionOf(where),
        message: `${where.length > 1 ? `matrix.include[${combination.fromInclude}]` : 'matrix'}: adds a cell without an "image"`,
      });
      continue;
    }
    const image = interpolate(String(raw), combination.values);
    const problem = imageNameProblem(image);
    if (problem) {
      problems.push({ pos: positionOf(imagePath(model, combination, String(raw))), message: `image ${JSON.stringify(String(raw))}: ${problem}` });
      continue;
    }
    prepared.push({ values: { ...combination.values, image }, image });
  }
  if (problems.length > 0) return { cells: [], problems };

  const ids = cellIds(prepared.map(({ values }) => values));
  const labels = uniqueLabels(prepared.map(({ image, values }) => cellLabel(image, values)));
  const cells = prepared.map(({ values, image }, index): Cell => ({
    id: ids[index]!,
    name: labels[index]!,
    image,
    values,
    continueOnError: resolveFlag(model.continueOnError, values),
    steps: model.steps.map((step, stepIndex): CellStep => ({
      index: stepIndex,
      name: interpolate(step.name, values),
      run: interpolate(step.run, values),
      timeoutMs: step.timeoutMs ?? model.timeoutMs,
      retries: step.retries ?? model.retries,
      continueOnError: resolveFlag(step.continueOnError, values),
      env: { ...interpolateAll(model.env, values), ...interpolateAll(step.env, values) },
    })),
  }));
  return { cells, problems };
}

/** The cells of a model; a UsageError (every problem, positioned) when it cannot be expanded. */
export function expandMatrix(model: MatrixModel, options: { maxCells?: number } = {}): Cell[] {
  const { cells, problems } = planCells(model, options.maxCells ?? DEFAULT_MAX_CELLS);
  if (problems.length > 0) throw new UsageError(formatDiagnostics(model.origin?.displayFile ?? model.file, problems));
  return cells;
}

/**
 * The full environment of a cell's steps (before each step's own `env`): the matrix `env`, `MATRIX_<KEY>` for
 * every value, `CI=true` and `NSMATRIX_CELL=<id>`. The matrix `env` may override `CI`, not the matrix values.
 */
export function cellEnvironment(cell: Cell, model: MatrixModel): Record<string, string> {
  const env: Record<string, string> = { CI: 'true', ...interpolateAll(model.env, cell.values) };
  for (const [key, value] of Object.entries(cell.values)) env[matrixEnvName(key)] = String(value);
  env.NSMATRIX_CELL = cell.id;
  return env;
}

function interpolateAll(env: Readonly<Record<string, string>>, values: Readonly<Values>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, interpolate(value, values)]));
}

function uniqueLabels(labels: string[]): string[] {
  const taken = new Set<string>();
  return labels.map((label) => {
    let candidate = label;
    for (let n = 2; taken.has(candidate); n++) candidate = `${label} #${n}`;
    taken.add(candidate);
    return candidate;
  });
}

function imagePath(model: MatrixModel, combination: Combination, raw: string): PathSegment[] {
  if (combination.fromInclude !== undefined) return ['matrix', 'include', combination.fromInclude, 'image'];
  const axisIndex = model.axes.find((axis) => axis.key === 'image')?.values.indexOf(raw) ?? -1;
  return axisIndex >= 0 ? ['matrix', 'image', axisIndex] : ['matrix'];
}

function findPosition(model: MatrixModel, path: PathSegment[]): SourcePosition {
  const positions = model.origin?.positions ?? {};
  for (let length = path.length; length >= 0; length--) {
    const pos = positions[pathKey(path.slice(0, length))];
    if (pos) return pos;
  }
  return { line: 1, col: 1 };
}

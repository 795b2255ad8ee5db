/**
 * Matrix expansion, following GitHub Actions' documented `strategy.matrix` algorithm: the Cartesian product of the
 * axes in declaration order (first axis slowest), minus every combination an `exclude` entry partially matches,
 * then each `include` entry in order. Pure.
 */
import { UsageError } from '../errors.js';
import { hostArch } from '../lib/arch.js';
import { cellIds } from './cell-id.js';
import { ARCH_KEY, matrixEnvName } from './check.js';
import { interpolate, resolveFlag } from './expressions.js';
import { imageNameProblem } from './schema.js';
import { pathKey, type Diagnostic, type PathSegment } from './source-map.js';
import { formatDiagnostics } from './diagnostics.js';
import type { Axis, Cell, CellStep, MatrixModel, MatrixValue, SourcePosition } from './types.js';

export const DEFAULT_MAX_CELLS = 256;
/** Above this many raw combinations expansion is refused before it is attempted (memory, not policy). */
export const HARD_COMBINATION_LIMIT = 100_000;

export type Values = Record<string, MatrixValue>;

export interface Combination {
  values: Values;
  /** The `include` entry that created this combination, when it was not one of the product's. */
  fromInclude?: number;
}

export function productSize(axes: readonly Axis[]): number {
  return axes.length === 0 ? 0 : axes.reduce((size, axis) => size * axis.values.length, 1);
}

/**
 * Above this many combinations visited while applying exclude and include entries, expansion is refused: the work
 * a file can ask for must stay small whatever its size (a matrix of 100,000 combinations and thousands of entries).
 */
export const EXPANSION_VISIT_LIMIT = 20_000_000;

/** What expansion cost: combinations visited by exclude and include entries (each entry only visits its matches). */
export interface ExpansionStats {
  visits: number;
}

/** Thrown by `expandCombinations` when its entries would visit more than EXPANSION_VISIT_LIMIT combinations. */
export class ExpansionTooCostly extends Error {
  constructor(readonly visits: number) {
    super(`include and exclude entries would visit ${visits} combinations, more than ${EXPANSION_VISIT_LIMIT}`);
  }
}

/**
 * The product indices a partial entry matches, without looking at the other combinations: the entry fixes some
 * axes to the positions holding its values (strict equality, so several positions when an axis repeats a value),
 * the other axes range freely. `undefined` when a key is no axis or a value is on no axis: it matches nothing.
 */
class ProductIndex {
  private readonly strides: number[];
  private readonly axisOf = new Map<string, number>();
  /** Per axis: the positions of each value. A Map key compares like `===` except NaN, which matches nothing. */
  private readonly positions: Map<MatrixValue, number[]>[];
  readonly size: number;

  constructor(private readonly axes: readonly Axis[]) {
    this.strides = axes.map(() => 1);
    for (let i = axes.length - 2; i >= 0; i--) this.strides[i] = this.strides[i + 1]! * axes[i + 1]!.values.length;
    this.size = productSize(axes);
    this.positions = axes.map((axis, i) => {
      this.axisOf.set(axis.key, i);
      const byValue = new Map<MatrixValue, number[]>();
      axis.values.forEach((value, position) => {
        const list = byValue.get(value);
        if (list) list.push(position);
        else byValue.set(value, [position]);
      });
      return byValue;
    });
  }

  /** Allowed positions per axis; `null` means every position. */
  choices(entry: Values, axisKeysOnly: boolean): (number[] | null)[] | undefined {
    const choices: (number[] | null)[] = this.axes.map(() => null);
    for (const [key, value] of Object.entries(entry)) {
      const axis = this.axisOf.get(key);
      if (axis === undefined) {
        if (axisKeysOnly) continue;
        return undefined;
      }
      const positions = Number.isNaN(value) ? undefined : this.positions[axis]!.get(value);
      if (positions === undefined) return undefined;
      choices[axis] = positions;
    }
    return choices;
  }

  count(choices: readonly (number[] | null)[]): number {
    return choices.reduce((n, allowed, axis) => n * (allowed?.length ?? this.axes[axis]!.values.length), 1);
  }

  /** Calls `visit` with every matching product index, in increasing order. */
  forEach(choices: readonly (number[] | null)[], visit: (index: number) => void): void {
    const walk = (axis: number, base: number): void => {
      if (axis === this.axes.length) {
        visit(base);
        return;
      }
      const stride = this.strides[axis]!;
      const allowed = choices[axis];
      if (allowed) for (const position of allowed) walk(axis + 1, base + position * stride);
      else for (let position = 0; position < this.axes[axis]!.values.length; position++) walk(axis + 1, base + position * stride);
    };
    if (this.size > 0) walk(0, 0);
  }
}

/**
 * Values compare strictly (`16` and `"16"` differ), as YAML typed them. Each entry visits only the combinations it
 * matches, so the cost is the size of the result, not combinations times entries; `stats.visits` counts it.
 * Throws ExpansionTooCostly before doing the work when the entries would visit more than EXPANSION_VISIT_LIMIT.
 */
export function expandCombinations(
  axes: readonly Axis[],
  exclude: readonly Values[],
  include: readonly Values[],
  stats: ExpansionStats = { visits: 0 },
): Combination[] {
  const index = new ProductIndex(axes);
  // An exclude entry matches when every one of its keys is an axis holding its value; an include entry extends a
  // combination when it overwrites none of its original (axis) values, whatever keys it adds.
  const excludeChoices = uniqueEntries(exclude)
    .map((entry) => index.choices(entry, false))
    .filter((choices) => choices !== undefined);
  const includeChoices = include.map((entry) => (index.size === 0 ? undefined : index.choices(entry, true)));
  const planned = [...excludeChoices, ...includeChoices].reduce((n, choices) => n + (choices ? index.count(choices) : 0), 0);
  if (planned > EXPANSION_VISIT_LIMIT) throw new ExpansionTooCostly(planned);

  let product: Values[] = axes.length === 0 ? [] : [{}];
  for (const axis of axes) {
    product = product.flatMap((partial) => axis.values.map((value) => ({ ...partial, [axis.key]: value })));
  }
  const excluded = new Uint8Array(index.size);
  const markExcluded = (position: number) => {
    stats.visits++;
    excluded[position] = 1;
  };
  for (const choices of excludeChoices) index.forEach(choices, markExcluded);

  const added: Combination[] = [];
  include.forEach((entry, entryIndex) => {
    let extended = false;
    const choices = includeChoices[entryIndex];
    if (choices) {
      index.forEach(choices, (position) => {
        stats.visits++;
        if (excluded[position]) return;
        // Values added by earlier entries may be overwritten; original values are equal to the entry's here.
        Object.assign(product[position]!, entry);
        extended = true;
      });
    }
    if (!extended) added.push({ values: { ...entry }, fromInclude: entryIndex });
  });
  const originals = product.filter((_, position) => !excluded[position]).map((values) => ({ values }));
  return [...originals, ...added];
}

/** Drops repeated entries (same keys and values, in any order): they would visit the same combinations again. */
function uniqueEntries(entries: readonly Values[]): Values[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = JSON.stringify(
      Object.keys(entry)
        .sort()
        .map((name) => [name, typeof entry[name], String(entry[name])]),
    );
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
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
  let combinations: Combination[];
  try {
    combinations = expandCombinations(model.axes, model.exclude, model.include);
  } catch (error) {
    if (!(error instanceof ExpansionTooCostly)) throw error;
    problems.push({ pos: positionOf(['matrix']), message: `matrix: ${error.message} (use fewer axis values or entries)` });
    return { cells: [], problems };
  }
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
  const host = hostArch();
  const cells = prepared.map(({ values, image }, index): Cell => {
    // `arch` in expressions is the cell's architecture even when the matrix has no such axis (the host's).
    const arch = archOf(values, host);
    const scope = { [ARCH_KEY]: arch, ...values };
    return {
      id: ids[index]!,
      name: labels[index]!,
      image,
      arch,
      values,
      continueOnError: resolveFlag(model.continueOnError, scope),
      steps: model.steps.map((step, stepIndex): CellStep => ({
        index: stepIndex,
        name: interpolate(step.name, scope),
        run: interpolate(step.run, scope),
        timeoutMs: step.timeoutMs ?? model.timeoutMs,
        retries: step.retries ?? model.retries,
        continueOnError: resolveFlag(step.continueOnError, scope),
        env: { ...interpolateAll(model.env, scope), ...interpolateAll(step.env, scope) },
        ...(step.results ? { results: step.results } : {}),
      })),
    };
  });
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
  const arch = cell.arch ?? archOf(cell.values, hostArch());
  const env: Record<string, string> = { CI: 'true', ...interpolateAll(model.env, { [ARCH_KEY]: arch, ...cell.values }) };
  env[matrixEnvName(ARCH_KEY)] = arch;
  for (const [key, value] of Object.entries(cell.values)) env[matrixEnvName(key)] = String(value);
  env.NSMATRIX_CELL = cell.id;
  return env;
}

/** The cell's architecture: its `arch` value (checked to be a known name at load), else the host's. */
export function archOf(values: Readonly<Values>, host: string): string {
  const value = values[ARCH_KEY];
  return value === undefined ? host : String(value);
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

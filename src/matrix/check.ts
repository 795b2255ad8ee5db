/**
 * Checks that span several fields of a matrix file, run on the raw parsed data next to the schema so that every
 * problem is reported in one go. Defensive about shapes: the schema reports wrong types, these checks skip them.
 */
import { closest, didYouMean } from '../lib/did-you-mean.js';
import { renderPath } from './diagnostics.js';
import { scanExpressions } from './expressions.js';
import { ARCH_NAMES, isArchName } from '../lib/arch.js';
import { AXIS_KEY_RE, ENV_NAME_RE, imageNameProblem } from './schema.js';
import type { Diagnostic, PathSegment, SourceMap } from './source-map.js';

type Raw = Record<string, unknown>;

const isObject = (value: unknown): value is Raw => value !== null && typeof value === 'object' && !Array.isArray(value);
const entriesOf = (value: unknown): Raw[] => (Array.isArray(value) ? value.filter(isObject) : []);

/** `MATRIX_<KEY>`: upper-cased, `-` becomes `_`. */
export function matrixEnvName(key: string): string {
  return `MATRIX_${key.toUpperCase().replace(/-/g, '_')}`;
}

/** The pseudo-key naming a cell's id in `list --format github` and `--filter`. */
export const CELL_ID_KEY = 'nsmatrix-cell';
const RESERVED_ENV = /^(MATRIX_.*|NSMATRIX_CELL)$/;
const SPECIAL_MATRIX_KEYS = ['include', 'exclude'];

/** Reports into `problems`, the message prefixed with the path it is about. */
const reporter =
  (problems: Diagnostic[]): Report =>
  (pos, path, message) =>
    problems.push({ pos, message: path.length ? `${renderPath(path)}: ${message}` : message });

export function crossCheck(data: unknown, map: SourceMap): Diagnostic[] {
  if (!isObject(data)) return [];
  const problems: Diagnostic[] = [];
  const report = reporter(problems);

  walkData(data, [], (key, path) => {
    if (key === PROTO) report(map.keyAt(path), path.slice(0, -1), `key "${PROTO}" is not allowed`);
    return key !== PROTO;
  });
  const matrix = isObject(data.matrix) ? data.matrix : undefined;
  const images = isObject(data.images) ? data.images : {};
  const axisKeys = matrix ? Object.keys(matrix).filter((key) => !SPECIAL_MATRIX_KEYS.includes(key)) : [];
  const include = entriesOf(matrix?.include);
  const exclude = entriesOf(matrix?.exclude);
  const includeKeys = include.flatMap((entry) => Object.keys(entry));
  const knownKeys = [...new Set([...axisKeys, ...includeKeys])];

  if (matrix) {
    checkAxisKeys(matrix, axisKeys, map, report);
    checkEnvNameCollisions(axisKeys, include, map, report);
    if (!axisKeys.includes('image')) {
      const everyIncludeHasImage = include.length > 0 && include.every((entry) => entry.image !== undefined);
      const misspelt = axisKeys.find((key) => closest(key, ['image']) !== undefined);
      if (misspelt !== undefined) {
        report(map.keyAt(['matrix', misspelt]), ['matrix'], `no "image" axis (is "${misspelt}" a misspelt "image"?)`);
      } else if (!everyIncludeHasImage) {
        report(map.keyAt(['matrix']), ['matrix'], 'no "image" axis (add one, or give "image" in every include entry)');
      }
    }
    exclude.forEach((entry, index) => {
      for (const key of Object.keys(entry)) {
        if (!axisKeys.includes(key)) {
          const path = ['matrix', 'exclude', index, key];
          report(map.keyAt(path), path.slice(0, -1), `key "${key}" names no matrix axis${didYouMean(key, axisKeys)}`);
        }
      }
    });
    checkImageValues(matrix, axisKeys.includes('image'), include, exclude, images, knownKeys, map, report);
    checkArchValues(matrix, include, exclude, map, report);
  }

  for (const [name, spec] of Object.entries(images)) {
    const hasSource =
      isObject(spec) && (spec.pull !== undefined || spec.path !== undefined || spec.machine !== undefined || spec.oci !== undefined);
    if (!name.includes(':') && !hasSource) {
      report(map.keyAt(['images', name]), ['images'], `image "${name}" needs one of pull, path or machine (or use distro:suite)`);
    }
  }

  checkShell(data.shell, images, map, report);
  checkReservedEnv(data.env, ['env'], map, report);
  checkExpressionsIn(data, ['continue-on-error'], knownKeys, map, report);
  checkExpressionsInEnv(data.env, ['env'], knownKeys, map, report);

  const seenSteps = new Map<string, number>();
  entriesOfIndexed(data.steps).forEach(([step, index]) => {
    for (const key of ['name', 'run', 'continue-on-error']) checkExpressionsIn(step, [key], knownKeys, map, report, ['steps', index]);
    checkExpressionsInEnv(step.env, ['steps', index, 'env'], knownKeys, map, report);
    checkReservedEnv(step.env, ['steps', index, 'env'], map, report);
    if (typeof step.name === 'string') {
      const first = seenSteps.get(step.name);
      const path = ['steps', index, 'name'];
      if (first !== undefined) report(map.valueAt(path), path, `duplicate step name "${step.name}" (also steps[${first}])`);
      else seenSteps.set(step.name, index);
    }
  });
  return problems;
}

const PROTO = '__proto__';

/**
 * Calls `enter` for every mapping key below `value` (with the key's path), depth first; a key is descended into
 * when `enter` returns true. Calls `leaf` for every string.
 */
function walkData(
  value: unknown,
  path: PathSegment[],
  enter: (key: string, path: PathSegment[]) => boolean,
  leaf: (text: string, path: PathSegment[]) => void = () => undefined,
): void {
  if (typeof value === 'string') leaf(value, path);
  if (Array.isArray(value)) value.forEach((item, index) => walkData(item, [...path, index], enter, leaf));
  if (!isObject(value)) return;
  for (const key of Object.keys(value)) {
    if (enter(key, [...path, key])) walkData(value[key], [...path, key], enter, leaf);
  }
}

const NUL_MESSAGE = 'contains a NUL byte, which no environment variable, argument, path or script can hold';

/**
 * Every NUL byte in a key or a string of the file. Every string of a matrix file ends up in an environment
 * variable, an argv, a path or a script, none of which can hold one.
 */
export function nulByteProblems(data: unknown, map: SourceMap): Diagnostic[] {
  const problems: Diagnostic[] = [];
  const report = reporter(problems);
  walkData(
    data,
    [],
    (key, path) => {
      if (!key.includes('\0')) return true;
      report(map.keyAt(path), path.slice(0, -1), `key ${JSON.stringify(key)} ${NUL_MESSAGE}`);
      return false;
    },
    (text, path) => {
      if (text.includes('\0')) report(map.valueAt(path), path, NUL_MESSAGE);
    },
  );
  return problems;
}

type Report = (pos: Diagnostic['pos'], path: readonly PathSegment[], message: string) => void;

function entriesOfIndexed(value: unknown): [Raw, number][] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item, index): [Raw, number][] => (isObject(item) ? [[item, index]] : []));
}

function checkAxisKeys(matrix: Raw, axisKeys: string[], map: SourceMap, report: Report): void {
  for (const key of axisKeys) {
    const path = ['matrix', key];
    if (key === PROTO) continue;
    if (!AXIS_KEY_RE.test(key)) {
      report(map.keyAt(path), ['matrix'], `invalid axis name "${key}" (letters, digits, "_", "-"; not starting with a digit)`);
      continue;
    }
    // A misspelt include/exclude would silently become an axis of mappings.
    const values = matrix[key];
    const looksMisspelt = Array.isArray(values) && values.some(isObject) && closest(key, SPECIAL_MATRIX_KEYS) !== undefined;
    if (looksMisspelt) report(map.keyAt(path), ['matrix'], `unknown key "${key}"${didYouMean(key, SPECIAL_MATRIX_KEYS)}`);
  }
}

function checkEnvNameCollisions(axisKeys: string[], include: Raw[], map: SourceMap, report: Report): void {
  const owners = new Map<string, string>();
  const claim = (key: string, path: PathSegment[]) => {
    if (!AXIS_KEY_RE.test(key)) return;
    if (key === CELL_ID_KEY) {
      report(map.keyAt(path), path.slice(0, -1), `"${key}" is reserved (it names the cell id in list output and --filter)`);
      return;
    }
    const envName = matrixEnvName(key);
    const owner = owners.get(envName);
    if (owner === undefined) owners.set(envName, key);
    else if (owner !== key) report(map.keyAt(path), path.slice(0, -1), `"${key}" and "${owner}" would both be ${envName}`);
  };
  for (const key of axisKeys) claim(key, ['matrix', key]);
  include.forEach((entry, index) => {
    for (const key of Object.keys(entry)) claim(key, ['matrix', 'include', index, key]);
  });
}

function checkImageValues(
  matrix: Raw,
  hasImageAxis: boolean,
  include: Raw[],
  exclude: Raw[],
  images: Raw,
  known: string[],
  map: SourceMap,
  report: Report,
): void {
  const candidates: [unknown, PathSegment[]][] = [];
  if (hasImageAxis && Array.isArray(matrix.image)) {
    matrix.image.forEach((value, index) => candidates.push([value, ['matrix', 'image', index]]));
  }
  include.forEach((entry, index) => {
    if ('image' in entry) candidates.push([entry.image, ['matrix', 'include', index, 'image']]);
  });
  exclude.forEach((entry, index) => {
    if ('image' in entry) candidates.push([entry.image, ['matrix', 'exclude', index, 'image']]);
  });
  for (const [value, path] of candidates) {
    const pos = map.valueAt(path);
    if (typeof value !== 'string') {
      report(pos, path, 'an image name must be a string');
      continue;
    }
    // Names built from other axes are checked once interpolated, per cell.
    if (value.includes('${{')) {
      checkExpressionText(value, path, known, map, report);
      continue;
    }
    const problem = imageNameProblem(value);
    if (problem) report(pos, path, problem);
    else if (!value.includes(':') && !isObject(images[value])) {
      report(pos, path, `image "${value}" is not defined under images:${didYouMean(value, Object.keys(images))} (or use distro:suite)`);
    }
  }
}

/** The reserved axis naming a cell's CPU architecture (Debian names). */
export const ARCH_KEY = 'arch';

/** Every `arch` value (axis, include, exclude) is a Debian architecture name this tool knows. */
function checkArchValues(matrix: Raw, include: Raw[], exclude: Raw[], map: SourceMap, report: Report): void {
  const candidates: [unknown, PathSegment[]][] = [];
  if (Array.isArray(matrix[ARCH_KEY])) {
    (matrix[ARCH_KEY] as unknown[]).forEach((value, index) => candidates.push([value, ['matrix', ARCH_KEY, index]]));
  }
  for (const [list, name] of [[include, 'include'], [exclude, 'exclude']] as const) {
    list.forEach((entry, index) => {
      if (ARCH_KEY in entry) candidates.push([entry[ARCH_KEY], ['matrix', name, index, ARCH_KEY]]);
    });
  }
  for (const [value, path] of candidates) {
    const pos = map.valueAt(path);
    if (typeof value !== 'string') report(pos, path, `an architecture must be a string (Debian's name, e.g. amd64, arm64)`);
    else if (!isArchName(value)) {
      const hint = didYouMean(value, ARCH_NAMES) || ` (known: ${ARCH_NAMES.join(', ')})`;
      report(pos, path, `unknown architecture "${value}"${hint}`);
    }
  }
}

/** `shell:`: an image the file can name (distro:suite or a key of images:); no cell, so no `${{ matrix.KEY }}`. */
function checkShell(shell: unknown, images: Raw, map: SourceMap, report: Report): void {
  if (!isObject(shell)) return;
  const image = shell.image;
  // A malformed name is the schema's to report.
  if (typeof image === 'string' && imageNameProblem(image) === undefined && !image.includes(':') && !isObject(images[image])) {
    const path = ['shell', 'image'];
    report(map.valueAt(path), path, `image "${image}" is not defined under images:${didYouMean(image, Object.keys(images))} (or use distro:suite)`);
  }
  checkReservedEnv(shell.env, ['shell', 'env'], map, report);
  if (!isObject(shell.env)) return;
  for (const [name, value] of Object.entries(shell.env)) {
    const path = ['shell', 'env', name];
    if (typeof value === 'string' && value.includes('${{')) report(map.valueAt(path), path, 'the shell is no cell: ${{ matrix.KEY }} cannot be used here');
  }
}

function checkReservedEnv(env: unknown, path: PathSegment[], map: SourceMap, report: Report): void {
  if (!isObject(env)) return;
  for (const name of Object.keys(env)) {
    if (ENV_NAME_RE.test(name) && RESERVED_ENV.test(name)) {
      report(map.keyAt([...path, name]), path, `"${name}" is set by nsmatrix itself`);
    }
  }
}

function checkExpressionsInEnv(env: unknown, path: PathSegment[], known: string[], map: SourceMap, report: Report): void {
  if (!isObject(env)) return;
  for (const name of Object.keys(env)) checkExpressionsIn(env, [name], known, map, report, path);
}

function checkExpressionsIn(
  holder: Raw,
  keyPath: [string],
  known: string[],
  map: SourceMap,
  report: Report,
  base: PathSegment[] = [],
): void {
  const text = holder[keyPath[0]];
  if (typeof text === 'string') checkExpressionText(text, [...base, ...keyPath], known, map, report);
}

function checkExpressionText(text: string, path: PathSegment[], known: string[], map: SourceMap, report: Report): void {
  const pos = map.valueAt(path);
  const scan = scanExpressions(text);
  for (const key of scan.keys) {
    // `arch` is always known: a matrix without the axis runs on (and interpolates) the host's architecture.
    if (!known.includes(key) && key !== ARCH_KEY) {
      const list = known.length ? ` (known: ${known.join(', ')})` : '';
      const hint = didYouMean(key, known);
      report(pos, path, `\${{ matrix.${key} }} names no matrix axis or include key${hint || list}`);
    }
  }
  for (const problem of scan.problems) {
    if (problem.kind === 'unterminated') report(pos, path, '"${{" without a closing "}}"');
    else report(pos, path, `unsupported expression ${problem.text} (only \${{ matrix.KEY }} is supported)`);
  }
}

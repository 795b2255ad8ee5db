/**
 * What `nsmatrix shell` enters, from its arguments and the project's matrix file:
 * - `shell IMAGE`: that image, the current directory at /src (the matrix file is not read unless --matrix names it);
 * - `shell` in a project: the matrix file's `shell:` section (image, packages, env, setup, source), on top of the
 *   matrix's packages, setup, env, binds, network and nspawn options; without `shell: image:` the first cell's image
 *   (and architecture);
 * - `shell --cell ID`: exactly that cell's image, packages, setup, env, binds, network, private users and boot mode.
 * The project directory (the matrix file's) is at /src. Every host path is checked as `run` checks it.
 */
import { join } from 'node:path';
import { InfraError, UsageError } from '../errors.js';
import { imageRequestFor } from '../images/index.js';
import type { ImageRequest } from '../images/types.js';
import { parseImageRef } from '../images/ref.js';
import { checkArchFlag, hostArch } from '../lib/arch.js';
import { didYouMean } from '../lib/did-you-mean.js';
import { realOrResolved } from '../lib/host-paths.js';
import { cellEnvironment, DEFAULT_MATRIX_FILES, expandMatrix, findMatrixFile, interpolate, loadMatrix } from '../matrix/index.js';
import { formatDiagnostics } from '../matrix/diagnostics.js';
import type { BindSpec, Cell, MatrixModel, NetworkMode, SourceMode } from '../matrix/types.js';
import { checkMatrixHostPaths, parseBind, sourceProblem, validateBinds } from '../runtime/binds.js';

export interface ShellRequest {
  image?: string;
  cell?: string;
  /** `--matrix FILE|DIR`: the matrix file (default: nsmatrix.yaml or nsmatrix.yml in the current directory). */
  matrix?: string;
  packages: string[];
  bind: string[];
  network?: NetworkMode;
  arch?: string;
  source?: SourceMode;
  /** `--no-boot`: enter a booting cell without booting it. */
  noBoot?: boolean;
  maxCells?: number;
}

export interface ShellPlan {
  /** What the banner calls it: `debian:trixie`, `the project's shell (debian:trixie)`, `cell ID (debian:trixie)`. */
  title: string;
  request: ImageRequest;
  arch: string;
  /** The directory at /src (real path), and how. */
  sourceDir: string;
  sourceMode: SourceMode;
  /** Checked, host paths resolved. */
  binds: BindSpec[];
  env: Record<string, string>;
  network: NetworkMode;
  boot: boolean;
  privateUsers: boolean;
  nspawn: string[];
  /** The machine name's seed and NSMATRIX_CELL: `shell`, or the cell's id. */
  cellId: string;
  /** The cell entered by --cell. */
  cell?: Cell;
  /** The matrix file used, as found (undefined for `shell IMAGE`). */
  file?: string;
  /** `cache-packages: false` in the matrix file. */
  noPackagePool?: boolean;
}

/** Where the shell's paths are checked against: the state directory, and its run/ (the shell's scratch and log). */
export const shellGuard = (stateDir: string) => ({ stateDir, outputDir: join(stateDir, 'run') });

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

function extraBinds(request: ShellRequest, stateDir: string): BindSpec[] {
  const binds = request.bind.map((b) => parseBind(b, `nsmatrix: --bind ${b}`));
  return validateBinds(binds, shellGuard(stateDir), (index) => `nsmatrix: --bind ${request.bind[index]}: `);
}

/** An image name's reference checked as `validate` checks cells' (unknown suite, bad reference), at `where`. */
function checkImage(name: string, model: MatrixModel | undefined, where: () => string): void {
  try {
    parseImageRef(name, model?.images[name] ?? {});
  } catch (error) {
    if (error instanceof UsageError || error instanceof InfraError) throw new UsageError(`${where()}${error.message.replace(/^nsmatrix: /, '')}`);
    throw error;
  }
}

/** The matrix file for a shell with no image: --matrix, else the default names here; one line when there is none. */
async function loadProject(request: ShellRequest, cwd: string): Promise<{ file: string; model: MatrixModel; cells: Cell[] }> {
  let file: string;
  try {
    file = findMatrixFile(cwd, request.matrix);
  } catch (error) {
    if (request.matrix !== undefined || !(error instanceof UsageError) || !/matrix file not found/.test(error.message)) throw error;
    const how = request.cell !== undefined ? `--cell ${request.cell} needs a matrix file` : 'no image given';
    throw new UsageError(`nsmatrix: ${how}, and no matrix file here (${DEFAULT_MATRIX_FILES.join(' or ')}): name an image (nsmatrix shell debian:trixie) or a matrix file (--matrix FILE)`);
  }
  const model = await loadMatrix(file);
  const cells = expandMatrix(model, request.maxCells !== undefined ? { maxCells: request.maxCells } : {});
  return { file, model, cells };
}

function positionOf(model: MatrixModel, path: (string | number)[]): string {
  const positions = model.origin?.positions ?? {};
  for (let length = path.length; length >= 0; length--) {
    const pos = positions[JSON.stringify(path.slice(0, length))];
    if (pos) return formatDiagnostics(model.origin?.displayFile ?? model.file, [{ pos, message: '' }])[0]!;
  }
  return `${model.origin?.displayFile ?? model.file}:1:1: `;
}

export async function planShell(request: ShellRequest, cwd: string, stateDir: string): Promise<ShellPlan> {
  if (request.cell !== undefined && request.image !== undefined) {
    throw new UsageError(`nsmatrix: --cell ${request.cell} enters that cell's own image: give an image or --cell, not both`);
  }
  if (request.cell !== undefined && request.arch !== undefined) {
    throw new UsageError(`nsmatrix: --cell ${request.cell} runs on the cell's own architecture: drop --arch`);
  }
  if (request.noBoot && request.cell === undefined) throw new UsageError('nsmatrix: --no-boot applies to --cell (other shells never boot)');

  if (request.image !== undefined && request.matrix === undefined) {
    // An image of one's own: the current directory at /src, nothing of a matrix file.
    checkImage(request.image, undefined, () => `nsmatrix: ${request.image}: `);
    const arch = checkArchFlag(request.arch) ?? hostArch();
    const mode = request.source ?? 'overlay';
    const binds = extraBinds(request, stateDir);
    const source = sourceProblem(cwd, mode, shellGuard(stateDir));
    if (source) throw new UsageError(`nsmatrix: the current directory is mounted at /src: ${source}`);
    return {
      title: request.image,
      request: { name: request.image, spec: { packages: [] }, packages: dedupe(request.packages), arch },
      arch,
      sourceDir: realOrResolved(cwd),
      sourceMode: mode,
      binds,
      env: {},
      network: request.network ?? 'host',
      boot: false,
      privateUsers: false,
      nspawn: [],
      cellId: 'shell',
    };
  }

  const { file, model: loaded, cells } = await loadProject(request, cwd);
  const display = loaded.origin?.displayFile ?? file;
  const extra = extraBinds(request, stateDir);

  if (request.cell !== undefined) {
    const cell = cells.find((c) => c.id === request.cell);
    if (!cell) {
      const ids = cells.map((c) => c.id);
      const hint = didYouMean(request.cell, ids) || ` (cells: ${ids.slice(0, 8).join(', ')}${ids.length > 8 ? `, ... ${ids.length - 8} more: nsmatrix list` : ''})`;
      throw new UsageError(`nsmatrix: --cell ${request.cell}: no such cell in ${display}${hint}`);
    }
    const mode = request.source ?? loaded.source;
    const model = checkMatrixHostPaths({ ...loaded, source: mode }, shellGuard(stateDir));
    const base = imageRequestFor(cell.image, model, cell.arch);
    return {
      title: `cell ${cell.id} (${cell.name})`,
      request: { ...base, packages: dedupe([...base.packages, ...request.packages]) },
      arch: cell.arch ?? hostArch(),
      sourceDir: model.dir,
      sourceMode: mode,
      binds: [...model.bind, ...extra],
      env: cellEnvironment(cell, model),
      network: request.network ?? model.network,
      boot: model.boot && !request.noBoot,
      privateUsers: model.privateUsers,
      nspawn: model.nspawn,
      cellId: cell.id,
      cell,
      file,
      ...(model.cachePackages === false ? { noPackagePool: true } : {}),
    };
  }

  // The project's shell: `shell:` over the matrix's environment, on the first cell's image unless it names one.
  const spec = loaded.shell ?? { packages: [], env: {} };
  const first = cells[0]!;
  const image = request.image ?? spec.image ?? first.image;
  if (request.image !== undefined) checkImage(image, loaded, () => `nsmatrix: ${image}: `);
  else if (spec.image !== undefined) checkImage(image, loaded, () => positionOf(loaded, ['shell', 'image']));
  const arch = checkArchFlag(request.arch) ?? (image === first.image ? (first.arch ?? hostArch()) : hostArch());
  const mode = request.source ?? spec.source ?? 'overlay';
  const model = checkMatrixHostPaths({ ...loaded, source: mode }, shellGuard(stateDir));
  const base = imageRequestFor(image, model, arch);
  const setup = [base.setup, spec.setup].filter((s): s is string => Boolean(s?.trim()));
  const scope = { arch, ...first.values };
  const matrixEnv = Object.fromEntries(Object.entries(model.env).map(([name, value]) => [name, interpolate(value, scope)]));
  return {
    title: `the project's shell (${image}${arch === hostArch() ? '' : `, ${arch}`}; ${display})`,
    request: { ...base, packages: dedupe([...base.packages, ...spec.packages, ...request.packages]), ...(setup.length ? { setup: setup.join('\n') } : {}) },
    arch,
    sourceDir: model.dir,
    sourceMode: mode,
    binds: [...model.bind, ...extra],
    env: { ...matrixEnv, ...spec.env },
    network: request.network ?? model.network,
    boot: false,
    privateUsers: model.privateUsers,
    nspawn: model.nspawn,
    cellId: 'shell',
    file,
    ...(model.cachePackages === false ? { noPackagePool: true } : {}),
  };
}

/** What a matrix run is given: the cells, where they write, how many run at once, and the stages it drives. */
import type { PackagePool, ProvisionedImage } from '../images/types.js';
import type { Cell, MatrixModel } from '../matrix/types.js';
import type { Container, ContainerOptions, EphemeralStrategy, HostInfo } from '../runtime/types.js';
import type { RunEvents } from './events.js';

/** The stages the scheduler drives; the CLI passes the real ones, benchmarks may pass host-process ones. */
export interface RunStages {
  /** `arch`: the cell's architecture (Debian name); absent: the host's. */
  provision(image: string, onProgress: (line: string) => void, arch?: string): Promise<ProvisionedImage>;
  openContainer(options: ContainerOptions): Promise<Container>;
  /** Environment of a cell (MATRIX_*, the matrix env, CI, NSMATRIX_CELL). */
  cellEnvironment(cell: Cell): Record<string, string>;
}

export interface RunOptions {
  model: MatrixModel;
  cells: Cell[];
  /** Position of each cell id in the full expansion (before --filter/--shard). */
  positions: Map<string, number>;
  /** Absolute. */
  outputDir: string;
  /** Absolute: per-run scratch (overlay upper dirs) goes below it; the runtime removes what it creates. */
  scratchDir: string;
  /** The state directory: given, the runtime checks each cell's binds against it and the output directory again. */
  stateDir?: string;
  /** The shared package download cache cells install through (absent: `cache-packages: false`, or none at all). */
  packagePool?: PackagePool;
  /** Matrix file path as the user wrote it, for rerun commands. */
  fileArg: string;
  /** The command that reruns one cell (the CLI's, with its options); default: `nsmatrix run FILE` and its filter. */
  rerun?: (cell: Cell) => string;
  jobs: number;
  failFast: boolean;
  strategy?: EphemeralStrategy;
  noSeccomp?: boolean;
  shard?: { index: number; total: number };
  host: HostInfo;
  toolVersion: string;
  events: RunEvents;
  /** Aborted with a reason string on SIGINT/SIGTERM. */
  signal: AbortSignal;
  stages: RunStages;
  /** Called with the container of a cell whose steps failed, before it is thrown away (--shell-on-failure). */
  onCellFailed?: (cell: Cell, container: Container) => Promise<void>;
}

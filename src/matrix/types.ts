/** The validated matrix model: what a matrix file means once it has been parsed and checked. */

export type MatrixValue = string | number | boolean;
export type SourceMode = 'overlay' | 'ro' | 'rw';
export type NetworkMode = 'host' | 'private';

/** `host:container[:ro]`, validated against the host's dangerous paths at run time (runtime/binds). */
export interface BindSpec {
  host: string;
  container: string;
  readOnly: boolean;
}

/** How to make one image: keyed by image name in the matrix file's `images:`. All fields optional. */
export interface ImageSpec {
  /** Packages installed into this image on top of the matrix-wide `packages`. */
  packages: string[];
  /** Shell script run inside the image at build time, after packages (cached with the image). */
  setup?: string;
  /** Debian/Ubuntu mirror URL; default: the host's apt sources. */
  mirror?: string;
  /** Root filesystem tarball (http(s) URL or local path) and its required sha256. */
  pull?: { url: string; sha256: string };
  /** An existing directory used read-only as the base. */
  path?: string;
  /** An image in /var/lib/machines. */
  machine?: string;
  /** Accept an expired Release file (snapshot mirrors, sid on some mirrors). */
  allowExpiredRelease?: boolean;
  /** An OCI image reference `REGISTRY/NAME[:TAG][@sha256:DIGEST]` (images named `oci:REF` need not set it). */
  oci?: string;
  /** OCI registry over plain HTTP or with an unverified certificate (local registries). */
  insecure?: boolean;
}

export type ResultFormat = 'junit' | 'tap' | 'automake' | 'go-json' | 'auto';

/** A step's declared per-test result files: a container path or glob (relative ones under /src). */
export interface ResultSpec {
  format: ResultFormat;
  path: string;
}

/** A `cache:` entry: a container directory kept across runs; `key` (may hold `${{ matrix.KEY }}`) replaces image key + path. */
export interface CacheSpec {
  path: string;
  key?: string;
}

/** `shell:`: what `nsmatrix shell` (no image, no --cell) enters. */
export interface ShellSpec {
  /** Default: the first cell's image. */
  image?: string;
  /** Added to the matrix's packages (and the image's), in the shell's cached layer. */
  packages: string[];
  env: Record<string, string>;
  /** Run after the matrix's and the image's setup, baked into the shell's cached layer. */
  setup?: string;
  /** How /src shows the project (default overlay); `--source` overrides. */
  source?: SourceMode;
}

export interface StepSpec {
  name: string;
  /** Shell script; may contain `${{ matrix.KEY }}` (interpolated per cell). */
  run: string;
  /** Per-step timeout in milliseconds (defaults to the matrix `timeout`). */
  timeoutMs?: number;
  /** `true`, `false`, or a `${{ matrix.KEY }}` expression resolved per cell. */
  continueOnError?: boolean | string;
  retries?: number;
  env: Record<string, string>;
  /** Per-test result files gathered after every attempt (`results:`). */
  results?: ResultSpec[];
  /** Directories kept across runs (`cache:`), restored before the cell's steps and saved after this step ran. */
  cache?: CacheSpec[];
}

export interface Axis {
  key: string;
  values: MatrixValue[];
}

/** A 1-based position in the matrix file. */
export interface SourcePosition {
  line: number;
  col: number;
}

/**
 * Where the model came from, so that later checks (expansion, `--max-cells`) can point at the file as the user
 * named it. Keys of `positions` are JSON-encoded paths into the file, e.g. `["matrix","include",0]`.
 */
export interface MatrixOrigin {
  /** The file as the user gave it (relative if it was relative): the FILE of `FILE:LINE:COL: message`. */
  displayFile: string;
  positions: Record<string, SourcePosition>;
}

export interface MatrixModel {
  /** Set by the loader; absent on models built by hand (then diagnostics point at `file`, line 1). */
  origin?: MatrixOrigin;
  /** Absolute path of the matrix file, and its directory (the source tree mounted at /src). */
  file: string;
  dir: string;
  name: string;
  /** Axes in declaration order; the `image` axis is one of them unless every cell comes from `include`. */
  axes: Axis[];
  include: Record<string, MatrixValue>[];
  exclude: Record<string, MatrixValue>[];
  images: Record<string, ImageSpec>;
  packages: string[];
  setup?: string;
  source: SourceMode;
  env: Record<string, string>;
  boot: boolean;
  network: NetworkMode;
  privateUsers: boolean;
  failFast: boolean;
  maxParallel?: number;
  timeoutMs: number;
  retries: number;
  /** Matrix-level (per cell) continue-on-error: a boolean or a `${{ matrix.KEY }}` expression. */
  continueOnError: boolean | string;
  bind: BindSpec[];
  /** Extra systemd-nspawn options passed through verbatim (power users). */
  nspawn: string[];
  /** Matrix-wide `cache:` entries (absent: none). */
  cache?: CacheSpec[];
  /** `cache-packages:` (absent: true): share the package manager's download cache across cells and runs. */
  cachePackages?: boolean;
  /** `shell:` (absent: none; `nsmatrix shell` then enters the first cell's image). */
  shell?: ShellSpec;
  steps: StepSpec[];
}

/** A step with every `${{ matrix.* }}` resolved for one cell. */
export interface CellStep {
  index: number;
  name: string;
  run: string;
  timeoutMs: number;
  retries: number;
  continueOnError: boolean;
  env: Record<string, string>;
  /** Per-test result files gathered after every attempt; absent when the step declares none. */
  results?: ResultSpec[];
}

/** One combination of the matrix: what `list` prints and `run` runs. */
export interface Cell {
  /** Stable across runs and filesystem-safe: names the cell's output directory. */
  id: string;
  /** Human label, unique in the run, e.g. `debian:trixie [cc=gcc]`. */
  name: string;
  image: string;
  /**
   * The cell's architecture by its Debian name: the reserved `arch` axis (or include key) when the matrix has one,
   * else the host's. Set by expansion; absent only on cells built by hand (then: the host's).
   */
  arch?: string;
  /** Every axis value of this combination (including `image` and values added by `include`). */
  values: Record<string, MatrixValue>;
  continueOnError: boolean;
  steps: CellStep[];
}

/** The runtime stage's interface: one ephemeral systemd-nspawn container per cell. */
import type { HostInfo } from '../lib/host.js';
import type { NspawnMount } from '../lib/nspawn.js';
import type { BindSpec, NetworkMode, SourceMode } from '../matrix/types.js';

export type { HostInfo };
export type EphemeralStrategy = 'overlay' | 'btrfs-snapshot' | 'volatile' | 'copy';

export interface ContainerOptions {
  /** Filesystem-safe cell id; used in the machine name and temporary paths. */
  cellId: string;
  /** Image root filesystem (never written). */
  root: string;
  /** Absolute: the cell's output directory (logs, artifacts/, journal/). */
  cellOutputDir: string;
  /** Absolute: where per-run scratch (overlay upper dirs, control files) goes; removed on close. */
  scratchDir: string;
  sourceDir: string;
  sourceMode: SourceMode;
  network: NetworkMode;
  privateUsers: boolean;
  boot: boolean;
  binds: BindSpec[];
  /** nsmatrix's own mounts beyond the cell's standard ones (the package cache's overlay, `cache:` directories). */
  mounts?: NspawnMount[];
  /** The cell's CPU architecture (Debian name); absent: the host's. i386 on amd64 runs with nspawn's x86 personality. */
  arch?: string;
  /** The matrix's `nspawn:` options, passed through verbatim after nsmatrix's own (so they win). */
  nspawnExtra: string[];
  env: Record<string, string>;
  strategy?: EphemeralStrategy;
  /**
   * Upper directories the caller made and keeps (`nsmatrix shell`: a kept sandbox, a /src upper owned like the
   * source): `root` takes the root's writes (with the overlay strategy, which must then be asked for), `source` an
   * overlay /src's. Never removed on close.
   */
  uppers?: { root?: string; source?: string };
  /** Opt-in: SYSTEMD_SECCOMP=0 (trusted matrices only). */
  noSeccomp?: boolean;
  /** Interactive shell: attach the terminal instead of piping. */
  interactive?: boolean;
  /** When both are set, `binds` are validated against them (runtime/binds.ts) before anything starts. */
  stateDir?: string;
  /** Absolute: the run's output directory (parent of cellOutputDir); journal paths are made relative to it. */
  outputDir?: string;
}

export interface ExecRequest {
  /** 0-based step index and name (the log is `<cellOutputDir>/<nn>-<slug>.log`, nn = index+1, 2 digits). */
  index: number;
  name: string;
  script: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Absolute log path for this attempt. */
  logPath: string;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
  /** `nsmatrix shell`: the step uses nsmatrix's own stdin/stdout/stderr (a terminal or pipes); nothing is logged. */
  inheritStdio?: boolean;
  /** Give this one exec a terminal even if the container was opened non-interactive (--shell-on-failure). */
  interactive?: boolean;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Stopped because the request's AbortSignal fired (not the step's fault, not a timeout). */
  aborted?: boolean;
  durationMs: number;
  /** nspawn itself failed (could not start the container): not the step's fault. */
  infrastructureError?: string;
  tail: string[];
}

/** What a booted cell's journal holds, in brief (paths relative to the run's output directory). */
export interface JournalSummary {
  dir: string;
  text: string;
  /** Journal lines at priority err or worse. */
  errors: string[];
  coredumps: string[];
}

export interface ArmedExec {
  /** The same as `exec(request)` from here on. Once. */
  run(): Promise<ExecResult>;
}

export interface Container {
  readonly machine: string;
  readonly strategy: EphemeralStrategy;
  exec(request: ExecRequest): Promise<ExecResult>;
  /**
   * Containers that are not booted: does now everything `exec(request)` does before its container starts, so that
   * `run()` starts it at once (the scheduler arms a cell's first step while the cell before it runs). `close()`
   * discards a step armed and never run. Not for interactive requests.
   */
  arm?(request: ExecRequest): Promise<ArmedExec>;
  /** Stops the container (boot mode), collects the journal, removes every scratch path. Idempotent. */
  close(): Promise<{ journal?: JournalSummary }>;
}

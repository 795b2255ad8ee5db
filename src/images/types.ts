/** The images stage's interface: turn an image name plus its spec into a cached root filesystem. */
import type { NspawnMount } from '../lib/nspawn.js';
import type { ImageSpec } from '../matrix/types.js';

/** What a run or `images build` asks for: the image name and everything layered on top of its base. */
export interface ImageRequest {
  /** As written by the user: `debian:bookworm`, `debian:stable`, or a name with `pull:`/`path:`/`machine:`. */
  name: string;
  spec: ImageSpec;
  /** Matrix-wide packages plus image packages, in order, deduplicated. */
  packages: string[];
  /** The image must boot systemd: its family's boot packages are added (package-managers.ts). Default false. */
  boot?: boolean;
  /** Matrix-wide setup then image setup. */
  setup?: string;
  /** The CPU architecture to build for, by its Debian name (lib/arch.ts); absent: the host's. */
  arch?: string;
}

export interface ProvisionOptions {
  /** Absolute state directory (images, locks, temporary builds live below it). */
  stateDir: string;
  /** Progress lines for the terminal; the full log always goes to the image's build log. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * The shared package download cache image builds install through (caches/packages.ts implements it; the CLI
   * passes it in). Absent, e.g. for `cache-packages: false`: builds download everything themselves.
   */
  packagePool?: PackagePool;
}

/** The package download cache as one container (a cell or an image build) sees it. */
export interface PackagePool {
  /**
   * An overlay of the pool for one container on `imageRoot`, its writes under `workDir` (a new directory in the
   * caller's scratch space); undefined when nothing is shared (unknown OS or architecture, unverifiable family).
   */
  open(imageRoot: string, workDir: string): Promise<PackagePoolLease | undefined>;
}

export interface PackagePoolLease {
  /** The pool's name, e.g. `apt-debian-bookworm-amd64`. */
  readonly name: string;
  /** What the container mounts: the pool under its own upper directory. */
  readonly mount: NspawnMount;
  /** After the container has stopped: adds to the pool what it downloaded and the image's index vouches for. */
  harvest(): Promise<{ added: string[]; refused: { name: string; why: string }[]; bytes: number }>;
  /** Removes the container's upper directory. */
  release(): Promise<void>;
}

export interface ProvisionedImage {
  name: string;
  /** Content key of the top layer (what the cell runs on). */
  key: string;
  baseKey: string;
  /** Absolute path of the root filesystem directory (read-only by contract: cells run on a copy-on-write view). */
  root: string;
  /** True when nothing had to be built. */
  cached: boolean;
  /** Human description of what the key was made from (printed so invalidation is never a mystery). */
  madeFrom: string;
}

/** The seam every image source plugs into: pure key inputs, a description, and a build into a directory. */
import type { BuildLog } from '../build-log.js';
import type { KeyInputs } from '../key.js';
import type { PackageFamily } from '../package-managers.js';

export interface BuildContext {
  log: BuildLog;
  /** A private scratch directory for downloads, removed with the temporary build. */
  scratchDir: string;
  signal?: AbortSignal;
}

export interface BaseBuilder {
  /** `debian`, `ubuntu`, `tarball`, `directory`, `machine`, ... */
  kind: string;
  /** Everything that decides the base's contents (hashed into the base key). Pure data. */
  keyInputs: KeyInputs;
  /** One line for humans: what the base is made from. */
  madeFrom: string;
  /**
   * Sources used read-only in place (`path:`, `machine:`) name their directory here and are never built; the
   * others fill `targetDir` (an empty directory) and throw InfraError naming the log on failure.
   */
  existingRoot?: string;
  /** The package manager of the trees this builder makes, when known without looking (else read from os-release). */
  family?: PackageFamily;
  build(targetDir: string, context: BuildContext): Promise<void>;
}

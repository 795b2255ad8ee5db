/** The registry of base builders by source kind and distribution: new distros plug in here. */
import { InfraError } from '../../errors.js';
import type { ImageSource } from '../ref.js';
import { bootstrapBuilder, planBootstrap } from './bootstrap.js';
import { directoryBuilder, machineBuilder } from './directory.js';
import { ociBuilder } from './oci.js';
import { tarballBuilder } from './tarball.js';
import type { BaseBuilder } from './types.js';
import { hostArch } from '../../lib/arch.js';

type BootstrapSource = Extract<ImageSource, { kind: 'bootstrap' }>;

/** Distribution builders; dnf (Fedora), pacstrap (Arch), apk (Alpine) and mkosi would register here. */
const DISTRO_BUILDERS: Record<string, (source: BootstrapSource, arch: string) => Promise<BaseBuilder>> = {
  debian: async (source, arch) => bootstrapBuilder(await planBootstrap({ ...source, arch })),
  ubuntu: async (source, arch) => bootstrapBuilder(await planBootstrap({ ...source, arch })),
};

/** Resolves what the source names now (an OCI tag's digest), so the builder's key inputs are final. */
export async function builderFor(source: ImageSource, signal?: AbortSignal, arch: string = hostArch()): Promise<BaseBuilder> {
  // A tarball, directory or machine is whatever architecture it holds: only built and pulled bases choose one.
  if (arch !== hostArch() && (source.kind === 'tarball' || source.kind === 'directory' || source.kind === 'machine')) {
    throw new InfraError(`a ${source.kind} image cannot be chosen by architecture (arch ${arch}): use debian:<suite>, ubuntu:<suite> or oci:`);
  }
  switch (source.kind) {
    case 'bootstrap': {
      const make = DISTRO_BUILDERS[source.distro];
      if (!make) throw new InfraError(`no builder for distribution ${source.distro}`);
      return make(source, arch);
    }
    case 'tarball':
      return tarballBuilder(source.url, source.sha256);
    case 'directory':
      return directoryBuilder(source.path);
    case 'machine':
      return machineBuilder(source.machine);
    case 'oci':
      return ociBuilder(source.ref, { insecure: source.insecure, arch }, signal);
  }
}

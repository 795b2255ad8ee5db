/** The registry of base builders by source kind and distribution: new distros plug in here. */
import { InfraError } from '../../errors.js';
import type { ImageSource } from '../ref.js';
import { bootstrapBuilder, planBootstrap } from './bootstrap.js';
import { directoryBuilder, machineBuilder } from './directory.js';
import { ociBuilder } from './oci.js';
import { tarballBuilder } from './tarball.js';
import type { BaseBuilder } from './types.js';

type BootstrapSource = Extract<ImageSource, { kind: 'bootstrap' }>;

/** Distribution builders; dnf (Fedora), pacstrap (Arch), apk (Alpine) and mkosi would register here. */
const DISTRO_BUILDERS: Record<string, (source: BootstrapSource) => Promise<BaseBuilder>> = {
  debian: async (source) => bootstrapBuilder(await planBootstrap(source)),
  ubuntu: async (source) => bootstrapBuilder(await planBootstrap(source)),
};

/** Resolves what the source names now (an OCI tag's digest), so the builder's key inputs are final. */
export async function builderFor(source: ImageSource, signal?: AbortSignal): Promise<BaseBuilder> {
  switch (source.kind) {
    case 'bootstrap': {
      const make = DISTRO_BUILDERS[source.distro];
      if (!make) throw new InfraError(`no builder for distribution ${source.distro}`);
      return make(source);
    }
    case 'tarball':
      return tarballBuilder(source.url, source.sha256);
    case 'directory':
      return directoryBuilder(source.path);
    case 'machine':
      return machineBuilder(source.machine);
    case 'oci':
      return ociBuilder(source.ref, { insecure: source.insecure }, signal);
  }
}

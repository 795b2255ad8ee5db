/**
 * `oci:` bases: an image from a registry. The reference is resolved to the manifest digest of the cell's
 * architecture (the host's by default; a foreign one runs emulated like a bootstrapped base) before anything else (that digest is the base key, so an unchanged tag is a cache hit that downloads
 * no layer and a moved tag is a new key); a build copies exactly that digest with skopeo and unpacks it with umoci.
 */
import { chmodSync, chownSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from '../../errors.js';
import { runChecked } from '../../lib/process.js';
import { runLogged } from '../process.js';
import { formatOciReference, pinnedTransport, platformForArch, type OciReference } from '../oci/reference.js';
import { copyArgv, findAuthFile, resolveManifest, unpackArgv, type RegistryOptions } from '../oci/skopeo.js';
import type { BaseBuilder, BuildContext } from './types.js';
import { hostArch } from '../../lib/arch.js';

const LAYOUT_TAG = 'image';

/** Moves the unpacked tree's entries into the (possibly btrfs subvolume) target and gives it the tree's owner and mode. */
function adoptTree(unpacked: string, targetDir: string): void {
  for (const entry of readdirSync(unpacked)) renameSync(join(unpacked, entry), join(targetDir, entry));
  const st = statSync(unpacked);
  chownSync(targetDir, st.uid, st.gid);
  chmodSync(targetDir, st.mode & 0o7777);
}

async function step(argv: string[], what: string, context: BuildContext): Promise<void> {
  const outcome = await runLogged(argv, context.log, context.signal ? { signal: context.signal } : {});
  if (outcome.isCanceled) throw new InfraError(`${what}: aborted`, { logPath: context.log.path });
  if (outcome.exitCode !== 0) {
    throw new InfraError(`${what} failed (exit ${outcome.exitCode ?? outcome.signal})`, { logPath: context.log.path, tail: context.log.tail() });
  }
}

export async function ociBuilder(
  ref: OciReference,
  options: { insecure: boolean; arch?: string },
  signal?: AbortSignal,
): Promise<BaseBuilder> {
  const arch = options.arch ?? hostArch();
  const authFile = findAuthFile();
  const registry: RegistryOptions = { insecure: options.insecure, ...(authFile ? { authFile } : {}) };
  const choice = await resolveManifest(ref, registry, platformForArch(arch), signal);
  const written = formatOciReference(ref);
  const platform = choice.kind === 'index' ? ` for ${choice.platform.os}/${choice.platform.architecture}` : '';
  return {
    kind: 'oci',
    // The architecture is a key input like a bootstrap base's (images list shows it): a single-platform image
    // resolves to one digest whatever was asked, and is kept apart per architecture it was checked for.
    keyInputs: { layer: 'base', kind: 'oci', manifestDigest: choice.digest, arch, format: 1 },
    madeFrom: `oci ${written} = ${choice.digest}${platform}${options.insecure ? ' (insecure registry)' : ''}`,
    async build(targetDir: string, context: BuildContext): Promise<void> {
      const layout = join(context.scratchDir, 'layout');
      const bundle = join(context.scratchDir, 'bundle');
      // skopeo verifies every blob against its digest while copying; pinning the digest means the bytes are
      // those of the key even if the tag moved since we resolved it.
      await step(copyArgv(pinnedTransport(ref, choice.digest), layout, LAYOUT_TAG, registry), `pulling ${written}`, context);
      await step(unpackArgv(layout, LAYOUT_TAG, bundle), `unpacking ${written}`, context);
      const rootfs = join(bundle, 'rootfs');
      adoptTree(rootfs, targetDir);
      // nspawn provides /dev; device nodes from an image are never needed and never trusted.
      await runChecked(['find', targetDir, '-xdev', '(', '-type', 'b', '-o', '-type', 'c', ')', '-delete']);
      const usr = statSync(join(targetDir, 'usr'), { throwIfNoEntry: false });
      if (!usr?.isDirectory()) {
        throw new InfraError(`${written} is not a distribution image (no usr/ in its root filesystem)`, { logPath: context.log.path });
      }
      context.log.info(`unpacked ${written} (${choice.digest})`);
    },
  };
}

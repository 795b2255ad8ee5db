/**
 * The registry side, done by skopeo (it speaks the registry protocol, handles auth and verifies every blob's
 * digest while copying) and the unpacking by umoci (layer order, whiteouts, opaque directories, hard links,
 * ownership; it checks each blob against its digest as it reads the layout). Argv builders are pure.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InfraError } from '../../errors.js';
import { run } from '../../lib/process.js';
import { chooseManifest, dockerTransport, hostPlatform, type ManifestChoice, type OciReference } from './reference.js';

export interface RegistryOptions {
  /** Plain HTTP or an unverified certificate (local registries). */
  insecure: boolean;
  /** The containers auth file to use, when one exists. */
  authFile?: string;
}

/**
 * The auth file skopeo should read: REGISTRY_AUTH_FILE, else the containers one in XDG_RUNTIME_DIR, else
 * Docker's. Pure given the environment and an existence check.
 */
export function findAuthFile(
  env: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = existsSync,
  home: string = homedir(),
): string | undefined {
  const candidates = [
    env.REGISTRY_AUTH_FILE,
    env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'containers/auth.json') : undefined,
    join(env.DOCKER_CONFIG ?? join(home, '.docker'), 'config.json'),
  ];
  return candidates.find((path): path is string => Boolean(path) && exists(path!));
}

function registryArgs(direction: 'src' | 'plain', options: RegistryOptions): string[] {
  const args: string[] = [];
  const prefix = direction === 'src' ? '--src-' : '--';
  if (options.insecure) args.push(`${prefix}tls-verify=false`);
  if (options.authFile) args.push(`${prefix}authfile=${options.authFile}`);
  return args;
}

export function inspectRawArgv(ref: OciReference, options: RegistryOptions): string[] {
  return ['skopeo', 'inspect', '--raw', '--retry-times=2', ...registryArgs('plain', options), dockerTransport(ref)];
}

/** Copy one platform manifest (by digest) and its blobs into an OCI layout under `layoutDir`, tagged `tag`. */
export function copyArgv(source: string, layoutDir: string, tag: string, options: RegistryOptions): string[] {
  return ['skopeo', 'copy', '--quiet', '--retry-times=2', ...registryArgs('src', options), source, `oci:${layoutDir}:${tag}`];
}

/** As root umoci restores owners, modes, xattrs and hard links exactly; the bundle's tree is `BUNDLE/rootfs`. */
export function unpackArgv(layoutDir: string, tag: string, bundleDir: string): string[] {
  return ['umoci', 'unpack', '--image', `${layoutDir}:${tag}`, bundleDir];
}

/** skopeo's fatal line without the logrus decoration. */
export function skopeoError(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines.at(-1) ?? '';
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(last)?.[1];
  return (msg ?? last).replace(/\\"/g, '"');
}

/** Ask the registry which manifest `ref` names for this host's platform. Downloads the manifest only, no layers. */
export async function resolveManifest(ref: OciReference, options: RegistryOptions, signal?: AbortSignal): Promise<ManifestChoice> {
  const argv = inspectRawArgv(ref, options);
  // A short command whose output we need: killed on abort or timeout.
  const result = await run(argv, { timeoutMs: 120_000, killSignal: 'SIGKILL', ...(signal ? { signal } : {}) });
  if (result.isCanceled) throw new InfraError(`${argv[0]}: aborted`);
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (apt-get install skopeo umoci)' : '';
    throw new InfraError(`cannot run ${argv[0]}: ${result.error.message}${missing}`);
  }
  if (result.exitCode !== 0) {
    throw new InfraError(`cannot resolve ${dockerTransport(ref)}: ${skopeoError(result.stderr)}`, {
      tail: result.stderr.trim().split('\n').slice(-10),
    });
  }
  const choice = chooseManifest(result.stdout, hostPlatform());
  if (ref.digest && choice.kind === 'manifest' && choice.digest !== ref.digest) {
    throw new InfraError(`the registry's manifest for ${dockerTransport(ref)} has digest ${choice.digest}, not ${ref.digest}`);
  }
  return choice;
}

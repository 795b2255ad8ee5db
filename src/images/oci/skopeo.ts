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
import {
  checkConfigPlatform,
  chooseManifest,
  dockerTransport,
  formatOciReference,
  hostPlatform,
  pinnedTransport,
  samePlatform,
  type ManifestChoice,
  type OciReference,
  type Platform,
} from './reference.js';

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

/** The image config of one manifest (by digest): small JSON, no layers. */
export function inspectConfigArgv(ref: OciReference, manifestDigest: string, options: RegistryOptions): string[] {
  return ['skopeo', 'inspect', '--config', '--raw', '--retry-times=2', ...registryArgs('plain', options), pinnedTransport(ref, manifestDigest)];
}

/** Runs a short skopeo query whose output we need: killed on abort or timeout; a failure is an InfraError. */
async function query(argv: string[], what: string, signal?: AbortSignal): Promise<string> {
  const result = await run(argv, { timeoutMs: 120_000, killSignal: 'SIGKILL', ...(signal ? { signal } : {}) });
  if (result.isCanceled) throw new InfraError(`${argv[0]}: aborted`);
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (apt-get install skopeo umoci)' : '';
    throw new InfraError(`cannot run ${argv[0]}: ${result.error.message}${missing}`);
  }
  if (result.exitCode !== 0) {
    throw new InfraError(`cannot ${what}: ${skopeoError(result.stderr)}`, { tail: result.stderr.trim().split('\n').slice(-10) });
  }
  return result.stdout;
}

/**
 * Ask the registry which manifest `ref` names for `platform` (default: this host's): the index entry of that
 * platform, or the single manifest. A single manifest asked for a foreign platform must say (in its config) that it
 * is one: a host-platform image is not run under an emulator as if it were another's. Downloads no layer.
 */
export async function resolveManifest(
  ref: OciReference,
  options: RegistryOptions,
  platform: Platform = hostPlatform(),
  signal?: AbortSignal,
): Promise<ManifestChoice> {
  const raw = await query(inspectRawArgv(ref, options), `resolve ${dockerTransport(ref)}`, signal);
  const choice = chooseManifest(raw, platform);
  if (ref.digest && choice.kind === 'manifest' && choice.digest !== ref.digest) {
    throw new InfraError(`the registry's manifest for ${dockerTransport(ref)} has digest ${choice.digest}, not ${ref.digest}`);
  }
  if (choice.kind === 'manifest' && !samePlatform(platform, hostPlatform())) {
    const config = await query(inspectConfigArgv(ref, choice.digest, options), `read the image config of ${dockerTransport(ref)}`, signal);
    checkConfigPlatform(config, platform, formatOciReference(ref));
  }
  return choice;
}

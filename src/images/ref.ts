/**
 * Image references as users write them: `debian:<suite>`, `ubuntu:<suite>`, or a plain name whose spec says where
 * the root filesystem comes from (`pull:`, `path:`, `machine:`). Pure: alias resolution happens in suites.ts.
 * A bad reference is the user's to fix: a UsageError (exit 2, README: exit codes), found by `validate` before
 * anything runs. Names are never paths: store keys are hashes.
 */
import { UsageError } from '../errors.js';
import { didYouMean } from '../lib/did-you-mean.js';
import type { ImageSpec } from '../matrix/types.js';
import { isOciName, parseOciReference, type OciReference } from './oci/reference.js';

export const DEBIAN_SUITES = ['bullseye', 'bookworm', 'trixie', 'forky', 'sid'] as const;
export const DEBIAN_ALIASES = ['stable', 'testing', 'unstable', 'oldstable'] as const;
/** Ubuntu code names this tool knows how to build (mmdebstrap/debootstrap handle them like Debian). */
export const UBUNTU_SUITES = ['focal', 'jammy', 'noble', 'oracular', 'plucky', 'questing'] as const;

/** Catalogue distributions built with a bootstrap tool, by distro name: the seam for dnf, pacstrap, apk, mkosi. */
export const CATALOGUE: Record<string, { suites: readonly string[]; aliases: readonly string[] }> = {
  debian: { suites: DEBIAN_SUITES, aliases: DEBIAN_ALIASES },
  ubuntu: { suites: UBUNTU_SUITES, aliases: [] },
};

export type ImageSource =
  | { kind: 'bootstrap'; distro: string; suite: string; mirror?: string; allowExpiredRelease: boolean }
  | { kind: 'tarball'; url: string; sha256: string }
  | { kind: 'directory'; path: string }
  | { kind: 'machine'; machine: string }
  | { kind: 'oci'; ref: OciReference; insecure: boolean };

/** Names are labels only (store keys are hashes), but keep them printable and free of path tricks. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*(:[A-Za-z0-9][A-Za-z0-9._+-]*)?$/;
const MACHINE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

export function validateImageName(name: string): void {
  if (isOciName(name)) {
    parseOciReference(name);
    return;
  }
  if (!NAME_RE.test(name) || name.includes('..') || name.length > 128) {
    throw new UsageError(`image "${name}": invalid name (letters, digits, ".", "_", "+", "-", one optional ":")`);
  }
}

export function parseImageRef(name: string, spec: Partial<ImageSpec> = {}): ImageSource {
  validateImageName(name);
  const oci = spec.oci ?? (isOciName(name) ? name : undefined);
  const sources = [spec.pull && 'pull', spec.path && 'path', spec.machine && 'machine', oci && 'oci'].filter(Boolean);
  if (sources.length > 1) throw new UsageError(`image "${name}": set only one of pull:, path:, machine:, oci:`);
  if (spec.insecure && !oci) throw new UsageError(`image "${name}": insecure: applies only to oci: images`);
  if (oci) return { kind: 'oci', ref: parseOciReference(oci), insecure: spec.insecure ?? false };
  if (spec.pull) {
    const sha = spec.pull.sha256?.toLowerCase();
    if (!sha || !SHA256_RE.test(sha)) throw new UsageError(`image "${name}": pull: needs sha256: (64 hex digits)`);
    if (!/^https?:\/\//.test(spec.pull.url) && !spec.pull.url.startsWith('/')) {
      throw new UsageError(`image "${name}": pull: must be an http(s) URL or an absolute path`);
    }
    return { kind: 'tarball', url: spec.pull.url, sha256: sha };
  }
  if (spec.path) {
    if (!spec.path.startsWith('/')) throw new UsageError(`image "${name}": path: must be absolute`);
    return { kind: 'directory', path: spec.path };
  }
  if (spec.machine) {
    if (!MACHINE_RE.test(spec.machine)) throw new UsageError(`image "${name}": machine: invalid machine name`);
    return { kind: 'machine', machine: spec.machine };
  }
  const colon = name.indexOf(':');
  if (colon < 0) {
    throw new UsageError(`image "${name}": unknown image (use debian:<suite> or oci:REGISTRY/NAME:TAG, or give it pull:, path:, machine: or oci:)`);
  }
  const distro = name.slice(0, colon);
  const suite = name.slice(colon + 1);
  const entry = CATALOGUE[distro];
  if (!entry) {
    const hint = didYouMean(distro, Object.keys(CATALOGUE)) || ` (known: ${Object.keys(CATALOGUE).join(', ')})`;
    throw new UsageError(`image "${name}": unknown distribution "${distro}"${hint}`);
  }
  if (!entry.suites.includes(suite) && !entry.aliases.includes(suite)) {
    throw new UsageError(
      `image "${name}": unknown ${distro} suite "${suite}"${didYouMean(suite, [...entry.suites, ...entry.aliases])} (known: ${[...entry.suites, ...entry.aliases].join(', ')})`,
    );
  }
  const source: ImageSource = {
    kind: 'bootstrap',
    distro,
    suite,
    allowExpiredRelease: spec.allowExpiredRelease ?? false,
  };
  if (spec.mirror) source.mirror = spec.mirror;
  return source;
}

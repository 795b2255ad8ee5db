/**
 * OCI image references and manifests, pure: parse `oci:REGISTRY/NAME[:TAG][@sha256:DIGEST]`, pick a platform's
 * manifest out of an index (or check a single image's config names it), and compute a manifest's digest.
 */
import { ARCHITECTURES } from '../../lib/arch.js';
import { createHash } from 'node:crypto';
import { InfraError } from '../../errors.js';

export const OCI_PREFIX = 'oci:';

export interface OciReference {
  /** `registry/repository` as written (skopeo normalises short names such as `fedora` itself). */
  repository: string;
  tag?: string;
  digest?: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// Registry host (with optional port) and path components, as the distribution spec allows them.
const REPOSITORY_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9-]+)*(:[0-9]{1,5})?(\/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$/;

export function isOciName(name: string): boolean {
  return name.startsWith(OCI_PREFIX);
}

/** `REF` without the `oci:` prefix; the tag defaults to `latest` only when there is no digest either. */
export function parseOciReference(text: string): OciReference {
  const ref = text.startsWith(OCI_PREFIX) ? text.slice(OCI_PREFIX.length) : text;
  const fail = (why: string) => new InfraError(`OCI reference "${text}": ${why}`);
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw fail('the digest must be sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw fail(`invalid tag "${tag}"`);
  }
  if (!rest || !REPOSITORY_RE.test(rest)) throw fail('expected REGISTRY/NAME[:TAG][@sha256:DIGEST] (lowercase name)');
  const parsed: OciReference = { repository: rest };
  if (tag !== undefined) parsed.tag = tag;
  if (digest !== undefined) parsed.digest = digest;
  if (!tag && !digest) parsed.tag = 'latest';
  return parsed;
}

export function formatOciReference(ref: OciReference): string {
  return `${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** skopeo's `docker://` source for the reference as written (tag and/or digest). */
export function dockerTransport(ref: OciReference): string {
  return `docker://${formatOciReference(ref)}`;
}

/** skopeo's `docker://` source pinned to one manifest digest, so a tag moved since resolving cannot slip in. */
export function pinnedTransport(ref: OciReference, manifestDigest: string): string {
  return `docker://${ref.repository}@${manifestDigest}`;
}

const NODE_TO_OCI_ARCH: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
};

export function hostPlatform(nodeArch: string = process.arch): Platform {
  const mapped = NODE_TO_OCI_ARCH[nodeArch];
  if (!mapped) throw new InfraError(`no OCI architecture known for this host (${nodeArch})`);
  return { os: 'linux', ...mapped };
}

/** The OCI platform of a Debian architecture name (the matrix's `arch` axis). */
export function platformForArch(arch: string): Platform {
  const info = ARCHITECTURES[arch];
  if (!info) throw new InfraError(`no OCI platform known for architecture "${arch}"`);
  return { os: 'linux', ...info.oci };
}

const platformText = (p: { os?: string; architecture?: string; variant?: string }): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Same OS and architecture, and the same variant where both name one (arm64 images often omit it). */
export function samePlatform(a: Platform, b: { os?: string; architecture?: string; variant?: string }): boolean {
  return a.os === b.os && a.architecture === b.architecture && (!a.variant || !b.variant || a.variant === b.variant);
}

/** Refuses an image config (JSON) whose platform is not `platform`. */
export function checkConfigPlatform(configJson: string, platform: Platform, name: string): void {
  let config: { os?: unknown; architecture?: unknown; variant?: unknown };
  try {
    config = JSON.parse(configJson) as typeof config;
  } catch {
    throw new InfraError(`${name}: the registry returned an image config that is not JSON`);
  }
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const found = { os: text(config.os), architecture: text(config.architecture), variant: text(config.variant) };
  if (!samePlatform(platform, found)) {
    throw new InfraError(`${name} is an image for ${platformText(found) || 'an unnamed platform'} only, not ${platformText(platform)} (push a multi-platform index, or pick the image for that platform)`);
  }
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

interface IndexEntry {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

export type ManifestChoice =
  | { kind: 'manifest'; digest: string }
  | { kind: 'index'; digest: string; indexDigest: string; platform: Platform };

/**
 * The manifest to pull for `platform` from the raw bytes `skopeo inspect --raw` printed: the manifest itself, or
 * the index entry of the platform (a variant matches exactly when both sides name one; arm64 images often omit it).
 */
export function chooseManifest(raw: string, platform: Platform): ManifestChoice {
  let parsed: { mediaType?: string; manifests?: IndexEntry[]; layers?: unknown; schemaVersion?: number };
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch {
    throw new InfraError('the registry returned a manifest that is not JSON');
  }
  const digest = sha256Digest(raw);
  const isIndex = (parsed.mediaType !== undefined && INDEX_TYPES.has(parsed.mediaType)) || (Array.isArray(parsed.manifests) && !parsed.layers);
  if (!isIndex) {
    if (parsed.schemaVersion !== 2) throw new InfraError('unsupported manifest (schema version 1): re-push the image with a current tool');
    return { kind: 'manifest', digest };
  }
  const exact = (parsed.manifests ?? []).find((m) => typeof m.digest === 'string' && samePlatform(platform, m.platform ?? {}));
  if (!exact?.digest || !DIGEST_RE.test(exact.digest)) {
    const offered = (parsed.manifests ?? []).map((m) => platformText(m.platform ?? {})).filter(Boolean);
    const wanted = platformText(platform);
    throw new InfraError(`no image for ${wanted} in the index (offered: ${offered.join(', ') || 'none'})`);
  }
  return { kind: 'index', digest: exact.digest, indexDigest: digest, platform };
}

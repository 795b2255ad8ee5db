import { describe, expect, it } from 'vitest';
import { InfraError, UsageError } from '../../src/errors.js';
import { parseImageRef } from '../../src/images/ref.js';
import {
  checkConfigPlatform,
  chooseManifest,
  hostPlatform,
  parseOciReference,
  pinnedTransport,
  platformForArch,
  sha256Digest,
} from '../../src/images/oci/reference.js';
import { copyArgv, findAuthFile, inspectRawArgv, skopeoError, unpackArgv } from '../../src/images/oci/skopeo.js';
import { parseMatrix } from '../../src/matrix/index.js';

const D = `sha256:${'a'.repeat(64)}`;
const AMD64 = { os: 'linux', architecture: 'amd64' };

describe('parseOciReference', () => {
  it('splits registry/name, tag and digest', () => {
    expect(parseOciReference('oci:docker.io/library/fedora:41')).toEqual({ repository: 'docker.io/library/fedora', tag: '41' });
    expect(parseOciReference('127.0.0.1:5000/nsm/debian:v1')).toEqual({ repository: '127.0.0.1:5000/nsm/debian', tag: 'v1' });
    expect(parseOciReference(`oci:quay.io/a/b@${D}`)).toEqual({ repository: 'quay.io/a/b', digest: D });
    expect(parseOciReference(`oci:quay.io/a/b:9@${D}`)).toEqual({ repository: 'quay.io/a/b', tag: '9', digest: D });
    // a registry port is not a tag
    expect(parseOciReference('oci:localhost:5000/x')).toEqual({ repository: 'localhost:5000/x', tag: 'latest' });
  });

  it('refuses malformed references with exit 3', () => {
    for (const bad of ['oci:', 'oci:Docker.io/Fedora:41', 'oci:a/b@sha256:abc', 'oci:a/b:-x', 'oci:a//b', 'oci:a/../b', 'oci:a b']) {
      const error = (() => {
        try {
          parseOciReference(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(error, bad).toBeInstanceOf(InfraError);
      expect((error as InfraError).exitCode).toBe(3);
    }
  });

  it('pins the copy to the resolved digest, whatever the tag', () => {
    expect(pinnedTransport(parseOciReference('oci:r.io/x:1'), D)).toBe(`docker://r.io/x@${D}`);
  });
});

describe('chooseManifest', () => {
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { digest: `sha256:${'1'.repeat(64)}`, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: `sha256:${'2'.repeat(64)}`, platform: { os: 'linux', architecture: 'amd64' } },
      { digest: `sha256:${'3'.repeat(64)}`, platform: { os: 'unknown', architecture: 'unknown' } },
    ],
  });

  it("picks the host platform's entry of an index (Docker manifest lists too)", () => {
    expect(chooseManifest(index, AMD64)).toMatchObject({ kind: 'index', digest: `sha256:${'2'.repeat(64)}`, indexDigest: sha256Digest(index) });
    expect(chooseManifest(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest).toBe(`sha256:${'1'.repeat(64)}`);
    const list = index.replace('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json');
    expect(chooseManifest(list, AMD64).digest).toBe(`sha256:${'2'.repeat(64)}`);
  });

  it('uses the sha256 of the exact bytes of a single manifest', () => {
    const raw = '{"schemaVersion":2,"config":{},"layers":[]}';
    expect(chooseManifest(raw, AMD64)).toEqual({ kind: 'manifest', digest: sha256Digest(raw) });
    expect(sha256Digest('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('names the platforms offered when the host is not among them, and refuses schema 1', () => {
    expect(() => chooseManifest(index, { os: 'linux', architecture: 's390x' })).toThrow(/no image for linux\/s390x .*linux\/arm64\/v8, linux\/amd64/);
    expect(() => chooseManifest('{"schemaVersion":1,"fsLayers":[]}', AMD64)).toThrow(/schema version 1/);
    expect(() => chooseManifest('<html>', AMD64)).toThrow(/not JSON/);
  });

  it("checks a single image's config names the platform asked for (a variant only where both name one)", () => {
    const arm64 = platformForArch('arm64');
    expect(() => checkConfigPlatform('{"os":"linux","architecture":"arm64"}', arm64, 'r.io/x:1')).not.toThrow();
    expect(() => checkConfigPlatform('{"os":"linux","architecture":"arm64","variant":"v8"}', arm64, 'r.io/x:1')).not.toThrow();
    expect(() => checkConfigPlatform('{"os":"linux","architecture":"amd64"}', arm64, 'r.io/x:1')).toThrow(/^r\.io\/x:1 is an image for linux\/amd64 only, not linux\/arm64\/v8/);
    expect(() => checkConfigPlatform('{"os":"linux","architecture":"arm","variant":"v5"}', platformForArch('armhf'), 'r.io/x:1')).toThrow(/linux\/arm\/v5 only, not linux\/arm\/v7/);
    expect(() => checkConfigPlatform('{}', platformForArch('i386'), 'r.io/x:1')).toThrow(/an unnamed platform only, not linux\/386/);
    expect(() => checkConfigPlatform('<html>', arm64, 'r.io/x:1')).toThrow(/not JSON/);
  });

  it('maps Node architectures to OCI ones', () => {
    expect(hostPlatform('x64')).toEqual(AMD64);
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(() => hostPlatform('mips')).toThrow(InfraError);
  });
});

describe('skopeo and umoci command lines', () => {
  const ref = parseOciReference('oci:127.0.0.1:5000/x:1');

  it('adds TLS and auth options only when asked', () => {
    expect(inspectRawArgv(ref, { insecure: false })).toEqual(['skopeo', 'inspect', '--raw', '--retry-times=2', 'docker://127.0.0.1:5000/x:1']);
    expect(inspectRawArgv(ref, { insecure: true, authFile: '/a.json' })).toEqual([
      'skopeo', 'inspect', '--raw', '--retry-times=2', '--tls-verify=false', '--authfile=/a.json', 'docker://127.0.0.1:5000/x:1',
    ]);
    expect(copyArgv(`docker://x@${D}`, '/s/layout', 'image', { insecure: true, authFile: '/a.json' })).toEqual([
      'skopeo', 'copy', '--quiet', '--retry-times=2', '--src-tls-verify=false', '--src-authfile=/a.json', `docker://x@${D}`, 'oci:/s/layout:image',
    ]);
    expect(unpackArgv('/s/layout', 'image', '/s/bundle')).toEqual(['umoci', 'unpack', '--image', '/s/layout:image', '/s/bundle']);
  });

  it('finds the auth file in the usual order', () => {
    const all = new Set(['/env.json', '/run/user/0/containers/auth.json', '/root/.docker/config.json']);
    const exists = (p: string) => all.has(p);
    expect(findAuthFile({ REGISTRY_AUTH_FILE: '/env.json', XDG_RUNTIME_DIR: '/run/user/0' }, exists, '/root')).toBe('/env.json');
    expect(findAuthFile({ XDG_RUNTIME_DIR: '/run/user/0' }, exists, '/root')).toBe('/run/user/0/containers/auth.json');
    expect(findAuthFile({}, exists, '/root')).toBe('/root/.docker/config.json');
    expect(findAuthFile({ DOCKER_CONFIG: '/nowhere' }, exists, '/root')).toBeUndefined();
  });

  it("keeps skopeo's message, not its log decoration", () => {
    const stderr = 'Getting image source signatures\ntime="2026" level=fatal msg="writing blob: Digest did not match, expected \\"x\\""\n';
    expect(skopeoError(stderr)).toBe('writing blob: Digest did not match, expected "x"');
  });
});

describe('oci: images in image references and matrix files', () => {
  it('reads oci:REF names and oci: keys, with insecure', () => {
    expect(parseImageRef('oci:docker.io/library/fedora:41')).toEqual({
      kind: 'oci',
      ref: { repository: 'docker.io/library/fedora', tag: '41' },
      insecure: false,
    });
    expect(parseImageRef('local', { oci: '127.0.0.1:5000/x:1', insecure: true })).toEqual({
      kind: 'oci',
      ref: { repository: '127.0.0.1:5000/x', tag: '1' },
      insecure: true,
    });
    expect(() => parseImageRef('debian:bookworm', { insecure: true })).toThrow(/insecure: applies only to oci: images/);
    expect(() => parseImageRef('both', { oci: 'a/b', path: '/x' })).toThrow(/only one of/);
  });

  it('accepts both forms in a matrix file, and refuses a bad oci: value at its position', () => {
    const model = parseMatrix(
      `matrix:\n  image: ["oci:127.0.0.1:5000/a/b:1", fedora]\nimages:\n  "oci:127.0.0.1:5000/a/b:1": { insecure: true }\n  fedora: { oci: registry.fedoraproject.org/fedora:41, packages: [gcc] }\nsteps:\n  - name: t\n    run: "true"\n`,
      'm.yaml',
    );
    expect(model.images['oci:127.0.0.1:5000/a/b:1']).toEqual({ packages: [], insecure: true });
    expect(model.images.fedora).toEqual({ packages: ['gcc'], oci: 'registry.fedoraproject.org/fedora:41' });
    const bad = (() => {
      try {
        parseMatrix(`matrix:\n  image: [x]\nimages:\n  x: { oci: "https://r.io/x" }\nsteps:\n  - name: t\n    run: "true"\n`, 'm.yaml');
      } catch (e) {
        return e;
      }
    })();
    expect(bad).toBeInstanceOf(UsageError);
    expect((bad as UsageError).lines.join('\n')).toMatch(/^m\.yaml:4:\d+: .*OCI reference/m);
  });
});

import { describe, expect, it } from 'vitest';
import { imageRequestFor } from '../../src/images/index.js';
import { imagesTable, formatBytes } from '../../src/cli/commands/images.js';
import type { Manifest } from '../../src/images/index.js';
import { makeModel } from '../../bench/support/model.js';

describe('imageRequestFor', () => {
  it('merges matrix packages and image packages in order, without duplicates, and says whether the image boots', () => {
    const model = makeModel({
      packages: ['make', 'gcc'],
      setup: 'echo matrix',
      boot: true,
      images: { 'debian:trixie': { packages: ['gcc', 'clang'], setup: 'echo image', mirror: 'http://m/debian' } },
    });
    expect(imageRequestFor('debian:trixie', model)).toEqual({
      name: 'debian:trixie',
      spec: { packages: ['gcc', 'clang'], setup: 'echo image', mirror: 'http://m/debian' },
      packages: ['make', 'gcc', 'clang'],
      boot: true,
      setup: 'echo matrix\necho image',
    });
  });

  it('an image without a spec gets the matrix-wide packages only, and no setup', () => {
    const request = imageRequestFor('debian:bookworm', makeModel({ packages: ['git'], boot: false, images: {} }));
    expect(request).toEqual({ name: 'debian:bookworm', spec: { packages: [] }, packages: ['git'], boot: false });
  });
});

describe('images list table', () => {
  const manifest = (over: Partial<Manifest>): Manifest => ({
    name: 'debian:bookworm',
    key: 'a'.repeat(24),
    baseKey: 'a'.repeat(24),
    layer: 'base',
    kind: 'debian',
    keyInputs: {},
    root: '/x',
    sizeBytes: 127_000_000,
    created: '2026-01-01T00:00:00.000Z',
    lastUsed: '2026-01-01T01:00:00.000Z',
    toolVersion: '0.1.0',
    madeFrom: 'mmdebstrap',
    buildMs: 1,
    ...over,
  });

  it('aligns name, arch, key, layer, size, age and last use', () => {
    const now = Date.parse('2026-01-01T02:00:00.000Z');
    const lines = imagesTable([{ ...manifest({}), arch: 'arm64' }, manifest({ name: 'tiny', key: 'b'.repeat(24), layer: 'top', sizeBytes: 0 })], now);
    expect(lines).toEqual([
      'NAME             ARCH   KEY                       LAYER  SIZE    AGE        LAST USED',
      `debian:bookworm  arm64  ${'a'.repeat(24)}  base   127 MB  2h00m ago  1h00m ago`,
      `tiny             -      ${'b'.repeat(24)}  top    -       2h00m ago  1h00m ago`,
    ]);
  });

  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('-');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_500_000)).toBe('1.5 MB');
    expect(formatBytes(221_690_491)).toBe('222 MB');
  });
});

/**
 * The one debian:bookworm image of a test run, built by the images stage itself into the run's state directory.
 * Memoised per process and cached in the store, so every test file of a run reuses the same image.
 */
import { inject } from 'vitest';
import { provisionImage } from '../../src/images/index.js';
import type { ProvisionedImage } from '../../src/images/types.js';

const memo = new Map<string, Promise<ProvisionedImage>>();

export function testImage(packages: string[] = [], options: { boot?: boolean } = {}): Promise<ProvisionedImage> {
  const all = [...new Set(packages)];
  const boot = options.boot ?? false;
  const memoKey = `${[...all].sort().join(' ')}${boot ? ' +boot' : ''}`;
  let pending = memo.get(memoKey);
  if (!pending) {
    pending = provisionImage(
      { name: 'debian:bookworm', spec: { packages: [] }, packages: all, boot },
      { stateDir: inject('stateDir'), onProgress: process.env.NSMATRIX_TEST_VERBOSE ? (l) => console.error(l) : undefined },
    );
    // A failed build must not poison later tests of the same process with a cached rejection.
    pending.catch(() => memo.delete(memoKey));
    memo.set(memoKey, pending);
  }
  return pending;
}

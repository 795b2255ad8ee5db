/**
 * One fresh state directory per test run, shared by every test file of the run: CI exercises the cold path
 * (images are built by the tool itself into it), and files after the first reuse what earlier ones built.
 * Integration tests need root and systemd-nspawn; without them they fail loudly (see test/helpers/host.ts).
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    stateDir: string;
  }
}

export default function setup(project: TestProject): () => void {
  const keep = process.env.NSMATRIX_TEST_STATE_DIR;
  // /var/tmp, not /tmp: image trees are hundreds of MB and /tmp may be a small tmpfs on users' hosts.
  const stateDir = keep ?? mkdtempSync(join('/var/tmp', 'nsmatrix-test-state-'));
  project.provide('stateDir', stateDir);
  return () => {
    if (!keep && existsSync(stateDir)) rmSync(stateDir, { recursive: true, force: true });
  };
}

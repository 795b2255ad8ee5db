/** `nsmatrix shell` says, before anything runs, that what is written under /src vanishes with the container. */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const stateDir = inject('stateDir');
const work = mkdtempSync('/var/tmp/nsm-cli-shell-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('nsmatrix shell banner', () => {
  it('warns that files written under /src vanish (overlay), and they do', () => {
    const r = runCli(['shell', 'debian:bookworm', '--state-dir', stateDir, '--', 'sh', '-c', 'echo kept > /src/written && cat /src/written'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('kept\n');
    expect(r.stderr).toMatch(/nsmatrix: debian:bookworm, .* at \/src \(an overlay: files written under \/src vanish when the shell exits/);
    expect(existsSync(join(work, 'written'))).toBe(false);
  }, 300_000);
});

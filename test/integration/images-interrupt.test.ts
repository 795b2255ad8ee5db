/**
 * An interrupt while a top layer's copy of its base is being made stops the copy: it used to run to its end
 * (seconds, tens of seconds on a loaded host) before the interrupt took effect.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireContainerHost } from '../helpers/host.js';
import { damage, project, settle, start } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-images-interrupt-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('SIGINT while a top layer is built', () => {
  it('stops the copy of the base instead of waiting for it', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const marker = `nsm-copy-interrupt-${process.pid}-${Date.now()}`;
      // A setup line nobody built before: a new top layer, copied from the base (no network needed).
      const file = project(join(work, `p${attempt}`), `matrix:\n  image: [debian:bookworm]\nsetup: echo ${marker}\nsteps:\n  - name: a\n    run: echo hi\n`);
      const out = join(work, `out${attempt}`);
      const started = Date.now();
      const run = start(['run', file, '--state-dir', stateDir, '-o', out, '--plain'], { env: { NSMATRIX_VERBOSE: '1' } });
      expect(await run.seen(/building top layer/)).toBe(true);
      const beforeSignal = run.output();
      run.child.kill('SIGINT');
      const result = await run.done;
      // The copy was over before the signal (a very fast disk): this attempt shows nothing, try again.
      if (/cloned base/.test(beforeSignal)) continue;
      expect(result.code, result.stderr).toBe(130);
      expect(result.stdout + result.stderr, 'the copy ran to its end after the signal').not.toMatch(/cloned base/);
      expect(await settle(() => damage(stateDir, out, marker, started))).toEqual([]);
      return;
    }
    throw new Error('in 3 attempts the copy of the base was always over before the signal');
  });
});

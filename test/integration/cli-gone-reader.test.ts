/**
 * A run whose output nobody reads any more (`nsmatrix run | head`, a CI log collector that died) goes on: it used to
 * die of the closed pipe's EPIPE with a stack trace, leaving its container and scratch behind and no reports.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireContainerHost } from '../helpers/host.js';
import { CLI } from '../helpers/cli.js';
import { damage, project, settle } from '../hardening/harness.js';

const stateDir = inject('stateDir');
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-gone-reader-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a run whose stdout reader goes away', () => {
  it('finishes, cleans up and writes its reports', async () => {
    const marker = `nsm-gone-reader-${process.pid}`;
    const file = project(join(work, 'p'), `matrix:\n  image: [debian:bookworm]\nsteps:\n  - name: slow\n    run: sh -c 'sleep 2; echo finished' ${marker}\n`);
    const out = join(work, 'out');
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, 'run', file, '--state-dir', stateDir, '-o', out, '--plain'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Like `| head -1`: the first line read, then the read end closed while the run has more to say.
    child.stdout.once('data', () => child.stdout.destroy());
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));

    expect(stderr).not.toMatch(/EPIPE|Unhandled|internal error/);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    expect((JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { outcome: string }).outcome).toBe('passed');
    expect(await settle(() => damage(stateDir, out, marker, started))).toEqual([]);
  });
});

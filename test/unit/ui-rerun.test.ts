/** The rerun command: which program it names, and that its filter selects exactly one cell. */
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rerunCommand, selfCommand } from '../../src/run/rerun.js';
import { selectCells } from '../../src/matrix/select.js';
import { makeCell, makeStep } from '../../bench/support/model.js';

describe('rerun command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-rerun-'));
  const script = join(dir, 'main.js');
  writeFileSync(script, '');
  chmodSync(script, 0o755);

  it('names nsmatrix only when the nsmatrix on PATH is this program, else node and the script', () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    expect(selfCommand(script, { PATH: bin }, '/usr/bin/node')).toEqual(['/usr/bin/node', script]);
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'nsmatrix'), '#!/bin/sh\n');
    chmodSync(join(other, 'nsmatrix'), 0o755);
    expect(selfCommand(script, { PATH: `${other}:${bin}` }, '/usr/bin/node')).toEqual(['/usr/bin/node', script]);
    symlinkSync(script, join(bin, 'nsmatrix'));
    expect(selfCommand(script, { PATH: `/nonexistent:${bin}` }, '/usr/bin/node')).toEqual(['nsmatrix']);
  });

  it('selects exactly the cell by id, also when another cell has the same values, and quotes every word', () => {
    const step = [makeStep(0, 's', 'true')];
    const a = makeCell('debian-sid', step, { values: { image: 'debian:sid', v: '1' } });
    const b = makeCell('debian-sid_v-1', step, { values: { image: 'debian:sid', v: 1 } });
    const command = rerunCommand({ command: ['nsmatrix'], file: "/my dir/m.yaml", options: ['--state-dir', '/s', '--reporter', 'html=/o/it\'s.html'] }, b);
    expect(command).toBe("nsmatrix run '/my dir/m.yaml' --filter nsmatrix-cell=debian-sid_v-1 --state-dir /s --reporter 'html=/o/it'\\''s.html'");
    const filter = /--filter (\S+)/.exec(command)![1]!;
    expect(selectCells([a, b], { filter: [filter] }).map((c) => c.id)).toEqual(['debian-sid_v-1']);
  });
});

describe('rerun command and scripts/setup-host.sh', () => {
  it('names nsmatrix when the nsmatrix on PATH is the wrapper setup-host.sh installs for this checkout', () => {
    const bin = mkdtempSync(join(tmpdir(), 'nsm-setup-bin-'));
    const r = spawnSync('bash', ['scripts/setup-host.sh'], { encoding: 'utf8', env: { ...process.env, NSMATRIX_BIN_DIR: bin, NSMATRIX_SKIP_APT: '1', NSMATRIX_SKIP_BUILD: '1' } });
    expect(r.status, r.stderr).toBe(0);
    const version = spawnSync(join(bin, 'nsmatrix'), ['--version'], { encoding: 'utf8' });
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(selfCommand(resolve('dist/src/cli/main.js'), { PATH: bin })).toEqual(['nsmatrix']);
    expect(selfCommand(resolve('dist/src/cli/main.js'), { PATH: '/nonexistent' }, '/n')).toEqual(['/n', resolve('dist/src/cli/main.js')]);
  });
});

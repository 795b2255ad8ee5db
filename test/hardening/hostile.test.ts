/**
 * Hostile input through the BUILT command line: random and mutated matrix files never crash `validate`; random bytes
 * printed by real steps always give schema-valid JUnit; hostile axis values never put a file outside the output or
 * state directories. Cases come from fast-check with a printed seed (NSMATRIX_SEED replays them).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../src/run/result.js';
import { requireContainerHost } from '../helpers/host.js';
import { CLI, runCli, schemaErrors } from '../helpers/cli.js';
import { damage, project, seedFromEnv, settle } from './harness.js';

const stateDir = inject('stateDir');
const SEED = seedFromEnv();
const VALIDATE_CASES = Number(process.env.NSMATRIX_HOSTILE_CASES ?? 200) || 200;
let work: string;

beforeAll(() => {
  requireContainerHost();
  work = mkdtempSync('/var/tmp/nsm-hard-hostile-');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const VALID = [
  readFileSync('matrices/smoke.yaml', 'utf8'),
  readFileSync('matrices/packaging.yaml', 'utf8'),
  `name: full
matrix:
  image: [debian:bookworm, debian:trixie]
  cc: [gcc, clang]
  exclude:
    - { image: debian:trixie, cc: clang }
  include:
    - { image: debian:sid, cc: gcc, experimental: true }
images:
  debian:sid: { packages: [clang], allow-expired-release: true }
packages: [build-essential]
setup: |
  echo configured
source: overlay
env: { LC_ALL: C.UTF-8 }
boot: false
network: private
private-users: false
fail-fast: true
continue-on-error: \${{ matrix.experimental }}
max-parallel: 4
timeout: 1h30m
retries: 0
bind: ["/srv:/cache:ro"]
nspawn: ["--rlimit=RLIMIT_NOFILE=4096"]
steps:
  - name: build \${{ matrix.cc }}
    run: make CC=$MATRIX_CC
    timeout: 10m
    retries: 1
    env: { VERBOSE: "1" }
`,
];

const NASTY = ['\0', '\t', '\r', '\u001b[31m', '\uFEFF', '\u202E', '\uD800', '😀', ':', ': ', '- ', '[', ']', '{', '}', '"', "'", '#', '&a', '*a', '!!', '|', '>', '%', '@', '`', '${{', '}}', '${{ matrix.', '\n', '\n  ', '---\n', '...', '~', '<<: *a', '0x', '1e999', '-.inf', '.nan', '9'.repeat(40), 'x'.repeat(3000)];

/** A mutation of one of the valid files: cut, insert, duplicate or swap at random places. */
const mutated = fc
  .tuple(
    fc.constantFrom(...VALID),
    fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
        fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 })) }),
        fc.record({ kind: fc.constant('dupline' as const), at: fc.nat() }),
        fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
      ),
      { minLength: 1, maxLength: 6 },
    ),
  )
  .map(([base, edits]) => {
    let text = base;
    for (const edit of edits) {
      const at = edit.at % (text.length + 1);
      if (edit.kind === 'cut') text = text.slice(0, at) + text.slice(at + edit.len);
      else if (edit.kind === 'insert') text = text.slice(0, at) + edit.text + text.slice(at);
      else {
        const lines = text.split('\n');
        const i = edit.at % lines.length;
        if (edit.kind === 'dupline') lines.splice(i, 0, lines[i]!);
        else [lines[i], lines[edit.with % lines.length]] = [lines[edit.with % lines.length]!, lines[i]!];
        text = lines.join('\n');
      }
    }
    return text;
  });

/** Random documents with the right top-level keys but values of any shape, as YAML or JSON text. */
const randomDocument = fc
  .dictionary(
    fc.constantFrom('name', 'matrix', 'images', 'packages', 'setup', 'source', 'env', 'boot', 'network', 'private-users', 'fail-fast', 'continue-on-error', 'max-parallel', 'timeout', 'retries', 'bind', 'nspawn', 'steps', 'stpes', '__proto__', 'constructor'),
    fc.oneof(
      fc.anything({ maxDepth: 3 }),
      fc.array(fc.record({ name: fc.string(), run: fc.oneof(fc.string(), fc.integer()), timeout: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }), { maxLength: 3 }),
      fc.record({ image: fc.array(fc.oneof(fc.string(), fc.constantFrom('debian:bookworm', '../x', 'a/b')), { maxLength: 3 }), include: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] }),
    ),
  )
  .map((doc) => JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null');

const rawBytes = fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes).toString('latin1'));

/** Runs `validate` on many files at once (a few processes in flight: each start costs about 0.3 s of node). */
async function validateAll(files: string[], parallel = 4): Promise<{ file: string; code: number | null; stdout: string; stderr: string }[]> {
  const results: { file: string; code: number | null; stdout: string; stderr: string }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      results.push(
        await new Promise((resolve) => {
          const child = spawn(process.execPath, [CLI, 'validate', file], { cwd: work, env: { ...process.env, NO_COLOR: '1' } });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          child.on('close', (code) => resolve({ file, code, stdout, stderr }));
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

describe(`hostile input (seed ${SEED}; replay with NSMATRIX_SEED=${SEED})`, () => {
  it(`${VALIDATE_CASES} random and mutated matrix files: exit 0, or exit 2 with FILE:LINE:COL lines, never a crash`, async () => {
    const cases = [
      ...fc.sample(mutated, { seed: SEED, numRuns: Math.ceil(VALIDATE_CASES * 0.6) }),
      ...fc.sample(randomDocument, { seed: SEED + 1, numRuns: Math.ceil(VALIDATE_CASES * 0.3) }),
      ...fc.sample(rawBytes, { seed: SEED + 2, numRuns: Math.ceil(VALIDATE_CASES * 0.1) }),
    ];
    const dir = join(work, 'validate');
    mkdirSync(dir, { recursive: true });
    const files = cases.map((text, i) => {
      const file = join(dir, `case-${i}.yaml`);
      writeFileSync(file, text, 'latin1');
      return file;
    });
    const results = await validateAll(files);
    const bad: string[] = [];
    const codes = new Map<string, number>();
    for (const r of results) {
      codes.set(String(r.code), (codes.get(String(r.code)) ?? 0) + 1);
      const shown = relative(work, r.file);
      const lines = r.stderr.split('\n').filter((l) => l.length > 0);
      const wellFormed = lines.every((l) =>
        l.startsWith(`${r.file}:`) ? /^:\d+:\d+: \S/.test(l.slice(r.file.length)) : /^nsmatrix: /.test(l) && !/internal error/.test(l),
      );
      if (r.code === 0 && lines.length === 0) continue;
      if (r.code === 2 && lines.length > 0 && wellFormed && !/\n\s+at /.test(r.stderr)) continue;
      bad.push(`${shown} (exit ${r.code}):\n${r.stderr.slice(0, 800)}\n--- file (JSON-escaped): ${JSON.stringify(readFileSync(r.file, 'latin1')).slice(0, 800)}`);
    }
    console.log(`validate: ${results.length} cases, exit codes ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(results).toHaveLength(cases.length);
    expect(codes.get('2')).toBeGreaterThan(0);
    expect(bad, bad.slice(0, 5).join('\n\n')).toEqual([]);
  }, 300_000); // about 0.5 s of node per case, 4 at a time: near the default 120 s on a busy 2-core host

  it('random bytes printed by real steps always give JUnit that passes the profile schema', () => {
    // Bytes biased towards what breaks XML: NUL and C0 controls, ESC sequences, CDATA ends, invalid UTF-8, CESU surrogates.
    const hostileByte = fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(0, 0x1b, 0x07, 0x08, 0x0b, 0x0c, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xed, 0xf5, 0xfe, 0xff),
    );
    const chunk = fc.oneof(
      fc.array(hostileByte, { maxLength: 60 }),
      fc.constantFrom([0x5d, 0x5d, 0x3e], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0x1b, 0x5b, 0x33, 0x31, 0x6d], [0xe2, 0x82], [0xef, 0xbf, 0xbe], [0x0d, 0x0a]),
    );
    const output = fc.array(chunk, { minLength: 1, maxLength: 12 }).map((parts) => parts.flat());
    const samples = fc.sample(fc.array(output, { minLength: 6, maxLength: 6 }), { seed: SEED + 3, numRuns: 2 });
    for (const [run, outputs] of samples.entries()) {
      // Each step prints its bytes with printf octal escapes, on stdout and stderr, and the last one fails.
      const octal = (bytes: number[]) => bytes.map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
      const steps = outputs.map((bytes, i) => [`  - name: bytes ${i}`, `    run: printf '${octal(bytes)}'; printf '${octal(bytes.slice().reverse())}' >&2${i === outputs.length - 1 ? '; exit 3' : ''}`].join('\n'));
      const file = project(join(work, `bytes-${run}`), `matrix:\n  image: [debian:bookworm]\nsteps:\n${steps.join('\n')}\n`);
      const out = join(work, `bytes-out-${run}`);
      const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown']);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
      expect(result.cells[0]!.steps.map((s) => s.outcome)).toEqual([...Array(5).fill('passed'), 'failed']);
      // Every step's log exists and its lines carry the timestamp prefix, whatever the bytes were.
      for (const step of result.cells[0]!.steps) {
        const log = readFileSync(join(out, step.attempts[0]!.logPath), 'utf8');
        expect(log.split('\n').filter(Boolean).every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z (out|err)\| /.test(l)), step.name).toBe(true);
      }
      expect(schemaErrors(join(out, 'junit.xml')), `seed ${SEED}, run ${run}`).toBe('');
    }
  });

  it('hostile axis values and image names never put a file outside the output or state directories', async () => {
    const marker = `nsm-escape-${process.pid}`;
    const values = [
      `../${marker}-1`,
      `../../${marker}-2`,
      `/tmp/${marker}-3`,
      `a/b/${marker}-4`,
      '..',
      '.',
      `${'ü'.repeat(150)}-${marker}-5`,
      'x'.repeat(400),
      '😀 \u202Eevil\u202C',
      ' leading and trailing ',
      '$(touch /tmp/nsm-escape-subst)',
      '*',
    ];
    const file = project(
      join(work, 'axes'),
      [
        'matrix:',
        '  image: [debian:bookworm]',
        `  v: ${JSON.stringify(values)}`,
        'fail-fast: false',
        'max-parallel: 2',
        'steps:',
        '  - name: ${{ matrix.v }}',
        '    run: echo "$MATRIX_V" > /artifacts/value; echo "${{ matrix.v }}"',
      ].join('\n'),
    );
    const out = join(work, 'axes-out');
    const before = snapshot();
    const runStarted = Date.now() - 1000; // ctime has coarse granularity on some filesystems
    const r = runCli(['run', file, '--state-dir', stateDir, '-o', out, '-r', 'junit', '-r', 'json', '-r', 'html', '-r', 'markdown']);
    const result = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResult;
    expect(result.cells).toHaveLength(values.length);
    // Every step only echoes its value: every cell must pass and the run exit 0 (accepting 1 would hide a broken cell).
    const notPassed = result.cells.filter((c) => c.outcome !== 'passed');
    expect(notPassed.map((c) => `${JSON.stringify(c.values.v)}: ${c.outcome} ${c.infrastructureError ?? c.steps.map((s) => s.reason ?? '').join(' ')}`), r.stdout + r.stderr).toEqual([]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const cell of result.cells) {
      // One plain directory name per cell, directly under the output directory.
      expect(cell.outputDir).toMatch(/^[^/]+$/);
      expect(['.', '..']).not.toContain(cell.outputDir);
      expect(Buffer.byteLength(cell.outputDir)).toBeLessThanOrEqual(255);
      expect(readFileSync(join(out, cell.artifactsDir, 'value'), 'utf8')).toBe(`${cell.values.v}\n`);
    }
    expect(new Set(result.cells.map((c) => c.outputDir)).size).toBe(values.length);
    expect(schemaErrors(join(out, 'junit.xml'))).toBe('');
    expect(escapes(before, marker)).toEqual([]);
    expect(existsSync('/tmp/nsm-escape-subst')).toBe(false);
    const machines = result.cells.flatMap((c) => (c.machine ? [c.machine] : []));
    expect(await settle(() => damage(stateDir, out, marker, runStarted, machines))).toEqual([]);

    // Hostile image names: refused as bad input (exit 2) or failed as an image (exit 3), never a path outside.
    for (const image of ['../../../tmp/x', `debian:../../${marker}-6`, `debian:bookworm/../../${marker}-7`, '/etc', `debian:${'a'.repeat(300)}`]) {
      const f = project(join(work, 'img'), `matrix:\n  image: [${JSON.stringify(image)}]\nsteps:\n  - name: s\n    run: "true"\n`);
      const o = join(work, 'img-out');
      const ri = runCli(['run', f, '--state-dir', stateDir, '-o', o]);
      expect([2, 3], `${image}: ${ri.stdout}${ri.stderr}`).toContain(ri.code);
      expect(ri.stderr).not.toMatch(/\n\s+at |internal error/);
    }
    expect(escapes(before, marker)).toEqual([]);
  });
});

/** Top-level entries of the places an escaping path could land in. */
function snapshot(): Set<string> {
  const seen = new Set<string>();
  for (const dir of ['/', '/tmp', '/var/tmp', work, stateDir, join(stateDir, 'images'), join(stateDir, 'run')]) {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) seen.add(join(dir, name));
  }
  return seen;
}

/** New entries in those places that carry the marker, or that are not what a run is allowed to add there. */
function escapes(before: Set<string>, marker: string): string[] {
  const allowedNew = [join(work, ''), join(stateDir, 'images'), join(stateDir, 'locks'), join(stateDir, 'logs')];
  const found: string[] = [];
  for (const path of snapshot()) {
    if (before.has(path)) continue;
    const inWork = path.startsWith(`${work}/`);
    const allowed = allowedNew.some((a) => path.startsWith(`${a}/`));
    if (path.includes(marker) || (!inWork && !allowed && (path.startsWith(`${stateDir}/`) || path.startsWith(`${work}/`)))) found.push(path);
    if (path.startsWith('/tmp/') || path.startsWith('/var/tmp/') || path.split('/').length === 2) {
      if (path.includes(marker) || path.includes('nsm-escape')) found.push(path);
    }
  }
  // Nothing named after the hostile values anywhere below the work dir but inside the output directory.
  const walk = (dir: string, depth: number): void => {
    if (depth > 4) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name.includes(marker) && !path.startsWith(join(work, 'axes-out'))) found.push(path);
      if (entry.isDirectory() && !entry.isSymbolicLink()) walk(path, depth + 1);
    }
  };
  walk(work, 0);
  return [...new Set(found)];
}

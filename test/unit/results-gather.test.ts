/** The gathering script and the reading of its output: glob semantics, file types, framing and every bound. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GatherSink, containerPattern, gatherScript, globBase, globToEre, readGathered, type GatherLimits } from '../../src/results/gather.js';
import type { ResultSpec } from '../../src/matrix/types.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-results-gather-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('glob to find and grep', () => {
  it('relative paths are under /src; the base is the fixed leading directories', () => {
    expect(containerPattern('reports/*.xml')).toBe('/src/reports/*.xml');
    expect(containerPattern('./a//b/./c.tap')).toBe('/src/a/b/c.tap');
    expect(globBase('/build/**/test-suite.log')).toBe('/build');
    expect(globBase('/b/x[12]/*.trs')).toBe('/b');
    expect(globBase('/tmp/one.xml')).toBe('/tmp/one.xml');
    expect(globBase('/**/*.xml')).toBe('/');
  });

  it('** spans zero or more directories, * and ? stay within one, [!x] negates, regex characters are literal', () => {
    const re = (glob: string) => new RegExp(globToEre(glob));
    expect(re('/b/**/t.log').test('/b/t.log')).toBe(true);
    expect(re('/b/**/t.log').test('/b/x/y/t.log')).toBe(true);
    expect(re('/b/*.trs').test('/b/x/a.trs')).toBe(false);
    expect(re('/b/?.trs').test('/b/a.trs')).toBe(true);
    expect(re('/b/[!a]*.xml').test('/b/a1.xml')).toBe(false);
    expect(re('/b/[!a]*.xml').test('/b/b1.xml')).toBe(true);
    expect(re('/b/a+b(1).xml').test('/b/a+b(1).xml')).toBe(true);
    expect(re('/b/a.xml').test('/b/aaxml')).toBe(false);
  });
});

/** Runs the script with the host's sh in `dir` (the unit-test stand-in for a container's exec). */
function gatherOnHost(specs: ResultSpec[], limits: GatherLimits) {
  const plan = gatherScript(specs, limits);
  const run = spawnSync('sh', ['-e', '-c', plan.script], { maxBuffer: 64 * 2 ** 20, timeout: 20_000 });
  expect(run.status).toBe(0);
  const sink = new GatherSink(limits);
  sink.write(run.stdout);
  return readGathered(sink.bytes(), plan.token, specs, limits, sink.overflowed);
}

describe('the gathering script (run by sh on this host)', () => {
  const limits: GatherLimits = { maxFiles: 3, maxFileBytes: 100, maxTotalBytes: 10_000 };
  const root = join(dir, 'tree');
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  mkdirSync(join(root, 'many'));
  writeFileSync(join(root, 'top.tap'), '1..1\nok 1\n');
  writeFileSync(join(root, 'a', 'b', 'deep.tap'), 'ok 1 - deep\n');
  writeFileSync(join(root, 'big.tap'), 'x'.repeat(500));
  writeFileSync(join(root, 'with space.tap'), 'ok 1 - spaced\n');
  writeFileSync(join(root, 'binary.tap'), Buffer.from([0, 0xff, 0x0a, 0x40, 0x40, 0x4e, 0x53, 0x4d]));
  symlinkSync(join(root, 'top.tap'), join(root, 'link.tap'));
  spawnSync('mkfifo', [join(root, 'fifo.tap')]);
  for (let i = 0; i < 5; i++) writeFileSync(join(root, 'many', `m${i}.tap`), `ok ${i}\n`);

  it('reads regular files byte for byte, never links or FIFOs, and cuts big ones', () => {
    const got = gatherOnHost([{ format: 'tap', path: `${root}/*.tap` }], { ...limits, maxFiles: 4 });
    expect(got.complete).toBe(true);
    expect(got.files.map((f) => f.path.slice(root.length + 1))).toEqual(['big.tap', 'binary.tap', 'top.tap', 'with space.tap']);
    expect(got.files[1]!.bytes).toEqual(Buffer.from([0, 0xff, 0x0a, 0x40, 0x40, 0x4e, 0x53, 0x4d]));
    expect(got.files[0]).toMatchObject({ truncated: true });
    expect(got.files[0]!.bytes.length).toBe(100);
    expect(got.warnings).toEqual([`${root}/big.tap: larger than 100 bytes; only the first 100 are read`]);
  });

  it('at most maxFiles files per entry', () => {
    const got = gatherOnHost([{ format: 'tap', path: `${root}/many/*.tap` }], limits);
    expect(got.files).toHaveLength(3);
    expect(got.warnings).toEqual([`${root}/many/*.tap: more than 3 files match; the first 3 are read`]);
  });

  it('** across directories, names with spaces, and an entry that matches nothing', () => {
    const got = gatherOnHost(
      [
        { format: 'tap', path: `${root}/**/deep.tap` },
        { format: 'tap', path: `${root}/with space.tap` },
        { format: 'junit', path: `${root}/none/*.xml` },
      ],
      limits,
    );
    expect(got.files.map((f) => [f.entry, f.path.slice(root.length + 1), f.bytes.toString()])).toEqual([
      [0, 'a/b/deep.tap', 'ok 1 - deep\n'],
      [1, 'with space.tap', 'ok 1 - spaced\n'],
    ]);
    expect(got.warnings).toEqual([`${root}/none/*.xml: no regular file matches`]);
  });

  it('the total bound: what does not fit is dropped with a warning', () => {
    const got = gatherOnHost([{ format: 'tap', path: `${root}/many/*.tap` }], { maxFiles: 10, maxFileBytes: 100, maxTotalBytes: 200 });
    expect(got.files.length).toBeLessThan(5);
    expect(got.warnings).toContain('more than 200 bytes of result files in one step; the rest is not read');
  });
});

describe('reading the framed stream', () => {
  const specs: ResultSpec[] = [{ format: 'tap', path: '/r/*.tap' }];
  const frame = (token: string, path: string, body: string, end = true) => `\n@@NSM ${token} FILE 0 ${path}\n${body}${end ? `\n@@NSM ${token} END\n` : ''}`;

  it('ignores frames with another token, a stream cut short is a warning', () => {
    const stream = Buffer.from(`${frame('t0k', '/r/a.tap', 'ok 1\n@@NSM fake FILE 0 /etc/shadow\nroot:x')}${frame('t0k', '/r/b.tap', 'ok', false)}`);
    const got = readGathered(stream, 't0k', specs);
    expect(got.files.map((f) => [f.path, f.bytes.toString(), f.truncated])).toEqual([
      ['/r/a.tap', 'ok 1\n@@NSM fake FILE 0 /etc/shadow\nroot:x', false],
      ['/r/b.tap', 'ok', true],
    ]);
    expect(got.warnings).toEqual(['/r/b.tap: cut short (gathering stopped while it was printed)', 'gathering did not finish: some result files may be missing']);
  });

  it('refuses entries nobody declared and relative paths', () => {
    const stream = Buffer.from(`\n@@NSM k FILE 7 /r/x.tap\nok\n@@NSM k END\n\n@@NSM k FILE 0 r/rel.tap\nok\n@@NSM k END\n\n@@NSM k DONE\n`);
    const got = readGathered(stream, 'k', specs);
    expect(got.files).toEqual([]);
    expect(got.warnings).toEqual(['/r/x.tap: gathered for no declared entry (ignored)', '/r/*.tap: no regular file matches']);
  });

  it('the sink keeps at most maxTotalBytes', () => {
    const sink = new GatherSink({ maxFiles: 1, maxFileBytes: 1, maxTotalBytes: 10 });
    sink.write(Buffer.alloc(6));
    sink.write(Buffer.alloc(6));
    sink.write(Buffer.alloc(6));
    expect(sink.bytes().length).toBe(10);
    expect(sink.overflowed).toBe(true);
  });
});

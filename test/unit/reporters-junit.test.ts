import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJunitXml, createJunitReporter, junitTimestamp } from '../../reporters/junit.js';
import { junitSeconds, renderJunit } from '../../reporters/junit-render.js';
import type { RunResult } from '../../src/run/result.js';
import { makeHostileResult, makeSingleLogResult } from '../fixtures/results/make-result.js';
import { splitTestsuites, validateJunit } from '../fixtures/results/xmllint.js';

/** The document with every CDATA section's content blanked (same length): markup found in it is real markup. */
function blankCdata(xml: string): string {
  return xml.replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_m, inner: string) => `<![CDATA[${'x'.repeat(inner.length)}]]>`);
}

/** Every testcase element of a document: its attributes and its raw content. */
function cases(xml: string): { classname: string; name: string; body: string }[] {
  const blank = blankCdata(xml);
  return [...blank.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)].map((m) => {
    const start = m.index + m[0].length - (m[3] === undefined ? 0 : m[3].length + '</testcase>'.length);
    return { classname: m[1]!, name: m[2]!, body: m[3] === undefined ? '' : xml.slice(start, start + m[3].length) };
  });
}

describe('junit reporter on hostile logs', () => {
  let dir: string;
  let result: RunResult;
  let xml: string;
  let reportPath: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-junit-'));
    result = await makeHostileResult(dir);
    const written = await createJunitReporter({ attachmentBase: dir }).onRunEnd!(result, { outputDir: dir });
    reportPath = (written as string[])[0]!;
    xml = await readFile(reportPath, 'utf8');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes <outputDir>/junit.xml atomically (no temporary file left)', async () => {
    expect(reportPath).toBe(join(dir, 'junit.xml'));
    const left = (await readdir(dir)).filter((f) => f.endsWith('.tmp'));
    expect(left).toEqual([]);
  });

  it('passes every consumer schema: profile, Jenkins xUnit junit-10, dtkit junit-4, Surefire per suite', () => {
    expect(splitTestsuites(xml)).toHaveLength(result.cells.length);
    const validation = validateJunit(reportPath);
    expect(validation.errors).toEqual([]);
    expect(validation.ok).toBe(true);
  });

  it('keeps no terminal sequence, no raw control character and no unsplit ]]> in CDATA', () => {
    expect(xml).not.toMatch(/\x1b|\[31m|\[0m/);
    expect(xml).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f]/);
    for (const section of xml.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)) expect(section[1]).not.toContain(']]>');
    expect(xml).toContain('NUL[\\x00] BEL[\\x07]');
    expect(xml).toContain('emoji 🎉 and CJK 漢字 survive');
  });

  it('maps the matrix and cells: one suite per cell, container-start first, classname with exactly one dot', () => {
    expect(xml).toMatch(/<testsuites name="hostile &lt;matrix&gt; &amp; ]]&gt;"|<testsuites name="hostile &lt;matrix> &amp; ]]>"/);
    const suites = [...xml.matchAll(/<testsuite name="([^"]*)" timestamp="([^"]*)" time="([^"]*)"/g)];
    expect(suites).toHaveLength(result.cells.length);
    expect(new Set(suites.map((s) => s[1])).size).toBe(suites.length);
    for (const s of suites) {
      expect(s[2]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      expect(s[3]).toMatch(/^\d+(\.\d{1,3})?$/);
    }
    const all = cases(xml);
    for (const c of all) {
      expect(c.classname.split('.')).toHaveLength(2);
      expect(c.classname).not.toMatch(/\s/);
    }
    const keys = all.map((c) => `${c.classname}\u0000${c.name}`);
    expect(new Set(keys).size).toBe(keys.length);
    const bodies = xml.split('<testsuite ').slice(1);
    for (const suite of bodies) expect(cases(suite)[0]?.name).toBe('container-start');
  });

  it('writes suite properties', () => {
    for (const name of ['image', 'image.key', 'axis.image', 'axis.cc', 'axis.opt', 'nspawn.version', 'nsmatrix.version', 'machine', 'strategy']) {
      expect(xml).toContain(`<property name="${name}" value=`);
    }
  });

  it('gives every outcome its element', () => {
    const all = cases(xml);
    const find = (classFragment: string, name: string) => all.find((c) => c.classname.endsWith(classFragment) && c.name === name)!;
    expect(find('debian-bookworm-gcc-o0', 'build').body).not.toMatch(/<failure|<error|<skipped/);
    expect(find('debian-bookworm-gcc-o2', 'test').body).toMatch(/<failure message="exit status 2: LAST LINE OF THE BIG LOG" type="StepFailed">/);
    expect(find('debian-bookworm-gcc-o2', 'package').body).toContain('<skipped>not run: an earlier step failed</skipped>');
    expect(find('debian-bookworm-clang-o0', 'hang').body).toContain('<failure message="timed out after 600s" type="Timeout">');
    expect(find('debian-bookworm-clang-o2', 'oom').body).toContain('<failure message="killed by SIGKILL" type="Killed">');
    expect(find('debian-trixie-gcc-o0', 'needs-kvm').body).toContain('<skipped>skipped by the step (exit status 77)</skipped>');
    // Earlier attempts: no flakyFailure/rerunFailure (dtkit refuses them) but their tails in system-out
    const flaky = find('debian-trixie-gcc-o2', 'flaky test').body;
    expect(flaky).not.toMatch(/<failure|<flakyFailure|<rerunFailure/);
    expect(flaky).toContain('--- attempt 1 of 3 failed: exit status 1: end of flaky test attempt 1 (last ');
    expect(flaky).toContain('--- attempt 2 of 3 failed: timed out after 1.2s (last ');
    expect(flaky).toContain('attempts: #1 exit status 1, #2 timed out after 1.2s, #3 passed');
    expect(xml).toContain('<property name="attempts.flaky test" value="3"/>');
    const always = find('debian-trixie-clang-o0', 'always fails').body;
    expect(always.match(/<failure /g)).toHaveLength(1);
    expect(always).not.toMatch(/<rerunFailure/);
    expect(always).toContain('--- attempt 1 of 2 failed: exit status 3: end of always fails attempt 1 (last ');
    expect(find('debian-trixie-clang-o2', 'container-start').body).toMatch(/<error message="container could not start: [^"]*" type="InfrastructureError">/);
    expect(find('ubuntu-noble-gcc-o0', 'container-start').body).toContain('<skipped>cancelled: fail-fast');
    expect(find('ubuntu-noble-gcc-o2', 'container-start').body).not.toContain('<skipped');
    expect(find('ubuntu-noble-gcc-o2', 'test').body).toContain('<skipped>not run: interrupted by SIGINT</skipped>');
    const coe = find('ubuntu-noble-clang-o0', 'experimental').body;
    expect(coe).toContain('<failure message="exit status 1: end of experimental attempt 1" type="StepFailed">');
    expect(coe).toContain('continue-on-error');
    // duplicate step names in one cell stay distinct cases
    expect(all.filter((c) => c.classname.endsWith('ubuntu-noble-clang-o2')).map((c) => c.name)).toEqual(['container-start', 'build', 'build (2)']);
  });

  it('counts failures, errors and skips', () => {
    const root = /<testsuites [^\n]*tests="(\d+)" failures="(\d+)" errors="(\d+)">/.exec(xml)!;
    const steps = result.cells.reduce((n, c) => n + c.steps.length + 1, 0);
    expect(Number(root[1])).toBe(steps);
    expect(Number(root[2])).toBe(5); // failed, timed out, killed, always fails, continue-on-error
    expect(Number(root[3])).toBe(1);
  });

  it('counts, in every suite, what its elements say: tests = testcases (container-start included), and so on', () => {
    const blank = blankCdata(xml);
    for (const suite of splitTestsuites(blank)) {
      const counts = /^<testsuite [^\n]*tests="(\d+)" failures="(\d+)" errors="(\d+)" skipped="(\d+)"/.exec(suite)!;
      const elements = (tag: string) => (suite.match(new RegExp(`<${tag}[ >/]`, 'g')) ?? []).length;
      expect(counts.slice(1).map(Number)).toEqual([elements('testcase'), elements('failure'), elements('error'), elements('skipped')]);
    }
  });

  it('says "not run" once in the reason of a step that never ran', () => {
    expect(xml).toContain('<skipped>not run: no container</skipped>');
    expect(xml).not.toMatch(/not run: not run/);
  });

  it('ends system-out with attachment lines for logs and journals, and caps big logs with a marker', () => {
    expect(xml).toContain('[[ATTACHMENT|debian-bookworm-gcc-o0/01-build.log]]');
    expect(xml).toContain('[[ATTACHMENT|debian-trixie-gcc-o2/01-flaky.attempt2.log]]');
    expect(xml).toContain('[[ATTACHMENT|debian-bookworm-gcc-o2/journal.txt]]');
    expect(xml).toMatch(/\[… \d+ bytes cut, full log: debian-bookworm-gcc-o2\/02-test\.log\]/);
    expect(xml).toContain('FIRST LINE OF THE BIG LOG');
    for (const out of xml.matchAll(/<system-out>([\s\S]*?)<\/system-out>/g)) {
      const text = out[1]!.replace(/<!\[CDATA\[|\]\]>/g, '');
      expect(text.length).toBeLessThanOrEqual(256 * 1024);
    }
  });
});

describe('junit details', () => {
  it('formats times and timestamps for the schema', () => {
    expect(junitSeconds(1e-7)).toBe(0);
    expect(String(junitSeconds(1234.56789))).toBe('1234.568');
    expect(junitSeconds(-1)).toBe(0);
    expect(junitTimestamp('2026-11-22T03:40:01.999Z', '')).toBe('2026-11-22T03:40:01');
    expect(junitTimestamp('garbage', '2026-01-02T03:04:05Z')).toBe('2026-01-02T03:04:05');
  });

  it('writes a valid document for a run with no cells', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nsm-junit-empty-'));
    try {
      const base = await makeHostileResult(dir, { bigLogBytes: 1 });
      const path = join(dir, 'empty.xml');
      await writeFile(path, await buildJunitXml({ ...base, cells: [] }, { outputDir: dir }));
      expect(validateJunit(path).errors).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('splits any number of ]]> into CDATA sections that parse back to the text', async () => {
    const text = ']]>'.repeat(50) + 'end ]]';
    const xml = renderJunit('m', [
      { name: 's', timestamp: '2026-01-01T00:00:00', timeSeconds: 1, properties: [], cases: [{ name: 'c', classname: 'm.s', timeSeconds: 0, systemOut: text }] },
    ]);
    const section = /<system-out>([\s\S]*)<\/system-out>/.exec(xml)![1]!;
    const parsed = [...section.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)].map((m) => m[1]).join('');
    expect(parsed).toBe(text);
  });

  it('refuses a result path that escapes the output directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nsm-junit-escape-'));
    try {
      const base = await makeHostileResult(dir, { bigLogBytes: 1 });
      const cell = base.cells[0]!;
      const step = { ...cell.steps[0]!, attempts: [{ ...cell.steps[0]!.attempts[0]!, logPath: '../../../etc/passwd' }] };
      const xml = await buildJunitXml({ ...base, cells: [{ ...cell, steps: [step] }] }, { outputDir: dir });
      expect(xml).not.toContain('root:x:0:0');
      expect(xml).toContain('unreadable');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps a big matrix with big logs under GitLab\'s 30 MB limit, and valid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nsm-junit-big-'));
    try {
      const base = await makeHostileResult(dir);
      // Every step of 600 cells points at the 1.5 MiB log (the files are shared to spare the disk).
      const bigLog = base.cells[1]!.steps[1]!.attempts[0]!.logPath;
      const cells = Array.from({ length: 600 }, (_, i) => {
        const cell = base.cells[i % base.cells.length]!;
        const steps = cell.steps.map((s) => ({ ...s, attempts: s.attempts.map((a) => ({ ...a, logPath: bigLog })) }));
        return { ...cell, id: `${cell.id}-${i}`, name: `${cell.name} #${i}`, steps };
      });
      const path = join(dir, 'big.xml');
      const xml = await buildJunitXml({ ...base, cells }, { outputDir: dir });
      await writeFile(path, xml);
      expect(Buffer.byteLength(xml)).toBeLessThan(30 * 1000 * 1000);
      expect(validateJunit(path).errors).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is valid whatever bytes the logs and tails hold (property, checked by xmllint)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nsm-junit-prop-'));
    try {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 4096 }),
          fc.array(fc.string({ unit: 'binary', maxLength: 80 }), { maxLength: 5 }),
          fc.string({ unit: 'binary', maxLength: 40 }),
          async (bytes, tail, stepName) => {
            const outputDir = join(dir, String(run++));
            const result = await makeSingleLogResult(outputDir, bytes, tail);
            result.cells[0]!.steps[0]!.name = stepName;
            result.cells[0]!.name = stepName + ' cell';
            const path = join(outputDir, 'junit.xml');
            await writeFile(path, await buildJunitXml(result, { outputDir }));
            const validation = validateJunit(path);
            expect(validation.errors).toEqual([]);
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

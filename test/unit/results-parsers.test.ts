/** The result-file parsers on real outputs of real harnesses (test/fixtures/results-samples) and on broken input. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat, parseResultFile } from '../../src/results/parse.js';
import type { ResultFormat, TestResult } from '../../src/results/types.js';

const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'results-samples');
const sample = (name: string) => readFileSync(join(SAMPLES, name));
const brief = (tests: TestResult[]) => tests.map((t) => [t.suite, t.name, t.outcome]);
const parse = (format: ResultFormat, path: string, text: string | Buffer) => parseResultFile(format, path, typeof text === 'string' ? Buffer.from(text) : text);

describe('junit', () => {
  it('pytest (xunit2 and legacy): classname as suite, failure message, skip and xfail skipped, setup error', () => {
    for (const file of ['pytest.xml', 'pytest-legacy.xml']) {
      const { tests, warnings } = parse('junit', `/src/${file}`, sample(file));
      expect(warnings).toEqual([]);
      expect(brief(tests)).toEqual([
        ['test_sample', 'test_adds', 'passed'],
        ['test_sample', 'test_fails', 'failed'],
        ['test_sample', 'test_skipped', 'skipped'],
        ['test_sample', 'test_xfail', 'skipped'],
        ['test_sample', 'test_flavour', 'passed'],
        ['test_sample.TestGroup', 'test_in_class', 'passed'],
        ['test_sample.TestGroup', 'test_error_in_fixture', 'error'],
      ]);
      expect(tests[1]!.message).toBe('AssertionError: lists differ');
      expect(tests[1]!.details).toContain('assert [1, 2] == [1, 3]');
      expect(tests[2]!.message).toBe('not on this platform');
    }
  });

  it('ctest: status attributes, an empty failure message taken from the output, disabled as skipped, durations', () => {
    const { tests } = parse('junit', '/b/ctest.xml', sample('ctest.xml'));
    expect(brief(tests)).toEqual([
      ['passes', 'passes', 'passed'],
      ['fails', 'fails', 'failed'],
      ['skips', 'skips', 'skipped'],
      ['disabled', 'disabled', 'skipped'],
      ['flavour', 'flavour', 'passed'],
    ]);
    expect(tests[1]!.message).toBe('expected 3, got 4');
    expect(tests[0]!.durationMs).toBeCloseTo(7.947, 2);
  });

  it('Surefire (testsuite root, flakyFailure), gotestsum and jest-junit shapes', () => {
    const surefire = `<?xml version="1.0"?><testsuite name="com.x.FooTest" tests="3"><testcase name="a" classname="com.x.FooTest" time="0.01"><flakyFailure message="m" type="T"><stackTrace>s</stackTrace></flakyFailure></testcase><testcase name="b" classname="com.x.FooTest" time="1,234.5"><error message="NPE" type="java.lang.NullPointerException">at x</error></testcase><testcase name="c" classname="com.x.FooTest"><skipped/></testcase></testsuite>`;
    const s = parse('junit', 'TEST-x.xml', surefire).tests;
    expect(brief(s)).toEqual([['com.x.FooTest', 'a', 'passed'], ['com.x.FooTest', 'b', 'error'], ['com.x.FooTest', 'c', 'skipped']]);
    expect(s[1]!.durationMs).toBe(1234500);
    const gotestsum = `<testsuites tests="2"><testsuite tests="2" name="example.com/p" time="0.1"><properties><property name="go.version" value="go1.19"/></properties><testcase classname="example.com/p" name="TestA" time="0.00"></testcase><testcase classname="example.com/p" name="TestB/sub" time="0.00"><failure message="Failed" type="">    b_test.go:9: boom&#xA;</failure></testcase></testsuite></testsuites>`;
    expect(brief(parse('auto', 'junit.xml', gotestsum).tests)).toEqual([['example.com/p', 'TestA', 'passed'], ['example.com/p', 'TestB/sub', 'failed']]);
    const jest = `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="jest tests" tests="2" failures="1"><testsuite name="math.test.js" tests="2"><testcase classname="math adds" name="math adds" time="0.002"></testcase><testcase classname="math subtracts" name="math subtracts" time="0.001"><failure>Error: expect(received).toBe(expected)\n\nExpected: 3</failure></testcase></testsuite></testsuites>`;
    const j = parse('auto', 'junit.xml', jest).tests;
    expect(brief(j)).toEqual([['math adds', 'math adds', 'passed'], ['math subtracts', 'math subtracts', 'failed']]);
    expect(j[1]!.message).toBe('Error: expect(received).toBe(expected)');
  });

  it('malformed, foreign or hostile XML is a warning, never a throw or an expansion', () => {
    expect(parse('junit', 'a.xml', '<testsuite><testcase name="x">').warnings[0]).toMatch(/not well-formed XML: .*unterminated/);
    expect(parse('junit', 'a.xml', '<html><body/></html>').warnings[0]).toMatch(/root element is <html>/);
    expect(parse('junit', 'a.xml', '').warnings[0]).toMatch(/no root element/);
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><testsuite><testcase name="&lol2;"/></testsuite>`;
    expect(parse('junit', 'a.xml', bomb).warnings[0]).toMatch(/unknown entity &lol2;/);
    const xxe = `<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&x;"/></testsuite>`;
    expect(parse('junit', 'a.xml', xxe).tests).toEqual([]);
    expect(parse('junit', 'a.xml', `${'<testsuite>'.repeat(100_000)}`).warnings[0]).toMatch(/deeper than/);
    expect(parse('junit', 'a.xml', Buffer.from([0x3c, 0x74, 0x65, 0x73, 0x74, 0x73, 0x75, 0x69, 0x74, 0x65, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x74, 0x65, 0x73, 0x74, 0x73, 0x75, 0x69, 0x74, 0x65, 0x3e])).warnings).toEqual(['no <testcase> in the file']);
  });

  it('cuts long names and messages to their bounds', () => {
    const long = 'n'.repeat(5000);
    const [test] = parse('junit', 'a.xml', `<testsuite><testcase name="${long}"><failure message="${long}">${long}</failure></testcase></testsuite>`).tests;
    expect(test!.name.length).toBeLessThanOrEqual(500);
    expect(test!.message!.length).toBeLessThanOrEqual(1000);
    expect(test!.details!.length).toBeLessThanOrEqual(4096);
  });
});

describe('tap', () => {
  it('Test::More: skip and todo directives, nested subtests named through their parents', () => {
    const { tests, warnings } = parse('tap', 't.tap', sample('perl-tap.tap'));
    expect(warnings).toEqual([]);
    expect(brief(tests)).toEqual([
      ['', 'first passes', 'passed'],
      ['', 'second fails', 'failed'],
      ['', 'test 3', 'skipped'],
      ['', 'future feature', 'skipped'],
      ['parser', 'reads numbers', 'passed'],
      ['parser', 'reads strings', 'failed'],
      ['parser > nested', 'deep one', 'passed'],
      ['', 'flavour', 'passed'],
    ]);
    expect(tests[2]!.message).toBe('no database');
    expect(tests[3]!.message).toBe('not implemented');
  });

  it('node --test (TAP 13 header, TAP 14 subtests): YAML error as message, duration_ms', () => {
    const { tests } = parse('auto', 'x.tap', sample('node-tap14.tap'));
    expect(brief(tests)).toEqual([
      ['math', 'adds', 'passed'],
      ['math', 'subtracts', 'failed'],
      ['math', 'skipped one', 'skipped'],
      ['', 'top level passes', 'passed'],
    ]);
    expect(tests[1]!.message).toBe('1 == 3');
    expect(tests[1]!.details).toContain('ERR_ASSERTION');
    expect(tests[0]!.durationMs).toBeCloseTo(1.06, 2);
  });

  it('TAP 14 with the subtest line at the child indentation; a failing parent with passing children stays', () => {
    const text = 'TAP version 14\n    # Subtest: group\n    ok 1 - inner\n    1..1\nnot ok 1 - group\n1..1\n';
    expect(brief(parse('tap', 't', text).tests)).toEqual([['group', 'inner', 'passed'], ['', 'group', 'failed']]);
  });

  it('plan mismatch, bail out and no TAP at all', () => {
    const short = parse('tap', 't', '1..3\nok 1 - a\n');
    expect(short.warnings).toEqual(['plan 1..3 but 1 test points']);
    expect(brief(short.tests)).toEqual([['', 'a', 'passed'], ['', 'missing tests', 'error']]);
    const bail = parse('tap', 't', '1..3\nok 1\nBail out! database gone\n');
    expect(brief(bail.tests)).toEqual([['', 'test 1', 'passed'], ['', 'Bail out!', 'error']]);
    expect(bail.tests[1]!.message).toBe('database gone');
    expect(parse('tap', 't', 'hello\nworld\n').warnings).toEqual(['no TAP in the file (no plan, no test points)']);
    expect(parse('tap', 't', 'ok 1 - a # skip\\# not a directive\n').tests[0]!.outcome).toBe('skipped');
    expect(parse('tap', 't', 'ok 1 - a \\# b\n1..1\n').tests[0]).toMatchObject({ name: 'a # b', outcome: 'passed' });
  });
});

describe('automake', () => {
  it('parallel harness .trs files: each named by its file; XFAIL passes, SKIP skips', () => {
    const results = ['t-pass.sh', 't-fail.sh', 't-skip.sh', 't-xfail.sh', 't-flavour.sh'].map(
      (t) => parse('automake', `/build/tests/${t}.trs`, sample(`am-parallel-${t}.trs`)).tests[0],
    );
    expect(results.map((t) => [t!.suite, t!.name, t!.outcome])).toEqual([
      ['/build/tests', 't-pass.sh', 'passed'],
      ['/build/tests', 't-fail.sh', 'failed'],
      ['/build/tests', 't-skip.sh', 'skipped'],
      ['/build/tests', 't-xfail.sh', 'passed'],
      ['/build/tests', 't-flavour.sh', 'passed'],
    ]);
  });

  it('TAP-driver .trs: one test per test point', () => {
    const text = ':test-result: PASS 1 - parses\n:test-result: FAIL 2 - prints\n:test-result: XPASS 3 - odd\n:global-test-result: FAIL\n';
    expect(brief(parse('auto', '/b/t/io.trs', text).tests)).toEqual([
      ['/b/t/io', '1 - parses', 'passed'],
      ['/b/t/io', '2 - prints', 'failed'],
      ['/b/t/io', '3 - odd', 'failed'],
    ]);
  });

  it('test-suite.log: the tests it names, and a warning for the ones it only counts', () => {
    const { tests, warnings } = parse('automake', '/build/test-suite.log', sample('am-parallel-test-suite.log'));
    expect(brief(tests)).toEqual([['/build', 't-fail.sh', 'failed'], ['/build', 't-skip.sh', 'skipped'], ['/build', 't-xfail.sh', 'passed']]);
    expect(tests[0]!.details).toContain('assertion failed: 1 == 2');
    expect(warnings[0]).toMatch(/^2 passed or skipped tests are counted but not named/);
  });

  it('console logs of the serial and the parallel harness; one test log of the parallel harness', () => {
    for (const file of ['am-serial-console.log', 'am-parallel-console.log']) {
      expect(brief(parse('automake', `/src/${file}`, sample(file)).tests)).toEqual([
        ['/src', 't-pass.sh', 'passed'],
        ['/src', 't-fail.sh', 'failed'],
        ['/src', 't-skip.sh', 'skipped'],
        ['/src', 't-xfail.sh', 'passed'],
        ['/src', 't-flavour.sh', 'passed'],
      ]);
    }
    const log = parse('automake', '/b/t-fail.log', 'assertion failed: 1 == 2\nFAIL t-fail.sh (exit status: 1)\n');
    expect(log.tests).toEqual([expect.objectContaining({ name: 't-fail.sh', outcome: 'failed', message: 'exit status 1' })]);
    expect(parse('automake', '/b/x.log', 'nothing here\n').warnings[0]).toMatch(/no automake result lines/);
  });
});

describe('go-json', () => {
  it('go test -json: tests and subtests under their package, the failure output as message and details', () => {
    const { tests, warnings } = parse('go-json', 'go.json', sample('go.json'));
    expect(warnings).toEqual([]);
    expect(brief(tests)).toEqual([
      ['example.com/sample', 'TestPasses', 'passed'],
      ['example.com/sample', 'TestFails', 'failed'],
      ['example.com/sample', 'TestSkips', 'skipped'],
      ['example.com/sample', 'TestTable/one', 'passed'],
      ['example.com/sample', 'TestTable/two', 'failed'],
      ['example.com/sample', 'TestTable', 'failed'],
      ['example.com/sample', 'TestFlavour', 'passed'],
    ]);
    expect(tests[1]!.message).toBe('sample_test.go:11: want 3, got 4');
  });

  it('a package that fails without a failing test is an error; non-JSON lines a warning', () => {
    const text = '# example.com/broken\nbroken.go:3:1: syntax error\n{"Action":"output","Package":"example.com/broken","Output":"FAIL\\texample.com/broken [build failed]\\n"}\n{"Action":"fail","Package":"example.com/broken","Elapsed":0}\n';
    const { tests, warnings } = parse('go-json', 'go.json', text);
    expect(brief(tests)).toEqual([['example.com/broken', '(package)', 'error']]);
    expect(warnings).toEqual(['2 lines not test2json events (ignored)']);
  });
});

describe('auto', () => {
  it('recognises each real sample, and says when it cannot', () => {
    const expected: Record<string, string> = {
      'pytest.xml': 'junit',
      'ctest.xml': 'junit',
      'go.json': 'go-json',
      'perl-tap.tap': 'tap',
      'node-tap14.tap': 'tap',
      'am-parallel-t-pass.sh.trs': 'automake',
      'am-parallel-test-suite.log': 'automake',
      'am-serial-console.log': 'automake',
    };
    for (const [file, format] of Object.entries(expected)) expect(detectFormat(sample(file).toString(), file), file).toBe(format);
    expect(parse('auto', 'x.bin', Buffer.from([0, 1, 2, 3])).warnings).toEqual(['format not recognised (declare format: junit, tap, automake or go-json)']);
  });
});

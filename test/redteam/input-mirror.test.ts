/**
 * Red team, input: a mirror URL becomes one field of the image's apt sources lines. A newline in `mirror:` added a
 * second, `[trusted=yes]` line (packages from anywhere, unsigned). Mirrors from `mirror:` and from the host's apt
 * sources are checked the same way before use; `mirror:` problems are positioned lines, exit 2.
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InfraError, UsageError } from '../../src/errors.js';
import { pickMirrors, readHostAptSources } from '../../src/images/apt-sources.js';
import { chooseMirrors, sourceLines, type BootstrapPlan } from '../../src/images/builders/bootstrap.js';
import { parseMatrix } from '../../src/matrix/index.js';
import { mirrorUrlProblem } from '../../src/matrix/schema.js';
import { runCli } from '../helpers/cli.js';

const work = mkdtempSync('/var/tmp/nsm-redteam-mirror-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const INJECTED = 'http://deb.debian.org/debian sid main\ndeb [trusted=yes] http://evil.example/debian';

function matrixWithMirror(mirror: string): string {
  return `matrix:\n  image: [debian:sid]\nimages:\n  debian:sid:\n    mirror: ${JSON.stringify(mirror)}\nsteps:\n  - { name: s, run: 'true' }\n`;
}

function problemsOf(text: string): string[] {
  try {
    parseMatrix(text, 'm.yaml');
  } catch (error) {
    if (error instanceof UsageError) return error.lines;
    throw error;
  }
  return [];
}

const plan = (mirror: string): BootstrapPlan => ({
  distro: 'debian', suite: 'bookworm', mirror, securityMirror: mirror, components: ['main'], pockets: true,
  allowExpiredRelease: false, tool: 'mmdebstrap',
});

describe('mirror: in a matrix file', () => {
  it('a newline adding a [trusted=yes] sources line is refused at the mirror value, exit 2', () => {
    expect(problemsOf(matrixWithMirror(INJECTED))).toEqual([
      `m.yaml:5:13: images["debian:sid"].mirror: invalid mirror ${JSON.stringify(INJECTED)}: a mirror URL must not contain spaces, newlines or control characters`,
    ]);
    writeFileSync(join(work, 'nsmatrix.yaml'), matrixWithMirror(INJECTED));
    const r = runCli(['validate'], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nsmatrix\.yaml:5:13: images\["debian:sid"\]\.mirror: invalid mirror "http:.*": a mirror URL must not contain spaces, newlines or control characters\n$/);
  });

  it.each([
    ['http://deb.debian.org/debian [trusted=yes]', 'spaces, newlines or control characters'],
    ['http://deb.debian.org/debian\ttrusted', 'spaces, newlines or control characters'],
    ['http://deb.debian.org/debian\u0085x', 'spaces, newlines or control characters'],
    ['http://deb.debian.org/debian\u2028x', 'spaces, newlines or control characters'],
    ['http://deb.debian.org/[trusted=yes]debian', '"[" or "]"'],
    ['http://deb.debian.org/debian#comment', '"#"'],
    ['http://deb.debian.org/"debian"', '"\\""'],
    ['ftp://deb.debian.org/debian', 'expected an http://, https:// or file:// URL'],
    ['cdrom:[Debian]/', 'expected an http://, https:// or file:// URL'],
    ['http:///debian', 'the URL names no host'],
    ['file://host/srv/mirror', 'expected file:///PATH (no host)'],
  ])('refuses %j', (mirror, why) => {
    const lines = problemsOf(matrixWithMirror(mirror));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^m\.yaml:5:13: images\["debian:sid"\]\.mirror: invalid mirror /);
    expect(lines[0]).toContain(why);
  });

  it('refuses a mirror URL of more than 1000 characters', () => {
    expect(problemsOf(matrixWithMirror(`http://deb.debian.org/${'d'.repeat(1000)}`))).toEqual([
      expect.stringMatching(/^m\.yaml:5:13: images\["debian:sid"\]\.mirror: invalid mirror "http:.*": a mirror URL longer than 1000 characters$/),
    ]);
  });

  it.each(['http://deb.debian.org/debian', 'https://user:pw@mirror.example:8443/debian/', 'file:///srv/mirror', 'http://10.0.0.1:3142/debian'])(
    'accepts %s',
    (mirror) => expect(problemsOf(matrixWithMirror(mirror))).toEqual([]),
  );

  it('whatever is accepted makes sources lines of exactly four fields and no apt syntax', () => {
    const chars = fc.constantFrom(...'aZ09-._~%!$&\'()*+,;=:@/ \n\t[]#"?\\\r\u0000\u0085\u2028');
    const url = fc.tuple(fc.constantFrom('http://', 'https://', 'file://', 'http://h'), fc.string({ unit: chars })).map(([a, b]) => a + b);
    fc.assert(
      fc.property(url, (mirror) => {
        if (mirrorUrlProblem(mirror) !== undefined) return;
        for (const line of sourceLines(plan(mirror.replace(/\/+$/, '') || mirror))) {
          expect(line.split(/\s+/)).toHaveLength(4);
          expect(line).not.toMatch(/[[\]#"\n\r]/);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('an image spec given straight to the builder is checked again before use', () => {
    expect(() => chooseMirrors('debian', INJECTED)).toThrow(InfraError);
    expect(() => chooseMirrors('debian', INJECTED)).toThrow(/invalid mirror .*spaces, newlines or control characters/);
    expect(chooseMirrors('debian', 'http://deb.debian.org/debian/')).toEqual({ mirror: 'http://deb.debian.org/debian' });
  });
});

describe('mirrors from the host apt sources', () => {
  it('a source whose URI is no valid mirror URL is skipped, never used', () => {
    const root = join(work, 'apt');
    mkdirSync(join(root, 'sources.list.d'), { recursive: true });
    writeFileSync(
      join(root, 'sources.list'),
      [
        'deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_]/ bookworm main',
        'deb http://mirror.example/debian[trusted=yes] bookworm main',
        'deb tor+http://onion.example/debian bookworm main',
        'deb http://mirror.example/debian-security#x bookworm-security main',
      ].join('\n'),
    );
    writeFileSync(
      join(root, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://good.example/debian/\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: https://good.example/debian-security\nSuites: bookworm-security\nComponents: main\n',
    );
    expect(pickMirrors(readHostAptSources(root))).toEqual({ main: 'http://good.example/debian', security: 'https://good.example/debian-security' });
  });

  it('a deb822 URIs field cannot smuggle a second line or an option', () => {
    const sources = [
      { types: ['deb'], uris: ['http://a.example/debian\ndeb [trusted=yes] http://evil.example/debian'], suites: ['bookworm'], components: ['main'] },
      { types: ['deb'], uris: ['http://b.example/debian'], suites: ['bookworm'], components: ['main'] },
    ];
    expect(pickMirrors(sources)).toEqual({ main: 'http://b.example/debian', security: undefined });
  });
});

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { findMatrixFile, loadMatrix, parseMatrix } from '../../src/matrix/index.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'matrices');
const STEPS = 'steps:\n  - name: build\n    run: make\n';

/** The UsageError lines parseMatrix throws for `text`. */
function problems(text: string, file = 'm.yaml'): string[] {
  try {
    parseMatrix(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).lines;
  }
  throw new Error('expected a UsageError');
}

describe('parseMatrix: a valid file', () => {
  it('reads every key of valid-full.yaml into the model', () => {
    const file = join(FIXTURES, 'valid-full.yaml');
    const model = parseMatrix(readFileSync(file, 'utf8'), file);
    expect(model).toMatchObject({
      file,
      dir: FIXTURES,
      name: 'full-example',
      packages: ['build-essential', 'make'],
      setup: 'echo configured > /etc/nsmatrix-configured\n',
      source: 'ro',
      env: { LC_ALL: 'C.UTF-8', BUILD_FLAVOUR: '${{ matrix.cc }}-O${{ matrix.opt }}' },
      boot: true,
      network: 'private',
      privateUsers: true,
      failFast: false,
      maxParallel: 2,
      timeoutMs: 20 * 60_000,
      retries: 1,
      continueOnError: '${{ matrix.experimental }}',
      nspawn: ['--capability=CAP_NET_ADMIN'],
    });
    expect(model.axes).toEqual([
      { key: 'image', values: ['debian:bookworm', 'debian:trixie', 'local-tree'] },
      { key: 'cc', values: ['gcc', 'clang'] },
      { key: 'opt', values: [0, 2] },
    ]);
    expect(model.exclude).toEqual([{ image: 'local-tree', cc: 'clang' }]);
    expect(model.include).toHaveLength(2);
    expect(model.images['debian:sid']).toEqual({
      packages: ['clang', 'libc6-dev:amd64'],
      setup: 'echo "sid extras"',
      mirror: 'http://deb.debian.org/debian',
      allowExpiredRelease: true,
    });
    expect(model.images['local-tree']).toEqual({ packages: [], path: '/srv/trees/bookworm' });
    expect(model.images.pulled!.pull!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(model.images['from-machines']!.machine).toBe('base-image');
    expect(model.bind).toEqual([
      { host: '/var/cache/ccache', container: '/ccache', readOnly: false },
      { host: join(FIXTURES, 'artifacts'), container: '/artifacts', readOnly: false },
      { host: '/etc/ssl/certs', container: '/etc/ssl/certs', readOnly: true },
    ]);
    expect(model.steps).toEqual([
      { name: 'build with ${{ matrix.cc }}', run: 'make CC=${{ matrix.cc }} OPT=-O${{matrix.opt}}', env: { VERBOSE: '1' } },
      { name: 'test', run: 'make check', timeoutMs: 600_000, retries: 2, continueOnError: false, env: {} },
      { name: 'flaky-extras', run: './extras.sh', timeoutMs: 90_000, continueOnError: '${{ matrix.experimental }}', env: {} },
    ]);
  });

  it('applies the documented defaults', () => {
    const model = parseMatrix(`matrix:\n  image: [debian:sid]\n${STEPS}`, 'some/dir/my-tests.yml');
    expect(model).toMatchObject({
      name: 'my-tests',
      file: resolve('some/dir/my-tests.yml'),
      dir: resolve('some/dir'),
      source: 'overlay',
      boot: false,
      network: 'host',
      privateUsers: false,
      failFast: true,
      timeoutMs: 30 * 60_000,
      retries: 0,
      continueOnError: false,
      env: {},
      packages: [],
      bind: [],
      nspawn: [],
      include: [],
      exclude: [],
      images: {},
    });
    expect(model.maxParallel).toBeUndefined();
    expect(model.origin?.displayFile).toBe('some/dir/my-tests.yml');
  });

  it('accepts a matrix without an image axis when every include entry gives one', () => {
    const model = parseMatrix(`matrix:\n  include:\n    - { image: debian:sid }\n    - { image: 'oci:docker.io/library/debian:12' }\n${STEPS}`, 'm.yaml');
    expect(model.axes).toEqual([]);
  });
});

describe('parseMatrix: every kind of problem, positioned', () => {
  it.each([
    ['bad-syntax.yaml', ['bad-syntax.yaml:3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['bad-unknown-key.yaml', [
      'bad-unknown-key.yaml:1:1: missing required key "steps"',
      'bad-unknown-key.yaml:3:1: unknown key "stpes" (did you mean "steps"?)',
    ]],
    ['bad-type.yaml', ['bad-type.yaml:3:7: boot: expected true or false, got a string "yes"']],
    ['bad-empty-axis.yaml', ['bad-empty-axis.yaml:3:7: matrix.cc: an axis needs at least one value']],
    ['bad-duplicate-step.yaml', ['bad-duplicate-step.yaml:6:11: steps[1].name: duplicate step name "build" (also steps[0])']],
    ['bad-duration.yaml', ['bad-duration.yaml:6:14: steps[0].timeout: invalid duration "10 minutes" (use e.g. 90s, 30m, 1h30m)']],
    ['bad-no-image.yaml', ['bad-no-image.yaml:1:1: matrix: no "image" axis (add one, or give "image" in every include entry)']],
    ['bad-expression.yaml', ['bad-expression.yaml:6:10: steps[0].run: ${{ matrix.compiler }} names no matrix axis or include key (known: image, cc)']],
    ['bad-no-steps.yaml', ['bad-no-steps.yaml:1:1: missing required key "steps"']],
    ['bad-duplicate-key.yaml', ['bad-duplicate-key.yaml:6:1: duplicate key "steps"']],
    ['bad-many.yaml', [
      'bad-many.yaml:3:28: matrix.image[1]: invalid image name "../escape" (".." is not allowed)',
      'bad-many.yaml:4:7: matrix.cc: an axis needs at least one value',
      'bad-many.yaml:5:1: unknown key "timout" (did you mean "timeout"?)',
      'bad-many.yaml:6:10: network: expected one of host, private, got a string "bridge"',
      'bad-many.yaml:9:10: steps[0].run: ${{ matrix.cxx }} names no matrix axis or include key (known: image, cc)',
      'bad-many.yaml:10:11: steps[1].name: duplicate step name "build" (also steps[0])',
      'bad-many.yaml:12:14: steps[1].retries: must be at least 0',
    ]],
  ])('%s', (name, expected) => {
    expect(problems(readFileSync(join(FIXTURES, name), 'utf8'), name)).toEqual(expected);
  });

  it('unknown keys get a "did you mean" hint at the key, also inside steps and images', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\nimages:\n  debian:sid:\n    pacakges: [x]\nsteps:\n  - name: a\n    rnu: make\n`)).toEqual([
      'm.yaml:5:5: images["debian:sid"]: unknown key "pacakges" (did you mean "packages"?)',
      'm.yaml:7:5: steps[0]: missing required key "run"',
      'm.yaml:8:5: steps[0]: unknown key "rnu" (did you mean "run"?)',
    ]);
  });

  it('a misspelt image axis is pointed at', () => {
    expect(problems(`matrix:\n  imgae: [debian:sid]\n${STEPS}`)).toEqual(['m.yaml:2:3: matrix: no "image" axis (is "imgae" a misspelt "image"?)']);
  });

  it('wrong types name the expected and the actual type', () => {
    expect(problems(`matrix:\n  image: debian:sid\nretries: many\nenv: [A]\n${STEPS}`)).toEqual([
      'm.yaml:2:10: matrix.image: an axis must be a list of values, got a string "debian:sid"',
      'm.yaml:3:10: retries: expected a number, got a string "many"',
      'm.yaml:4:6: env: expected a mapping, got a list',
    ]);
  });

  it('bad top-level durations and values of the wrong kind', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\ntimeout: -5m\nmax-parallel: 1.5\ncontinue-on-error: maybe\n${STEPS}`)).toEqual([
      'm.yaml:3:10: timeout: invalid duration "-5m" (use e.g. 90s, 30m, 1h30m)',
      'm.yaml:4:15: max-parallel: expected a whole number, got the number 1.5',
      'm.yaml:5:20: continue-on-error: expected true, false or ${{ matrix.KEY }}, got "maybe"',
    ]);
  });

  it('environment variable names and axis keys must be valid', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\n  2cc: [a]\nenv:\n  BAD-NAME: 1\n  MATRIX_CC: x\n${STEPS}`)).toEqual([
      'm.yaml:3:3: matrix: invalid axis name "2cc" (letters, digits, "_", "-"; not starting with a digit)',
      'm.yaml:5:3: env: invalid environment variable name "BAD-NAME" (letters, digits and "_", not starting with a digit)',
      'm.yaml:6:3: env: "MATRIX_CC" is set by nsmatrix itself',
    ]);
  });

  it('axis keys that would share a MATRIX_ variable are refused', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\n  cc-ver: [1]\n  CC_VER: [2]\n${STEPS}`)).toEqual([
      'm.yaml:4:3: matrix: "CC_VER" and "cc-ver" would both be MATRIX_CC_VER',
    ]);
  });

  it('image names: syntax, length, and plain names must be defined with a source', () => {
    const long = `debian:${'x'.repeat(200)}`;
    expect(problems(`matrix:\n  image: [mytree, 'bad name', ${long}, -x]\nimages:\n  nosource: {}\n${STEPS}`)).toEqual([
      'm.yaml:2:11: matrix.image[0]: image "mytree" is not defined under images: (or use distro:suite)',
      'm.yaml:2:19: matrix.image[1]: invalid image name "bad name" (letters, digits and . _ : / @ + -)',
      'm.yaml:2:31: matrix.image[2]: image name longer than 200 characters',
      'm.yaml:2:240: matrix.image[3]: invalid image name "-x" (must start with a letter or digit)',
      'm.yaml:4:3: images: image "nosource" needs one of pull, path or machine (or use distro:suite)',
    ]);
  });

  it('exclude keys must name an axis; empty exclude entries are refused', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\n  exclude:\n    - { imgae: debian:sid }\n    - {}\n${STEPS}`)).toEqual([
      'm.yaml:4:9: matrix.exclude[0]: key "imgae" names no matrix axis (did you mean "image"?)',
      'm.yaml:5:7: matrix.exclude[1]: an empty exclude entry would exclude every combination',
    ]);
  });

  it('an include entry that adds a cell without an image is positioned at the entry', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\n  cc: [gcc]\n  include:\n    - { cc: icc }\n${STEPS}`)).toEqual([
      'm.yaml:5:7: matrix.include[0]: adds a cell without an "image"',
    ]);
  });

  it('an interpolated image is checked per cell', () => {
    expect(problems(`matrix:\n  s: ['..', ok]\n  image: ['debian\${{ matrix.s }}']\n${STEPS}`)).toEqual([
      'm.yaml:3:11: image "debian${{ matrix.s }}": invalid image name "debian.." (".." is not allowed)',
    ]);
  });

  it('expressions other than ${{ matrix.KEY }}, and unterminated ones, are refused', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\nsteps:\n  - name: a \${{ github.sha }}\n    run: echo \${{ matrix.image\n`)).toEqual([
      'm.yaml:4:11: steps[0].name: unsupported expression ${{ github.sha }} (only ${{ matrix.KEY }} is supported)',
      'm.yaml:5:10: steps[0].run: "${{" without a closing "}}"',
    ]);
  });

  it('include keys count as known for ${{ matrix.x }}', () => {
    expect(() => parseMatrix(`matrix:\n  image: [debian:sid]\n  include: [{ image: debian:sid, extra: 1 }]\nsteps:\n  - { name: 'x \${{ matrix.extra }}', run: 'true' }\n`, 'm.yaml')).not.toThrow();
  });

  it('bind syntax is checked here (host safety is the runtime\'s)', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\nbind:\n  - /a\n  - /a:rel\n  - /a:/b:rx\n  - /a:/b:ro\n${STEPS}`)).toEqual([
      'm.yaml:4:5: bind[0]: invalid bind "/a": expected host:container or host:container:ro',
      'm.yaml:5:5: bind[1]: invalid bind "/a:rel": the container path must be absolute',
      'm.yaml:6:5: bind[2]: invalid bind "/a:/b:rx": unknown option "rx" (ro or rw)',
    ]);
  });

  it('packages may not look like apt options', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\npackages: [gcc, -oAPT::x=1]\n${STEPS}`)).toEqual([
      'm.yaml:3:17: packages[1]: invalid package name "-oAPT::x=1"',
    ]);
  });

  it('an empty file, a list, and several documents are reported', () => {
    expect(problems('')).toEqual(['m.yaml:1:1: the matrix file is empty']);
    expect(problems('- a\n')).toEqual(['m.yaml:1:1: expected a mapping of keys (name, matrix, steps, ...)']);
    expect(problems(`a: 1\n---\nb: 2\n`)[0]).toEqual('m.yaml:2:1: YAML: the file holds several YAML documents; use one');
  });

  it('alias bombs are refused, not expanded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    expect(problems(bomb.join('\n'))[0]).toMatch(/^m\.yaml:1:1: YAML: Excessive alias count/);
  });

  it('refuses __proto__ keys anywhere (zod would drop them silently) and non-scalar keys', () => {
    expect(problems(`matrix:\n  image: [debian:sid]\n  include: [{ __proto__: 1 }]\nenv: { __proto__: x }\n${STEPS}`)).toEqual([
      'm.yaml:3:15: matrix.include[0]: key "__proto__" is not allowed',
      'm.yaml:4:8: env: key "__proto__" is not allowed',
    ]);
    expect(problems(`? [a, b]\n: c\nmatrix:\n  image: [debian:sid]\n${STEPS}`)).toEqual([
      'm.yaml:1:3: keys must be plain scalars, not lists, mappings or aliases',
    ]);
  });

  it('nesting deep enough to exhaust the stack is a positioned UsageError', () => {
    const lines = problems(`a: ${'['.repeat(20000)}${']'.repeat(20000)}`);
    expect(lines[0]).toMatch(/^m\.yaml:\d+:\d+: YAML: /);
  });

  it('keeps FILE exactly as the user gave it', () => {
    expect(problems('', './sub/x.yaml')).toEqual(['./sub/x.yaml:1:1: the matrix file is empty']);
  });
});

describe('findMatrixFile and loadMatrix', () => {
  // Made in beforeAll, not at collection: a describe whose tests are all filtered out runs no hooks.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nsmatrix-matrix-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, text = `matrix:\n  image: [debian:sid]\n${STEPS}`) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };

  it('finds nsmatrix.yaml or nsmatrix.yml, and refuses to guess when both exist', () => {
    write('a/nsmatrix.yaml');
    write('b/nsmatrix.yml');
    write('c/nsmatrix.yaml');
    write('c/nsmatrix.yml');
    expect(findMatrixFile(join(dir, 'a'))).toBe(join(dir, 'a', 'nsmatrix.yaml'));
    expect(findMatrixFile(join(dir, 'b'))).toBe(join(dir, 'b', 'nsmatrix.yml'));
    expect(() => findMatrixFile(join(dir, 'c'))).toThrow(/both nsmatrix\.yaml and nsmatrix\.yml exist/);
    expect(() => findMatrixFile(join(dir, 'empty-nowhere'))).toThrow(UsageError);
  });

  it('names the missing default file relative to the current directory', () => {
    const error = (() => {
      try {
        findMatrixFile(process.cwd());
      } catch (e) {
        return e as UsageError;
      }
      return undefined;
    })();
    expect(error?.lines).toEqual(['nsmatrix.yaml: matrix file not found (nor nsmatrix.yml; pass a file)']);
  });

  it('returns an explicit file as given; a directory means its default file', () => {
    write('d/custom.yaml');
    expect(findMatrixFile(dir, 'd/custom.yaml')).toBe('d/custom.yaml');
    expect(findMatrixFile(dir, join(dir, 'a'))).toBe(join(dir, 'a', 'nsmatrix.yaml'));
    expect(() => findMatrixFile(dir, 'd/missing.yaml')).toThrow('d/missing.yaml: matrix file not found');
  });

  it('loadMatrix reads and validates; a missing or unreadable file is a UsageError', async () => {
    write('e/ok.yaml');
    const model = await loadMatrix(join(dir, 'e/ok.yaml'));
    expect(model.name).toBe('ok');
    await expect(loadMatrix(join(dir, 'e/none.yaml'))).rejects.toThrow(/none\.yaml: matrix file not found/);
    await expect(loadMatrix(join(dir, 'e'))).rejects.toThrow(/: is a directory/);
    write('e/bad.yaml', 'matrix: [\n');
    await expect(loadMatrix(join(dir, 'e/bad.yaml'))).rejects.toBeInstanceOf(UsageError);
  });
});

import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseBind, validateBinds } from '../../src/runtime/binds.js';

const base = mkdtempSync(join(tmpdir(), 'nsm-binds-'));
const stateDir = join(base, 'state');
const outputDir = join(base, 'results', 'run1');
const data = join(base, 'data');
for (const d of [stateDir, outputDir, data, join(stateDir, 'images')]) mkdirSync(d, { recursive: true });
symlinkSync('/', join(base, 'rootlink'));
symlinkSync(stateDir, join(base, 'statelink'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const check = (host: string, container = '/mnt', readOnly = false) => validateBinds([{ host, container, readOnly }], { stateDir, outputDir });

describe('validateBinds', () => {
  it('accepts an ordinary directory and normalises paths', () => {
    expect(check(data, '/mnt/data/', true)).toEqual([{ host: data, container: '/mnt/data', readOnly: true }]);
  });

  it.each([
    ['/', 'root directory'],
    [join(base, 'rootlink'), 'root directory'],
    [stateDir, 'state directory'],
    [join(stateDir, 'images'), 'state directory'],
    [join(base, 'statelink'), 'state directory'],
    [base, 'state directory'],
    [outputDir, 'output directory'],
    [join(base, 'results'), 'output directory'],
    [join(base, 'missing'), 'does not exist'],
    ['relative/path', 'absolute'],
  ])('refuses host path %s', (host, message) => {
    expect(() => check(host)).toThrow(UsageError);
    expect(() => check(host)).toThrow(message);
  });

  it.each([
    ['mnt', 'absolute'],
    ['/mnt/../etc', '..'],
    ['/', "container's root"],
    ['//', "container's root"],
  ])('refuses container path %s', (container, message) => {
    expect(() => check(data, container)).toThrow(message);
  });

  it('produces one-line messages naming the bind', () => {
    try {
      check('/');
    } catch (error) {
      expect((error as UsageError).lines).toHaveLength(1);
      expect((error as UsageError).lines[0]).toContain('bind "/:/mnt"');
    }
    expect.assertions(2);
  });
});

describe('parseBind', () => {
  it('parses host:container[:ro|:rw]', () => {
    expect(parseBind('/a:/b')).toEqual({ host: '/a', container: '/b', readOnly: false });
    expect(parseBind('/a:/b:ro')).toEqual({ host: '/a', container: '/b', readOnly: true });
    expect(parseBind('/a:/b:rw')).toEqual({ host: '/a', container: '/b', readOnly: false });
    for (const bad of ['/a', '/a:/b:x', ':/b', '/a:', '/a:/b:ro:x']) expect(() => parseBind(bad, '--bind')).toThrow(/--bind/);
  });
});

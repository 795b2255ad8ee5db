/** The one systemd-nspawn command-line builder: every stage's invocation is spelled by it. */
import { describe, expect, it } from 'vitest';
import { mountOption, nspawnArgs, shellQuote, type NspawnInvocation } from '../../src/lib/nspawn.js';
import { fakeHost } from '../helpers/host-info.js';

const base = (over: Partial<NspawnInvocation> = {}): NspawnInvocation => ({
  host: fakeHost({ systemdIsPid1: false, nspawnVersion: 252 }),
  machine: 'm',
  root: '/r',
  rootWrites: 'direct',
  payload: 'pid1',
  pipe: true,
  env: {},
  mounts: [],
  command: ['true'],
  ...over,
});

describe('nspawnArgs', () => {
  it('spells an image build: the payload as init, no stub, the host rules, passthrough right before the command', () => {
    expect(nspawnArgs(base({ env: { LC_ALL: 'C.UTF-8' }, extra: ['--overlay=/p:/u:/var/cache/apt/archives'] }))).toEqual([
      '--quiet',
      '--register=no',
      '--keep-unit',
      '--link-journal=no',
      '--machine=m',
      '-D',
      '/r',
      '--pipe',
      '--setenv=LC_ALL=C.UTF-8',
      '--suppress-sync=yes',
      '--overlay=/p:/u:/var/cache/apt/archives',
      '--',
      'true',
    ]);
  });

  it('spells a personality only when asked', () => {
    expect(nspawnArgs(base({ personality: 'x86' }))).toContain('--personality=x86');
    expect(nspawnArgs(base()).some((a) => a.startsWith('--personality'))).toBe(false);
  });

  it('maps root writes and payload kinds to their options', () => {
    expect(nspawnArgs(base({ rootWrites: { overlayUpper: '/up' }, payload: 'pid2' }))).toEqual(expect.arrayContaining(['--read-only', '--overlay=+/:/up:/', '--as-pid2']));
    expect(nspawnArgs(base({ rootWrites: 'volatile', payload: 'boot' }))).toEqual(expect.arrayContaining(['--volatile=overlay', '--boot']));
    const direct = nspawnArgs(base());
    for (const option of ['--as-pid2', '--boot', '--read-only', '--volatile=overlay']) expect(direct).not.toContain(option);
  });

  it('escapes colons in every mount path, and idmaps binds (never overlays) for private users', () => {
    expect(mountOption({ type: 'overlay', lower: '/a:b', upper: '/u', container: '/c' })).toBe('--overlay=/a\\:b:/u:/c');
    expect(mountOption({ type: 'bind', host: '/h:1', container: '/c', readOnly: true }, true)).toBe('--bind-ro=/h\\:1:/c:idmap');
    const args = nspawnArgs(base({ privateUsers: true, mounts: [{ type: 'bind', host: '/h', container: '/c' }] }));
    expect(args).toContain('--bind=/h:/c:idmap');
    expect(args).toContain('--private-users=pick');
  });

  it('quotes words for sh so that nothing in them is interpreted', () => {
    expect(shellQuote(`it's $HOME; rm -rf /`)).toBe(`'it'\\''s $HOME; rm -rf /'`);
  });
});

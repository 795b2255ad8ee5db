import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isShutdownNoise, OWN_MOUNT_NOISE } from '../../src/runtime/boot.js';
import { cgroupHierarchies } from '../../src/runtime/cgroup.js';
import { stepFiles, stepResult, stepToken, wrapperCommand } from '../../src/runtime/exec.js';
import { formatLogLine, isNspawnNoise, StepLog, TAIL_LINES } from '../../src/runtime/log.js';
import { pickStrategy, isBtrfsSubvolume } from '../../src/runtime/strategy.js';
import { parseStatus, PERL_WRAPPER, SH_WRAPPER, signalName, STATUS_ROOM } from '../../src/runtime/wrapper.js';
import { GATE_WORD } from '../../src/lib/process.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-pieces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('strategy', () => {
  it('snapshots btrfs subvolumes, overlays everything else, copies without overlayfs', () => {
    expect(pickStrategy({ btrfsSubvolume: true, overlayfs: true })).toBe('btrfs-snapshot');
    expect(pickStrategy({ btrfsSubvolume: false, overlayfs: true })).toBe('overlay');
    expect(pickStrategy({ btrfsSubvolume: false, overlayfs: false })).toBe('copy');
  });
  it('sees that a directory on this ext4 disk is not a btrfs subvolume', async () => {
    expect(await isBtrfsSubvolume(dir)).toBe(false);
  });
});

describe('status files', () => {
  it('parses exits and signals', () => {
    expect(parseStatus('exit 0\n')).toEqual({ exitCode: 0, signal: null });
    expect(parseStatus('exit 137\n')).toEqual({ exitCode: 137, signal: null });
    expect(parseStatus('signal 9\n')).toEqual({ exitCode: null, signal: 'SIGKILL' });
    expect(parseStatus('garbage')).toBeNull();
    expect(parseStatus('')).toBeNull();
    expect(signalName(15)).toBe('SIGTERM');
  });

  it('tells nspawn failures from step failures', () => {
    const run = { exitCode: 1, signal: null, timedOut: false, isCanceled: false, durationMs: 5 };
    expect(stepResult(run, { exitCode: 1, signal: null }, [], 'systemd-nspawn').infrastructureError).toBeUndefined();
    const infra = stepResult(run, null, ['Directory /nope does not exist'], 'systemd-nspawn');
    expect(infra.infrastructureError).toMatch(/systemd-nspawn exited with status 1 before the step ran: Directory \/nope/);
    expect(infra.exitCode).toBeNull();
    const timedOut = stepResult({ ...run, timedOut: true }, null, [], 'systemd-nspawn');
    expect(timedOut).toMatchObject({ timedOut: true, exitCode: null });
    expect(timedOut.infrastructureError).toBeUndefined();
    const aborted = stepResult({ ...run, isCanceled: true }, null, [], 'x');
    expect(aborted.aborted).toBe(true);
    expect(aborted.infrastructureError).toBeUndefined();
  });

  it('runs steps through perl when the image has it, else through sh', () => {
    const files = stepFiles({ shared: '/ctl', staging: '/ctl-staging' }, 'step-03-0123456789abcdef');
    expect(files.status).toBe('/ctl/step-03-0123456789abcdef.status');
    expect(wrapperCommand(true, files)).toEqual([
      '/usr/bin/perl',
      '/run/nsmatrix/step-03-0123456789abcdef.wrap',
      '/run/nsmatrix/step-03-0123456789abcdef.sh',
      '/run/nsmatrix/step-03-0123456789abcdef.status',
    ]);
    expect(wrapperCommand(false, files)[0]).toBe('/bin/sh');
    // Armed ahead: a third argument makes the wrapper wait for the gate word first.
    expect(wrapperCommand(true, files, true)).toEqual([...wrapperCommand(true, files), 'gated']);
    expect(wrapperCommand(false, files, true).slice(-1)).toEqual(['gated']);
  });

  it('names step files with a token a step cannot guess', () => {
    const a = stepToken(2);
    const b = stepToken(2);
    expect(a).toMatch(/^step-03-[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
  });
});

describe('step wrappers, armed ahead', () => {
  // Run on the host: the same perl and sh scripts the containers run, with the gate on stdin.
  for (const [kind, text, interpreter] of [['perl', PERL_WRAPPER, 'perl'], ['sh', SH_WRAPPER, 'sh']] as const) {
    const wrap = (name: string, input: string | null, gated = true) => {
      const base = join(dir, `${kind}-${name}`);
      writeFileSync(`${base}.wrap`, text);
      // The step records that it ran and what it read on its stdin.
      writeFileSync(`${base}.sh`, `touch ${base}.ran\ncat > ${base}.stdin\nexit 3\n`);
      writeFileSync(`${base}.status`, `${' '.repeat(STATUS_ROOM)}\n`);
      const r = spawnSync(interpreter, [`${base}.wrap`, `${base}.sh`, `${base}.status`, ...(gated ? ['gated'] : [])], {
        input: input ?? '',
        encoding: 'utf8',
      });
      return { code: r.status, ran: existsSync(`${base}.ran`), stdin: existsSync(`${base}.stdin`) ? readFileSync(`${base}.stdin`, 'utf8') : null, status: parseStatus(readFileSync(`${base}.status`, 'utf8')) };
    };

    it(`${kind}: runs the step after the gate word, with /dev/null for stdin, and records its fate`, () => {
      expect(wrap('open', `${GATE_WORD}more input the step must not see\n`)).toEqual({ code: 3, ran: true, stdin: '', status: { exitCode: 3, signal: null } });
    });

    it(`${kind}: runs nothing when the pipe closes without the word, or brings another line`, () => {
      expect(wrap('eof', null)).toEqual({ code: 125, ran: false, stdin: null, status: null });
      expect(wrap('other', 'opened\n')).toEqual({ code: 125, ran: false, stdin: null, status: null });
      expect(wrap('partial', GATE_WORD.trimEnd())).toEqual({ code: 125, ran: false, stdin: null, status: null });
    });

    it(`${kind}: without the third argument, runs the step at once`, () => {
      expect(wrap('ungated', null, false)).toEqual({ code: 3, ran: true, stdin: '', status: { exitCode: 3, signal: null } });
    });
  }
});

describe('boot journal summary', () => {
  it("ignores the unmount errors of nsmatrix's own bind mounts (bookworm and bullseye wording)", () => {
    expect(OWN_MOUNT_NOISE.test('2026-11-22T03:25:22+0000 vm systemd[1]: Failed unmounting var-log-journal.mount.')).toBe(true);
    expect(OWN_MOUNT_NOISE.test('2026-11-22T03:42:45+0000 vm systemd[1]: Failed unmounting /var/log/journal.')).toBe(true);
    expect(OWN_MOUNT_NOISE.test('vm systemd[1]: Failed unmounting /home.')).toBe(false);
    expect(OWN_MOUNT_NOISE.test('vm myservice[12]: segfault')).toBe(false);
  });

  it('ignores every unmount error of a container without CAP_SYS_ADMIN (it can unmount nothing), and only then', () => {
    const line = '2026-12-01T07:00:01+0000 nsm-7a29e0ffd9-1 systemd[1]: Failed unmounting tmp.mount - /tmp.';
    expect(isShutdownNoise(line, true)).toBe(true);
    expect(isShutdownNoise(line, false)).toBe(false);
    expect(isShutdownNoise('vm systemd[1]: Failed unmounting var-log-journal.mount.', false)).toBe(true);
    expect(isShutdownNoise('vm myservice[12]: Failed unmounting /x', true)).toBe(false);
  });
});

describe('cgroup layouts', () => {
  it('uses both hierarchies on hybrid hosts', () => {
    expect(cgroupHierarchies('hybrid', '/cg')).toEqual(['/cg/unified', '/cg/systemd']);
    expect(cgroupHierarchies('unified', '/cg')).toEqual(['/cg']);
    expect(cgroupHierarchies('legacy', '/cg')).toEqual(['/cg/systemd']);
  });
});

describe('StepLog', () => {
  it('timestamps lines per stream, joins split lines, drops nspawn noise and keeps a bounded tail', async () => {
    const path = join(dir, 'sub', '01-x.log');
    const log = await StepLog.open(path);
    log.write('stdout', Buffer.from('hel'));
    log.write('stderr', Buffer.from('warn\nAttempted to remove disk file system under "/run/systemd/nspawn/propagate/m", and we can\'t allow that.\n'));
    log.write('stdout', Buffer.from('lo\nlast-no-newline'));
    for (let i = 0; i < TAIL_LINES + 5; i++) log.write('stdout', Buffer.from(i === 0 ? `\nl${i}\n` : `l${i}\n`));
    await log.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z err\| warn$/);
    expect(lines[1]).toMatch(/ out\| hello$/);
    expect(lines[2]).toMatch(/ out\| last-no-newline$/);
    expect(lines.some((l) => l.includes('Attempted to remove'))).toBe(false);
    expect(log.tail()).toHaveLength(TAIL_LINES);
    expect(log.tail().at(-1)).toBe(`l${TAIL_LINES + 4}`);
    expect(isNspawnNoise('Attempted to remove disk file system under "/run/systemd/nspawn/propagate/x", and we can\'t allow that.')).toBe(true);
    expect(formatLogLine(new Date(0), 'stderr', 'x')).toBe('1970-01-01T00:00:00.000Z err| x\n');
  });

  it('keeps every byte of a line: invalid UTF-8 and characters split across reads survive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsm-log-bytes-'));
    const path = join(dir, 'bytes.log');
    const log = await StepLog.open(path);
    const euro = Buffer.from('€', 'utf8'); // three bytes, delivered in two reads
    log.write('stdout', Buffer.concat([Buffer.from('price: '), euro.subarray(0, 1)]));
    log.write('stdout', Buffer.concat([euro.subarray(1), Buffer.from('5\nbad: '), Buffer.from([0xff, 0xfe, 0x00, 0xed, 0xa0, 0x80]), Buffer.from('\n')]));
    await log.close();
    const lines = readFileSync(path).toString('latin1').split('\n');
    const payload = (line: string) => Buffer.from(line.slice(line.indexOf('| ') + 2), 'latin1');
    expect(payload(lines[0]!)).toEqual(Buffer.concat([Buffer.from('price: '), euro, Buffer.from('5')]));
    expect(payload(lines[1]!)).toEqual(Buffer.concat([Buffer.from('bad: '), Buffer.from([0xff, 0xfe, 0x00, 0xed, 0xa0, 0x80])]));
    expect(log.tail()[0]).toBe('price: €5');
    rmSync(dir, { recursive: true, force: true });
  });
});

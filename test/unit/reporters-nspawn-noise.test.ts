/**
 * nspawn's own "Container … terminated by signal KILL." line (its stderr is the step's stderr, --pipe) stays out of
 * step logs, their tails and the failure tails the reporters show, while every byte of the step's output stays.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildJunitXml } from '../../reporters/junit.js';
import { buildMarkdown } from '../../reporters/markdown.js';
import { machineName } from '../../src/lib/nspawn.js';
import { isNspawnNoise, StepLog, withoutNspawnNoise } from '../../src/runtime/log.js';
import type { RunResult } from '../../src/run/result.js';
import { makeHostileResult } from '../fixtures/results/make-result.js';

const MACHINE = machineName('debian-bookworm-clang-o0', 'run-token', 3);
const NSPAWN_KILL = `Container ${MACHINE} terminated by signal KILL.`;
const INVALID = Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]);

/** The payload of each line of a step log (after `TIMESTAMP out| `), as bytes, with its stream. */
function payloads(log: Buffer): { stream: string; bytes: Buffer }[] {
  const lines: { stream: string; bytes: Buffer }[] = [];
  for (let from = 0; from < log.length; ) {
    const end = log.indexOf(0x0a, from);
    const line = log.subarray(from, end);
    const bar = line.indexOf('| ');
    lines.push({ stream: line.subarray(bar - 3, bar).toString(), bytes: line.subarray(bar + 2) });
    from = end + 1;
  }
  return lines;
}

describe('nspawn noise: "Container … terminated by signal …"', () => {
  let dir: string;
  let logBytes: Buffer;
  let shown: Buffer;
  let tail: string[];
  const stepStderr = Buffer.concat([Buffer.from('make: *** [all] Killed '), INVALID, Buffer.from('\n')]);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-noise-'));
    const log = await StepLog.open(join(dir, 'noise', '01-hang.log'));
    log.write('stdout', Buffer.from(`compiling\n${NSPAWN_KILL}\n`)); // the same text on stdout is the step's
    shown = log.write('stderr', Buffer.concat([stepStderr, Buffer.from(`Container db terminated by signal KILL.\n${NSPAWN_KILL}\n`)]));
    await log.close();
    tail = log.tail();
    logBytes = await readFile(join(dir, 'noise', '01-hang.log'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('matches nspawn\'s own line only: whole, with a machine name nsmatrix gives', () => {
    expect(isNspawnNoise(NSPAWN_KILL)).toBe(true);
    expect(isNspawnNoise(`Container ${MACHINE} terminated by signal RTMIN+3.`)).toBe(true);
    expect(isNspawnNoise(`Container ${MACHINE} terminated by signal 42.`)).toBe(true);
    expect(isNspawnNoise('Container db terminated by signal KILL.')).toBe(false);
    expect(isNspawnNoise(`${NSPAWN_KILL} `)).toBe(false);
    expect(isNspawnNoise(`echo ${NSPAWN_KILL}`)).toBe(false);
  });

  it('keeps it out of the step log and its tail, and keeps every byte of the step\'s own output', () => {
    expect(payloads(logBytes)).toEqual([
      { stream: 'out', bytes: Buffer.from('compiling') },
      { stream: 'out', bytes: Buffer.from(NSPAWN_KILL) },
      { stream: 'err', bytes: stepStderr.subarray(0, -1) },
      { stream: 'err', bytes: Buffer.from('Container db terminated by signal KILL.') },
    ]);
    expect(tail.filter((l) => l === NSPAWN_KILL)).toHaveLength(1); // the stdout one
  });

  it('hands live output listeners the chunk without the line, byte for byte', () => {
    expect(shown).toEqual(Buffer.concat([stepStderr, Buffer.from('Container db terminated by signal KILL.\n')]));
    const unterminated = Buffer.concat([INVALID, Buffer.from(`\n${NSPAWN_KILL}`)]);
    expect(withoutNspawnNoise(unterminated)).toEqual(unterminated);
    // the other noise line too: dropping it must not re-encode the step's invalid UTF-8 around it
    const propagate = 'Attempted to remove disk file system under "/run/systemd/nspawn/propagate/m", and we can\'t allow that.';
    expect(withoutNspawnNoise(Buffer.concat([INVALID, Buffer.from(`\n${propagate}\nend`)]))).toEqual(Buffer.concat([INVALID, Buffer.from('\nend')]));
  });

  it('keeps it out of the failure tails of the JUnit and Markdown reports', async () => {
    const base = await makeHostileResult(dir, { bigLogBytes: 1 });
    const cell = base.cells[2]!; // the step that timed out: nspawn printed the line when the runner killed it
    const step = cell.steps[0]!;
    const attempt = { ...step.attempts[0]!, logPath: 'noise/01-hang.log', tail };
    const result: RunResult = { ...base, cells: [{ ...cell, steps: [{ ...step, attempts: [attempt] }] }] };
    const xml = await buildJunitXml(result, { outputDir: dir });
    const failure = /<failure [^>]*>([\s\S]*?)<\/failure>/.exec(xml)![1]!;
    expect(failure).toContain('make: *** [all] Killed');
    expect(failure).not.toContain(`${NSPAWN_KILL}\n--- rerun`);
    expect(failure.split('\n').filter((l) => l === NSPAWN_KILL)).toHaveLength(1); // the step's stdout line
    const md = await buildMarkdown(result, dir);
    expect(md).toContain('Container db terminated by signal KILL.');
    expect(md.split('\n').filter((l) => l === NSPAWN_KILL)).toHaveLength(1);
  });
});

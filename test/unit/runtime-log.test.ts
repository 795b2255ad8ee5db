/** StepLog under arbitrary read boundaries: every byte of every line kept, in order, one timestamp per read. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { StepLog, TAIL_LINES } from '../../src/runtime/log.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PREFIX = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z out\| /;

/** The log's lines with their prefixes removed (byte-wise: lines may hold invalid UTF-8). */
function payloadLines(log: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  for (let from = 0; from < log.length; ) {
    const newline = log.indexOf(0x0a, from);
    const line = log.subarray(from, newline);
    const prefix = PREFIX.exec(line.subarray(0, 40).toString('latin1'));
    if (!prefix) throw new Error(`line without prefix: ${line.subarray(0, 60).toString('latin1')}`);
    lines.push(line.subarray(prefix[0].length));
    from = newline + 1;
  }
  return lines;
}

describe('StepLog', () => {
  it('keeps every line byte for byte whatever the read boundaries', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }).map((b) => Buffer.from(b.map((x) => (x === 0x0a ? 0x0b : x)))), { minLength: 1, maxLength: 250 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 50 }),
        async (lines, cuts) => {
          const stream = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
          const log = await StepLog.open(join(dir, `p-${run++}.log`));
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            log.write('stdout', stream.subarray(at, at + size));
            at += size;
          }
          await log.close();
          const written = payloadLines(readFileSync(join(dir, `p-${run - 1}.log`)));
          expect(Buffer.concat(written.flatMap((l) => [l, Buffer.from('\n')])).equals(stream)).toBe(true);
          expect(log.tail()).toEqual(lines.slice(-TAIL_LINES).map((l) => l.toString('utf8')));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('writes a line longer than its buffer in pieces, and an unterminated last line at close', async () => {
    const path = join(dir, 'long.log');
    const log = await StepLog.open(path);
    const long = Buffer.alloc(200 * 1024, 0x61);
    for (let at = 0; at < long.length; at += 4096) log.write('stdout', long.subarray(at, at + 4096));
    log.write('stdout', Buffer.from('\nlast without newline'));
    await log.close();
    const lines = payloadLines(readFileSync(path));
    expect(Buffer.concat(lines.slice(0, -1)).equals(long)).toBe(true);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.at(-1)!.toString()).toBe('last without newline');
  });
});

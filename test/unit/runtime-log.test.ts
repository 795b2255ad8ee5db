/**
 * StepLog under arbitrary read boundaries: every byte of every line kept, in order, one timestamp per read. The
 * property tests compare the log with a line-at-a-time model of it (per stream: complete lines as they complete,
 * a pending line longer than 64 KiB written as a piece, nspawn's noise lines dropped from stderr, the unterminated
 * last lines at close).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isNspawnNoise, prefixLines, StepLog, TAIL_LINES, type StreamName } from '../../src/runtime/log.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PREFIX = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z out\| /;
const ANY_PREFIX = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (out|err)\| /;
const MAX_PENDING = 64 * 1024;
const NOISE = 'Attempted to remove disk file system under "/run/systemd/nspawn/propagate/m", and we can\'t allow that.';

type Entry = { stream: StreamName; line: Buffer };

/** The log as (stream, line bytes), checking every prefix and that timestamps never go back. */
function entries(log: Buffer): Entry[] {
  const out: Entry[] = [];
  let last = '';
  for (let from = 0; from < log.length; ) {
    const newline = log.indexOf(0x0a, from);
    if (newline < 0) throw new Error('log does not end with a newline');
    const line = log.subarray(from, newline);
    const prefix = ANY_PREFIX.exec(line.subarray(0, 40).toString('latin1'));
    if (!prefix) throw new Error(`line without prefix: ${line.subarray(0, 60).toString('latin1')}`);
    expect(prefix[1]! >= last).toBe(true);
    last = prefix[1]!;
    out.push({ stream: prefix[2] === 'out' ? 'stdout' : 'stderr', line: Buffer.from(line.subarray(prefix[0].length)) });
    from = newline + 1;
  }
  return out;
}

/** What the log must hold for these reads, a line at a time (the specification StepLog's block writes must meet). */
function model(reads: { stream: StreamName; chunk: Buffer }[]): Entry[] {
  const pending: Record<StreamName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  const out: Entry[] = [];
  const emit = (stream: StreamName, line: Buffer) => {
    if (!(stream === 'stderr' && isNspawnNoise(line.toString('utf8')))) out.push({ stream, line });
  };
  for (const { stream, chunk } of reads) {
    const data = Buffer.concat([pending[stream], chunk]);
    let from = 0;
    for (let newline = data.indexOf(0x0a); newline >= 0; newline = data.indexOf(0x0a, from)) {
      emit(stream, data.subarray(from, newline));
      from = newline + 1;
    }
    pending[stream] = data.subarray(from);
    if (pending[stream].length > MAX_PENDING) {
      out.push({ stream, line: pending[stream] });
      pending[stream] = Buffer.alloc(0);
    }
  }
  for (const stream of ['stdout', 'stderr'] as const) if (pending[stream].length > 0) emit(stream, pending[stream]);
  return out;
}

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

  it('matches the line-at-a-time model: two streams, CR/LF, binary bytes, long lines, noise, any read boundaries', async () => {
    let run = 0;
    // Lines of any bytes (CR, NUL, invalid UTF-8), now and then an empty, CR-only, noise or over-64-KiB line.
    const line = fc.oneof(
      { weight: 20, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 120 }).map((b) => Buffer.from(b.map((x) => (x === 0x0a ? 0x0d : x)))) },
      { weight: 1, arbitrary: fc.constantFrom(Buffer.from(''), Buffer.from('\r'), Buffer.from('crlf\r'), Buffer.from(NOISE)) },
      { weight: 1, arbitrary: fc.integer({ min: MAX_PENDING - 2, max: 3 * MAX_PENDING }).map((n) => Buffer.alloc(n, 0x78)) },
    );
    const stream = fc.record({ lines: fc.array(line, { maxLength: 60 }), unterminated: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(stream, stream, fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), async (out, err, cuts, picks) => {
        const bytes = (s: { lines: Buffer[]; unterminated: boolean }) => {
          const joined = Buffer.concat(s.lines.flatMap((l) => [l, Buffer.from('\n')]));
          return s.unterminated && joined.length > 0 ? joined.subarray(0, -1) : joined;
        };
        const left: Record<StreamName, Buffer> = { stdout: bytes(out), stderr: bytes(err) };
        const reads: { stream: StreamName; chunk: Buffer }[] = [];
        for (let i = 0; left.stdout.length > 0 || left.stderr.length > 0; i++) {
          const wanted: StreamName = picks[i % picks.length] ? 'stdout' : 'stderr';
          const stream = left[wanted].length > 0 ? wanted : wanted === 'stdout' ? 'stderr' : 'stdout';
          const size = cuts[i % cuts.length]!;
          reads.push({ stream, chunk: left[stream].subarray(0, size) });
          left[stream] = left[stream].subarray(size);
        }
        const path = join(dir, `m-${run++}.log`);
        const log = await StepLog.open(path);
        for (const read of reads) log.write(read.stream, read.chunk);
        await log.close();
        const expected = model(reads);
        const written = entries(readFileSync(path));
        expect(written.length).toBe(expected.length);
        written.forEach((entry, i) => {
          expect(entry.stream).toBe(expected[i]!.stream);
          expect(entry.line.equals(expected[i]!.line)).toBe(true);
        });
        expect(log.tail()).toEqual(expected.slice(-TAIL_LINES).map((e) => e.line.toString('utf8')));
      }),
      { numRuns: 150 },
    );
  });

  it('drops noise deep inside a large stderr read, and writes the over-long rest of that read as a piece', async () => {
    const path = join(dir, 'noise-deep.log');
    const log = await StepLog.open(path);
    const reads: { stream: StreamName; chunk: Buffer }[] = [
      { stream: 'stderr', chunk: Buffer.from(`${'warning: x\r\n'.repeat(5000)}${NOISE}\nafter\n${'y'.repeat(MAX_PENDING + 10)}`) },
      { stream: 'stdout', chunk: Buffer.from(`${NOISE}\n`) },
      { stream: 'stderr', chunk: Buffer.from(`tail end\n${NOISE}`) },
    ];
    for (const read of reads) log.write(read.stream, read.chunk);
    await log.close();
    const written = entries(readFileSync(path));
    const expected = model(reads);
    expect(written.map((e) => [e.stream, e.line.toString('latin1')])).toEqual(expected.map((e) => [e.stream, e.line.toString('latin1')]));
    expect(written.filter((e) => e.line.toString() === NOISE).map((e) => e.stream)).toEqual(['stdout']);
    expect(written.at(-3)!.line.length).toBe(MAX_PENDING + 10);
  });

  it('prefixLines puts the prefix before every line and keeps the bytes, in one buffer', () => {
    const prefix = Buffer.from('P| ');
    expect(prefixLines(prefix, Buffer.from('a\n\nbc\r\n\n')).toString()).toBe('P| a\nP| \nP| bc\r\nP| \n');
    expect(prefixLines(prefix, Buffer.alloc(0)).length).toBe(0);
    // More lines than the offsets buffer starts with.
    const many = Buffer.alloc(2 * 10_000, 'x\n');
    expect(prefixLines(prefix, many).equals(Buffer.from('P| x\n'.repeat(10_000)))).toBe(true);
  });

  it('congested() pauses a fast writer and drained() resumes it; the tail stays bounded', async () => {
    const path = join(dir, 'pressure.log');
    const log = await StepLog.open(path);
    const chunk = Buffer.from('0123456789abcdefghi\n'.repeat(3000));
    let pauses = 0;
    for (let i = 0; i < 2000; i++) {
      log.write('stdout', chunk);
      if (log.congested()) {
        pauses++;
        await log.drained();
        expect(log.congested()).toBe(false);
      }
    }
    await log.close();
    expect(pauses).toBeGreaterThan(0);
    expect(log.tail()).toEqual(Array(TAIL_LINES).fill('0123456789abcdefghi'));
    expect(readFileSync(path).length).toBe(2000 * 3000 * (20 + 30));
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

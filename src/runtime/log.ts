/**
 * A step's output log: every line prefixed with an ISO timestamp and its stream (`out|` or `err|`), written as
 * it arrives. The line itself is written byte for byte (never decoded and re-encoded, so invalid UTF-8 and
 * characters split across pipe reads survive intact). Only the last lines are kept in memory, decoded, for
 * results and error messages.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export const TAIL_LINES = 100;
/** A line longer than this is written in pieces rather than buffered without bound. */
const MAX_PENDING = 64 * 1024;

/*
 * Lines systemd-nspawn itself writes on its stderr, which the payload's stderr shares (`--pipe`): not the step's
 * output, so they stay out of step logs, tails and failure reports (see nspawn-notes.md):
 * - without systemd as PID 1, harmless: `Attempted to remove disk file system under "/run/systemd/nspawn/propagate/…",
 *   and we can't allow that.`;
 * - when the container's PID 1 dies by a signal (the runner's timeout kill, the OOM killer), nspawn's log_error
 *   (printed even with --quiet): `Container nsm-0123456789-1 terminated by signal KILL.` The step's outcome
 *   (timed out, killed) is recorded from the runner's own clock and status, never from this line.
 * Only a whole stderr line matches, and for the second only with a machine name nsmatrix gives (machineName() in
 * args.ts: `nsm-<10 hex>-<n>`, signal names as nspawn spells them: KILL, RTMIN+3, or a number). So a step that
 * prints such a line on stdout, or about another machine, keeps it. A step that prints nspawn's exact line with its
 * own machine name (its hostname) on stderr loses that one line: on the shared pipe the bytes are the same as
 * nspawn's, and nothing can tell them apart.
 */
const NSPAWN_NOISE = [
  /^Attempted to remove disk file system under "\/run\/systemd\/nspawn\/propagate\/.*", and we can't allow that\.$/,
  /^Container nsm-[0-9a-f]{10}-[0-9]+ terminated by signal (?:[A-Z][A-Z0-9]*(?:[+-][0-9]+)?|[0-9]+)\.$/,
];
/** Cheap byte checks before any line is decoded: every noise line holds one of these. */
const NSPAWN_NOISE_HINTS = ['Attempted to remove disk file system', ' terminated by signal '];

export function isNspawnNoise(line: string): boolean {
  return NSPAWN_NOISE.some((noise) => noise.test(line));
}

/**
 * Drops nspawn's noise lines from a chunk of stderr, byte for byte: every other byte, invalid UTF-8 included, is
 * kept as it came. Only lines complete in the chunk are dropped (a line split across chunks, or an unterminated
 * last line, passes through).
 */
export function withoutNspawnNoise(chunk: Buffer): Buffer {
  if (!NSPAWN_NOISE_HINTS.some((hint) => chunk.includes(hint))) return chunk;
  const kept: Buffer[] = [];
  for (let from = 0; from < chunk.length; ) {
    const newline = chunk.indexOf(0x0a, from);
    if (newline === -1) {
      kept.push(chunk.subarray(from));
      break;
    }
    if (!isNspawnNoise(chunk.subarray(from, newline).toString('utf8'))) kept.push(chunk.subarray(from, newline + 1));
    from = newline + 1;
  }
  return Buffer.concat(kept);
}

export type StreamName = 'stdout' | 'stderr';

export function logPrefix(at: Date, stream: StreamName): string {
  return `${at.toISOString()} ${stream === 'stdout' ? 'out' : 'err'}| `;
}

export function formatLogLine(at: Date, stream: StreamName, line: string): string {
  return `${logPrefix(at, stream)}${line}\n`;
}

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);
const NEWLINE_BYTE = Buffer.from('\n');

/** Could this stderr line be nspawn's noise? Checked on bytes, so ordinary lines are never decoded. */
function mayBeNoise(line: Buffer): boolean {
  return (line[0] === 0x41 /* A */ || line[0] === 0x43) /* C */ && NSPAWN_NOISE_HINTS.some((hint) => line.includes(hint));
}

/** Newline offsets of the block being formatted; reused, so a read allocates nothing per line. */
let newlines = new Uint32Array(4096);

/**
 * Copies block[from, from + length) to `to`, where `to` <= `from` or the ranges do not overlap. Short ranges (a
 * prefix, a typical line) go four bytes at a time: cheaper than a call into the native copy for every one.
 */
function move(view: DataView, block: Buffer, to: number, from: number, length: number): void {
  if (length > 64) {
    block.copyWithin(to, from, from + length);
    return;
  }
  let i = 0;
  for (; i + 4 <= length; i += 4) view.setUint32(to + i, view.getUint32(from + i));
  for (; i < length; i++) block[to + i] = block[from + i]!;
}

/**
 * `lines` (complete lines, the last ending in a newline) as one buffer with `prefix` before every line. The lines
 * are copied once, to the end of the new buffer, and then moved into place front to back within it (no buffer
 * object per line, and a line never overtakes the ones still waiting behind it); the last line is already in place.
 */
export function prefixLines(prefix: Buffer, lines: Buffer): Buffer {
  let count = 0;
  for (let newline = lines.indexOf(NEWLINE); newline >= 0; newline = lines.indexOf(NEWLINE, newline + 1)) {
    if (count === newlines.length) {
      const grown = new Uint32Array(count * 2);
      grown.set(newlines);
      newlines = grown;
    }
    newlines[count++] = newline;
  }
  const width = prefix.length;
  const staged = count * width;
  const block = Buffer.allocUnsafe(staged + lines.length);
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  lines.copy(block, staged);
  prefix.copy(block, 0);
  let at = 0;
  let from = 0;
  for (let i = 0; i < count; i++) {
    if (at > 0) move(view, block, at, 0, width);
    at += width;
    const end = newlines[i]! + 1;
    if (at !== staged + from) move(view, block, at, staged + from, end - from);
    at += end - from;
    from = end;
  }
  return block;
}

/** The prefix of each stream for the current millisecond: reads that arrive within one share it. */
const prefixes: Record<StreamName, { at: number; bytes: Buffer }> = { stdout: { at: NaN, bytes: EMPTY }, stderr: { at: NaN, bytes: EMPTY } };

function currentPrefix(stream: StreamName): Buffer {
  const now = Date.now();
  const cached = prefixes[stream];
  if (cached.at !== now) {
    cached.at = now;
    cached.bytes = Buffer.from(logPrefix(new Date(now), stream));
  }
  return cached.bytes;
}

/** The log's last lines, held as a few copied byte ranges (each of whole lines, newline-terminated). */
class Tail {
  private readonly blocks: { bytes: Buffer; lines: number }[] = [];
  private lines = 0;

  /** `lines` complete lines; the caller passes only the last TAIL_LINES of a block (they are copied). */
  add(lines: Buffer, count: number): void {
    if (count === 0) return;
    this.blocks.push({ bytes: Buffer.from(lines), lines: count });
    this.lines += count;
    while (this.lines - this.blocks[0]!.lines >= TAIL_LINES) this.lines -= this.blocks.shift()!.lines;
  }

  text(): string[] {
    const all: string[] = [];
    for (const { bytes } of this.blocks) {
      for (let from = 0; from < bytes.length; ) {
        const newline = bytes.indexOf(NEWLINE, from);
        all.push(bytes.toString('utf8', from, newline));
        from = newline + 1;
      }
    }
    return all.slice(-TAIL_LINES);
  }
}

/**
 * The log file is behind when this much is waiting to be written: the source is then paused, and resumed once half
 * of it is written, so reading and writing overlap. (Pausing at 1 MiB until everything was written, the stream's
 * 'drain', paused a 1 GiB step some 13,000 times, for over a second in all.)
 */
const WRITE_BEHIND = 8 * 2 ** 20;

/**
 * Output is handled a read at a time, not a line at a time: every line of one read arrived at the same moment and
 * gets the same timestamp, and the read becomes one buffer written once. Only the last TAIL_LINES lines are copied
 * out (and decoded only when asked for), so a step printing short lines as fast as it can is not slowed by us.
 */
export class StepLog {
  private readonly pending: Record<StreamName, Buffer> = { stdout: EMPTY, stderr: EMPTY };
  private readonly lastLines = new Tail();
  private readonly waiting: (() => void)[] = [];
  private readonly written = () => {
    if (this.out.writableLength >= WRITE_BEHIND / 2 && !this.out.closed) return;
    for (const resolve of this.waiting.splice(0)) resolve();
  };
  private constructor(private readonly out: WriteStream) {
    out.once('close', () => {
      for (const resolve of this.waiting.splice(0)) resolve();
    });
  }

  static async open(path: string): Promise<StepLog> {
    await mkdir(dirname(path), { recursive: true });
    const out = createWriteStream(path, { flags: 'w', highWaterMark: WRITE_BEHIND });
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
    return new StepLog(out);
  }

  /** Adds raw output; returns the chunk with nspawn's noise lines removed (for onOutput listeners). */
  write(stream: StreamName, chunk: Buffer): Buffer {
    let data = chunk;
    const pending = this.pending[stream];
    if (pending.length > 0) {
      // Only the line the last read cut short is joined, not the whole read.
      const newline = chunk.indexOf(NEWLINE);
      const head = newline >= 0 ? newline + 1 : chunk.length;
      this.pending[stream] = EMPTY;
      const joined = Buffer.concat([pending, chunk.subarray(0, head)]);
      const shownHead = this.write(stream, joined);
      if (head === chunk.length) return shownHead === joined ? chunk : withoutNspawnNoise(chunk);
      data = chunk.subarray(head);
    }
    let whole = data.subarray(0, data.lastIndexOf(NEWLINE) + 1);
    let rest = data.subarray(whole.length);
    let filtered = false;
    if (stream === 'stderr' && NSPAWN_NOISE_HINTS.some((hint) => data.includes(hint))) {
      filtered = this.writeFiltered(data, whole.length, rest.length > MAX_PENDING);
      if (rest.length > MAX_PENDING) rest = EMPTY;
    } else {
      if (rest.length > MAX_PENDING) {
        // A line longer than MAX_PENDING: this piece is written as a line of its own, in the same block.
        whole = Buffer.concat([data, NEWLINE_BYTE]);
        rest = EMPTY;
      }
      if (whole.length > 0) this.append(stream, whole);
    }
    // A copy: the rest must not pin the whole chunk it came from.
    this.pending[stream] = rest.length > 0 ? Buffer.from(rest) : EMPTY;
    return filtered ? withoutNspawnNoise(chunk) : chunk;
  }

  /** stderr that may hold nspawn's noise: line by line (rare: nspawn prints it once, at the end). */
  private writeFiltered(data: Buffer, wholeLength: number, longRest: boolean): boolean {
    const bounds: number[] = [];
    let filtered = false;
    for (let from = 0; from < wholeLength; ) {
      const newline = data.indexOf(NEWLINE, from);
      const isNoise = mayBeNoise(data.subarray(from, newline)) && isNspawnNoise(data.toString('utf8', from, newline));
      if (isNoise) filtered = true;
      else bounds.push(from, newline);
      from = newline + 1;
    }
    if (longRest) bounds.push(wholeLength, data.length);
    this.writeLines('stderr', data, bounds);
    return filtered;
  }

  /** A line from nsmatrix itself (e.g. "timed out after 2.0s"), marked as stderr. */
  note(line: string): void {
    const text = Buffer.from(`[nsmatrix] ${line}`);
    this.writeLines('stderr', text, [0, text.length]);
  }

  /** The lines `data[bounds[i], bounds[i + 1])` (no newline in them), each written as a log line. */
  private writeLines(stream: StreamName, data: Buffer, bounds: number[]): void {
    if (bounds.length === 0) return;
    const pieces: Buffer[] = [];
    for (let i = 0; i < bounds.length; i += 2) pieces.push(data.subarray(bounds[i], bounds[i + 1]), NEWLINE_BYTE);
    this.append(stream, Buffer.concat(pieces));
  }

  /** Writes complete lines (the last ending in a newline) as one block, under one timestamp. */
  private append(stream: StreamName, lines: Buffer): void {
    const prefix = currentPrefix(stream);
    const block = prefixLines(prefix, lines);
    this.out.write(block, this.written);
    const count = (block.length - lines.length) / prefix.length;
    // prefixLines left the lines' newline offsets in `newlines`: where the last TAIL_LINES start.
    this.lastLines.add(count > TAIL_LINES ? lines.subarray(newlines[count - TAIL_LINES - 1]! + 1) : lines, Math.min(count, TAIL_LINES));
  }

  /** The file is behind the producer: pause the source until `drained()`, or fast output piles up in memory. */
  congested(): boolean {
    return this.out.writableLength >= WRITE_BEHIND && !this.out.closed;
  }

  /** Resolves once the file is no longer far behind (half of what congested() allows is still being written). */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.congested()) return resolve();
      this.waiting.push(resolve);
    });
  }

  tail(): string[] {
    return this.lastLines.text();
  }

  async close(): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.pending[stream];
      this.pending[stream] = EMPTY;
      if (rest.length > 0 && !(stream === 'stderr' && isNspawnNoise(rest.toString('utf8')))) this.writeLines(stream, rest, [0, rest.length]);
    }
    await new Promise<void>((resolve) => this.out.end(resolve));
  }
}

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

/** Could this stderr line be nspawn's noise? Checked on bytes, so ordinary lines are never decoded. */
function mayBeNoise(line: Buffer): boolean {
  return (line[0] === 0x41 /* A */ || line[0] === 0x43) /* C */ && NSPAWN_NOISE_HINTS.some((hint) => line.includes(hint));
}

/**
 * Output is handled a read at a time, not a line at a time: every line of one read arrived at the same moment and
 * gets the same timestamp, and the read becomes one buffer written once. Only the last TAIL_LINES lines are copied
 * out (and decoded only when asked for), so a step printing short lines as fast as it can is not slowed by us.
 */
export class StepLog {
  private readonly pending: Record<StreamName, Buffer> = { stdout: EMPTY, stderr: EMPTY };
  private readonly lastLines: Buffer[] = [];
  private constructor(private readonly out: WriteStream) {}

  static async open(path: string): Promise<StepLog> {
    await mkdir(dirname(path), { recursive: true });
    const out = createWriteStream(path, { flags: 'w', highWaterMark: 1 << 20 });
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
    // Kept lines as [start, end) pairs of `data`, the newline excluded.
    const bounds: number[] = [];
    let filtered = false;
    let from = 0;
    for (let newline = data.indexOf(NEWLINE); newline >= 0; newline = data.indexOf(NEWLINE, from)) {
      const isNoise = stream === 'stderr' && mayBeNoise(data.subarray(from, newline)) && isNspawnNoise(data.toString('utf8', from, newline));
      if (isNoise) filtered = true;
      else bounds.push(from, newline);
      from = newline + 1;
    }
    let rest = data.subarray(from);
    if (rest.length > MAX_PENDING) {
      bounds.push(from, data.length);
      rest = EMPTY;
    }
    this.emitLines(stream, data, bounds);
    // A copy: the rest must not pin the whole chunk it came from.
    this.pending[stream] = rest.length > 0 ? Buffer.from(rest) : EMPTY;
    return filtered ? withoutNspawnNoise(chunk) : chunk;
  }

  /** A line from nsmatrix itself (e.g. "timed out after 2.0s"), marked as stderr. */
  note(line: string): void {
    const text = Buffer.from(`[nsmatrix] ${line}`);
    this.emitLines('stderr', text, [0, text.length]);
  }

  private emitLines(stream: StreamName, data: Buffer, bounds: number[]): void {
    const count = bounds.length / 2;
    if (count === 0) return;
    const prefix = Buffer.from(logPrefix(new Date(), stream));
    let size = 0;
    for (let i = 0; i < bounds.length; i += 2) size += bounds[i + 1]! - bounds[i]! + 1;
    const block = Buffer.allocUnsafe(size + count * prefix.length);
    let at = 0;
    for (let i = 0; i < bounds.length; i += 2) {
      at += prefix.copy(block, at);
      at += data.copy(block, at, bounds[i]!, bounds[i + 1]!);
      block[at++] = NEWLINE;
    }
    this.out.write(block);
    for (let i = Math.max(0, count - TAIL_LINES) * 2; i < bounds.length; i += 2) {
      this.lastLines.push(Buffer.from(data.subarray(bounds[i]!, bounds[i + 1]!)));
    }
    if (this.lastLines.length > TAIL_LINES) this.lastLines.splice(0, this.lastLines.length - TAIL_LINES);
  }

  /** The file is behind the producer: pause the source until `drained()`, or fast output piles up in memory. */
  congested(): boolean {
    return this.out.writableNeedDrain;
  }

  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.out.writableNeedDrain) return resolve();
      const done = () => {
        this.out.off('drain', done);
        this.out.off('close', done);
        resolve();
      };
      this.out.once('drain', done);
      this.out.once('close', done);
    });
  }

  tail(): string[] {
    return this.lastLines.map((line) => line.toString('utf8'));
  }

  async close(): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.pending[stream];
      this.pending[stream] = EMPTY;
      if (rest.length > 0 && !(stream === 'stderr' && isNspawnNoise(rest.toString('utf8')))) this.emitLines(stream, rest, [0, rest.length]);
    }
    await new Promise<void>((resolve) => this.out.end(resolve));
  }
}

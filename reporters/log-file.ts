/**
 * Reading step logs for reports without ever holding a whole log in memory: only the first and last bytes of
 * a file are read (positioned reads), whatever its size. Text comes back decoded (UTF-8 with replacement) and
 * without the runtime's `TIMESTAMP out| ` prefixes, but NOT sanitised: callers sanitise for their format.
 */
import { open } from 'node:fs/promises';
import { cutMarker, decodeUtf8, stripLogPrefixes } from './sanitize.js';

const NEWLINE = 0x0a;

async function readRange(path: string, ranges: { position: number; length: number }[]): Promise<{ size: number; chunks: Buffer[] } | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    for (const range of ranges) {
      const position = Math.max(0, Math.min(range.position, size));
      const length = Math.max(0, Math.min(range.length, size - position));
      const buffer = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      chunks.push(buffer.subarray(0, done));
    }
    return { size, chunks };
  } finally {
    await handle.close();
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  const result = await readRange(path, []);
  return result?.size;
}

/**
 * Starts at the first whole line of a read that began mid-file; when that would drop most of the read (one
 * huge line), starts at the first whole character instead.
 */
function fromFirstLineStart(bytes: Buffer): Buffer {
  const newline = bytes.indexOf(NEWLINE);
  if (newline !== -1 && newline < bytes.length / 2) return bytes.subarray(newline + 1);
  let start = 0;
  while (start < 3 && start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
  return bytes.subarray(start);
}

/** Ends at the last whole line, unless that would drop most of the read (one huge line). */
function toLastLineEnd(bytes: Buffer): Buffer {
  const newline = bytes.lastIndexOf(NEWLINE);
  return newline >= bytes.length / 2 ? bytes.subarray(0, newline + 1) : bytes;
}

export interface LogTail {
  lines: string[];
  /** Size of the whole file in bytes. */
  size: number;
}

/**
 * The last `lines` lines of a log, reading at most `maxBytes` from its end. Undefined when the file cannot be read.
 */
export async function readLogTail(path: string, options: { lines: number; maxBytes?: number }): Promise<LogTail | undefined> {
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const size = await sizeOf(path);
  if (size === undefined) return undefined;
  const start = Math.max(0, size - maxBytes);
  const read = await readRange(path, [{ position: start, length: size - start }]);
  if (!read) return undefined;
  let bytes = read.chunks[0] ?? Buffer.alloc(0);
  if (start > 0) bytes = fromFirstLineStart(bytes);
  const text = stripLogPrefixes(decodeUtf8(bytes)).replace(/\n$/, '');
  const all = text === '' ? [] : text.split('\n');
  return { lines: all.slice(-options.lines), size: read.size };
}

export interface LogExcerpt {
  /** The whole log, or its head and tail joined by a `[… N bytes cut, full log: PATH]` line. */
  text: string;
  size: number;
  cutBytes: number;
}

/**
 * A log as text bounded by `maxBytes` read: the whole file when small enough, else a third from the head and
 * the rest from the tail, both cut at line boundaries, with a marker naming `displayPath`.
 */
export async function readLogExcerpt(path: string, options: { maxBytes: number; displayPath?: string }): Promise<LogExcerpt | undefined> {
  const size = await sizeOf(path);
  if (size === undefined) return undefined;
  if (size <= options.maxBytes) {
    const read = await readRange(path, [{ position: 0, length: size }]);
    if (!read) return undefined;
    return { text: stripLogPrefixes(decodeUtf8(read.chunks[0] ?? Buffer.alloc(0))).replace(/\n$/, ''), size: read.size, cutBytes: 0 };
  }
  const headBytes = Math.floor(options.maxBytes / 3);
  const tailBytes = options.maxBytes - headBytes;
  const read = await readRange(path, [
    { position: 0, length: headBytes },
    { position: size - tailBytes, length: tailBytes },
  ]);
  if (!read) return undefined;
  const head = toLastLineEnd(read.chunks[0] ?? Buffer.alloc(0));
  const tail = fromFirstLineStart(read.chunks[1] ?? Buffer.alloc(0));
  const cutBytes = read.size - head.length - tail.length;
  const headText = stripLogPrefixes(decodeUtf8(head)).replace(/\n$/, '');
  const tailText = stripLogPrefixes(decodeUtf8(tail)).replace(/\n$/, '');
  return { text: `${headText}\n${cutMarker(cutBytes, 'bytes', options.displayPath)}\n${tailText}`, size: read.size, cutBytes };
}

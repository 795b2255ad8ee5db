import { mkdtemp, rm, writeFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLogExcerpt, readLogTail } from '../../reporters/log-file.js';
import {
  capText,
  decodeUtf8,
  escapeHtml,
  isXmlSafe,
  replaceForbiddenCharacters,
  sanitizeAttribute,
  sanitizeText,
  slugify,
  splitCdataTerminators,
  stripLogPrefix,
  stripTerminalSequences,
} from '../../reporters/sanitize.js';

describe('sanitizeText', () => {
  it('strips ANSI CSI, OSC, 8-bit CSI and other escapes whole, not just the ESC byte', () => {
    const input = '\x1b[1;31mred\x1b[0m \x1b]0;title\x07osc \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b(Bcharset \x1b7save \u009b31mc1 \x1b[?25lcursor\x1b';
    expect(stripTerminalSequences(input)).toBe('red osc link charset save c1 cursor');
  });

  it('ends an unterminated OSC at the end of its line instead of eating the log', () => {
    expect(stripTerminalSequences('a\x1b]2;never ends\nnext line')).toBe('a\nnext line');
  });

  it('decodes invalid UTF-8 and CESU-encoded surrogates to U+FFFD', () => {
    const text = decodeUtf8(Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xed, 0xa0, 0x80, 0x63, 0xe2, 0x82]));
    expect(text.startsWith('a\ufffd\ufffdb')).toBe(true);
    expect(text).toContain('c');
    expect(isXmlSafe(text)).toBe(true);
    expect(text).not.toMatch(/[\ud800-\udfff]/);
  });

  it('makes C0/C1 controls visible and replaces noncharacters and lone surrogates', () => {
    expect(replaceForbiddenCharacters('a\x00b\x07c\x1fd\x7fe\u0085f')).toBe('a\\x00b\\x07c\\x1fd\\x7fe\\x85f');
    expect(replaceForbiddenCharacters('tab\tlf\ncr\r')).toBe('tab\tlf\ncr\r');
    expect(replaceForbiddenCharacters('\ufffe\uffff\ud800x\udc00')).toBe('\ufffd\ufffd\ufffdx\ufffd');
    expect(replaceForbiddenCharacters('pair 😀 kept')).toBe('pair 😀 kept');
  });

  it('turns CRLF and lone CR into LF', () => {
    expect(sanitizeText('a\r\nb\rc')).toBe('a\nb\nc');
  });

  it('caps with head, tail and a marker naming the full log', () => {
    const text = 'x'.repeat(10_000);
    const capped = capText(text, 1000, 'cell/01-build.log');
    expect(capped.length).toBeLessThanOrEqual(1000);
    expect(capped).toMatch(/\[… \d+ characters cut, full log: cell\/01-build\.log\]/);
    const cut = Number(/\[… (\d+) characters cut/.exec(capped)![1]);
    expect(capped.replace(/\n\[…[^\]]*\]\n/, '').length + cut).toBe(text.length);
  });

  it('repairs a surrogate pair split by the cut', () => {
    fc.assert(
      fc.property(fc.integer({ min: 60, max: 400 }), fc.integer({ min: 0, max: 3 }), (max, shift) => {
        const text = 'a'.repeat(shift) + '😀'.repeat(500);
        const capped = capText(text, max, 'p');
        expect(capped.length).toBeLessThanOrEqual(max);
        expect(isXmlSafe(capped)).toBe(true);
      }),
    );
  });

  it('never emits a forbidden character or exceeds the cap, whatever the bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 100, max: 3000 }), (bytes, max) => {
        const out = sanitizeText(bytes, { maxChars: max, fullLogPath: 'x.log' });
        expect(out.length).toBeLessThanOrEqual(max);
        expect(isXmlSafe(out)).toBe(true);
        expect(out).not.toContain('\x1b');
        expect(out).not.toContain('\r');
      }),
      { numRuns: 500 },
    );
  });

  it('also survives arbitrary UTF-16 strings (lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 500 }), (s) => {
        expect(isXmlSafe(sanitizeText(s))).toBe(true);
        const attr = sanitizeAttribute(s, { fallback: 'x' });
        expect(attr.length).toBeGreaterThan(0);
        expect(attr.length).toBeLessThanOrEqual(1024);
        expect(attr).not.toMatch(/[\n\r\t]/);
        expect(attr).toBe(attr.trim());
        expect(isXmlSafe(attr)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('attributes, slugs, CDATA and HTML', () => {
  it('makes attribute values one trimmed line of at most 1024 characters', () => {
    expect(sanitizeAttribute('  a\nb\r\n\tc \x1b[31m ')).toBe('a b c');
    const long = sanitizeAttribute('y'.repeat(5000));
    expect(long.length).toBe(1024);
    expect(long.endsWith('…')).toBe(true);
    expect(sanitizeAttribute(' \n ', { fallback: 'unnamed' })).toBe('unnamed');
  });

  it('slugs have no dots and no whitespace', () => {
    expect(slugify('Debian:Trixie [cc=gcc, opt=O2].x')).toBe('debian-trixie-cc-gcc-opt-o2-x');
    expect(slugify('...')).toBe('x');
  });

  it('splits text at every ]]> so that no piece holds one and the pieces join back', () => {
    const text = ']]>a]]>]]>b]]]]>';
    const pieces = splitCdataTerminators(text);
    expect(pieces.join('')).toBe(text);
    for (const piece of pieces) expect(piece).not.toContain(']]>');
  });

  it('escapes HTML text and attributes', () => {
    expect(escapeHtml(`<script>"x" & 'y'</script>`)).toBe('&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;');
  });

  it('strips the runtime prefix of a log line', () => {
    expect(stripLogPrefix('2026-11-22T03:40:01.123Z out| hello')).toBe('hello');
    expect(stripLogPrefix('2026-11-22T03:40:01.123Z err| oops')).toBe('oops');
    expect(stripLogPrefix('plain line')).toBe('plain line');
  });
});

describe('log files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nsm-logfile-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the last lines without the prefixes', async () => {
    const path = join(dir, 'small.log');
    const lines = Array.from({ length: 300 }, (_, i) => `2026-11-22T03:40:01.123Z ${i % 2 ? 'err' : 'out'}| line ${i}`);
    await writeFile(path, `${lines.join('\n')}\n`);
    const tail = await readLogTail(path, { lines: 5 });
    expect(tail?.lines).toEqual(['line 295', 'line 296', 'line 297', 'line 298', 'line 299']);
    expect(await readLogTail(join(dir, 'missing.log'), { lines: 5 })).toBeUndefined();
  });

  it('reads only the ends of a 1 GiB log: memory stays flat', async () => {
    const path = join(dir, 'huge.log');
    const handle = await open(path, 'w');
    await handle.write('2026-11-22T03:40:01.123Z out| FIRST\n', 0);
    // A sparse file: 1 GiB of NUL bytes in the middle costs no disk.
    await handle.write('\n2026-11-22T03:40:01.123Z out| LAST\n', 1024 ** 3);
    await handle.close();
    const before = process.memoryUsage().rss;
    const tail = await readLogTail(path, { lines: 3, maxBytes: 64 * 1024 });
    const excerpt = await readLogExcerpt(path, { maxBytes: 256 * 1024, displayPath: 'cell/huge.log' });
    const grown = process.memoryUsage().rss - before;
    expect(tail?.lines.at(-1)).toBe('LAST');
    expect(excerpt?.text.startsWith('FIRST')).toBe(true);
    expect(excerpt?.text.endsWith('LAST')).toBe(true);
    expect(excerpt?.text).toMatch(/\[… \d+ bytes cut, full log: cell\/huge\.log\]/);
    expect(excerpt!.cutBytes).toBeGreaterThan(1024 ** 3 - 300 * 1024);
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    const safe = sanitizeText(excerpt!.text);
    expect(isXmlSafe(safe)).toBe(true);
  });
});
